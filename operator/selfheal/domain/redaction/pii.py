"""Personal data in logs: e-mail addresses and payment card numbers (Luhn-valid, with a card prefix)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from selfheal.domain.redaction.spans import Span

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,6}"
    r"\.[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
)
EMAIL_TRIGGER = r"[A-Za-z0-9._%+\-]@[A-Za-z0-9\-]"
_EMAIL_LOCAL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")
# A card number is written plain, in groups of four, or (Amex) 4-6-5; the same separator throughout.
_CARD = re.compile(
    r"(?<![0-9.\-])(?:[0-9]{13,19}|[0-9]{4}([ \-])[0-9]{4}\1[0-9]{4}\1[0-9]{1,7}|[0-9]{4}([ \-])[0-9]{6}\2[0-9]{5})"
    r"(?![0-9])"
)
CARD_TRIGGER = r"[0-9]{13}|[0-9]{4}[ \-][0-9]{4}[ \-][0-9]{4}[ \-][0-9]|[0-9]{4}[ \-][0-9]{6}[ \-][0-9]{5}"
_CARD_PREFIXES = re.compile(
    r"4|5[1-5]|2(?:22[1-9]|2[3-9][0-9]|[3-6][0-9]{2}|7[01][0-9]|720)|3[47]|3[068]|35|6(?:011|5|4[4-9]|2)"
)


def email_spans(text: str, rank: int) -> Iterator[Span]:
    """E-mail addresses; each ``@`` is looked at once, from at most 64 characters before it."""
    if "@" not in text:
        return
    pos = text.find("@")
    while pos >= 0:
        start = pos
        while start > 0 and pos - start < 65 and text[start - 1] in _EMAIL_LOCAL:
            start -= 1
        m = _EMAIL.match(text, start) if start < pos else None
        if m is not None and m.end() > pos:
            yield Span(m.start(), m.end(), "email", rank)
            pos = text.find("@", m.end())
        else:
            pos = text.find("@", pos + 1)


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_spans(text: str, rank: int) -> Iterator[Span]:
    """Card numbers written plain or in groups ("4111 1111 1111 1111"), checked by Luhn and prefix."""
    for m in _CARD.finditer(text):
        if m.end() < len(text) and text[m.end()] == "-":
            continue
        digits = m.group(0).replace(" ", "").replace("-", "")
        if 13 <= len(digits) <= 19 and _CARD_PREFIXES.match(digits) and luhn(digits):
            yield Span(m.start(), m.end(), "card_number", rank)
