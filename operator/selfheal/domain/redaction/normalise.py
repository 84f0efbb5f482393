"""Linear-time folding of untrusted text, so no invisible, coloured or look-alike character hides a secret."""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import re2

from selfheal.domain.redaction.lines import lines_matching

# Unicode's stream-safe text format allows at most 30 combining marks after one base character;
# longer runs exist only to attack normalisation, whose canonical reordering is quadratic in a run.
MAX_MARKS = 30

# ANSI colour and cursor sequences (CSI, OSC, two-byte escapes), raw or as JSON/shell escapes.
_ANSI = re.compile(
    r"\x1b\[[0-?]{0,32}[ -/]{0,8}[@-~]"
    r"|\x1b\][^\x07\x1b\n]{0,512}(?:\x07|\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
    r"|\\(?:u001[bB]|x1[bB]|033|e)\[[0-?]{0,32}[ -/]{0,8}[@-~]"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# Letters of other scripts drawn like Latin ones. Only those touching an ASCII letter or digit are
# folded, so a word mixing scripts ("pаssword" with a Cyrillic a) reads as its Latin look-alike while
# text wholly in another script is left as it is.
_LOOKALIKES = {
    "а": "a", "в": "B", "е": "e", "к": "k", "м": "M", "н": "H", "о": "o", "р": "p", "с": "c", "т": "T",
    "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g", "һ": "h",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "У": "Y", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S",
    "α": "a", "ο": "o", "ρ": "p", "ν": "v", "τ": "t", "ι": "i", "κ": "k", "υ": "u",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
}  # fmt: skip
_LOOKALIKE_TABLE = str.maketrans(_LOOKALIKES)
_LOOKALIKE_CLASS = "[" + "".join(_LOOKALIKES) + "]"
_LOOKALIKE_RUN = re.compile(f"{_LOOKALIKE_CLASS}+")
_WORD_CHAR = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")

# What folding can change: anything but printable ASCII, tab and newline, and escaped ANSI sequences.
# Lines without it are their own folded form.
# One match from the first to the last such place of a line, so a line costs one match however much it holds.
FOLDABLE = r"(?:[^\t\n\x20-\x7e]|\\(?:u001[bB]|x1[bB]|033|e)\[)"
NEEDS_FOLDING = re2.compile(f"{FOLDABLE}(?:[^\\n]*{FOLDABLE})?")
# When more of the text than this needs folding, it is folded whole.
_WHOLE_SHARE = 0.5


class _DropTable(dict[int, "str | None"]):
    """``str.translate`` table, filled on first sight of each code point: what folding removes."""

    def __missing__(self, cp: int) -> str | None:
        ch = chr(cp)
        category = unicodedata.category(ch)
        value: str | None = ch
        if category[0] == "M" or unicodedata.combining(ch):
            _SEEN_MARKS.add(cp)
        if ch in "\n\t":
            value = ch
        elif category in ("Cc", "Cf", "Cs", "Co", "Cn"):
            value = None  # controls, zero-width and other invisible formatting, unassigned
        elif category in ("Zl", "Zp"):
            value = "\n"
        elif ch in "\u115f\u1160\u3164\uffa0\u2800":
            value = None  # Hangul fillers and the blank Braille pattern: letters that draw nothing
        self[cp] = value
        return value


# Combining marks `_DROP` has looked up: every mark of a text it translated is among them.
_SEEN_MARKS: set[int] = set()
_DROP = _DropTable()
_NEVER = re.compile(r"()(?!)")


def _marks() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Runs of combining marks: after an ASCII character (dropped) and beyond `MAX_MARKS` (cut).

    Built from the marks seen so far, so only after ``text.translate(_DROP)`` does it cover a text's
    marks; rebuilt when new marks have been seen (reading every code point of Unicode for the class
    would cost a seventh of a second)."""
    return _marks_of(frozenset(_SEEN_MARKS))


@cache
def _marks_of(marks: frozenset[int]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    if not marks:
        return _NEVER, _NEVER
    ranges: list[tuple[int, int]] = []
    for cp in sorted(marks):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    cls = "[" + "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" if a != b else re.escape(chr(a)) for a, b in ranges)
    cls += "]"
    return re.compile(rf"(?<=[\x21-\x7e]){cls}+"), re.compile(rf"({cls}{{{MAX_MARKS}}}){cls}+")


def fold(text: str) -> str:
    """The text a reader sees, in plain characters, in time linear in its length.

    ANSI colour sequences and control characters are removed (newline and tab kept); so are
    zero-width and other invisible characters, and combining marks on ASCII characters. Runs of
    combining marks are cut to `MAX_MARKS`, look-alike letters touching ASCII ones become Latin,
    and the result is NFKC-normalised (full-width and other compatibility forms become plain).
    Folding folded text changes nothing.

    Folding never reaches across a line end, so only the lines that hold something to fold are
    read again: one scan finds them.
    """
    if not text:
        return text
    lines = lines_matching(NEEDS_FOLDING, text, _WHOLE_SHARE)
    if lines is None:
        return _fold(text)
    if not lines:
        return text
    pieces = []
    pos = 0
    for start, end in lines:
        pieces.append(text[pos:start])
        pieces.append(_fold(text[start:end]))
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


def _fold(text: str) -> str:
    if "\x1b" in text or "\\" in text:
        text = _ANSI.sub("", text)
    if text.isascii():
        return _CONTROL.sub("", text) if _CONTROL.search(text) else text
    text = text.translate(_DROP)
    on_ascii, long_runs = _marks()
    text = on_ascii.sub("", text)
    text = long_runs.sub(r"\1", text)
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
        # Normalising can bring back what was removed (a compatibility form that decomposes to a
        # mark on an ASCII letter, or to an invisible character); a second pass settles it.
        text = text.translate(_DROP)
        text = _marks()[0].sub("", text)
    # Last, as normalising can make a look-alike (a mathematical capital epsilon becomes a Greek one).
    return _LOOKALIKE_RUN.sub(lambda m: _latin_if_touching(m, text), text)


def _latin_if_touching(m: re.Match[str], text: str) -> str:
    """A whole run of look-alike letters in Latin when it touches an ASCII letter, digit or underscore;
    as it is otherwise. Whole runs, so that folding folded text changes nothing."""
    start, end = m.span()
    if (start and text[start - 1] in _WORD_CHAR) or (end < len(text) and text[end] in _WORD_CHAR):
        return m.group(0).translate(_LOOKALIKE_TABLE)
    return m.group(0)
