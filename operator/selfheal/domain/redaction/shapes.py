"""Secrets known by their layout: private key blocks (whole, truncated or headless) and URL userinfo."""

from __future__ import annotations

import re
import string
from collections.abc import Iterator

from selfheal.domain.redaction.spans import MARKER_PREFIX, Span

PRIVATE_KEY_TRIGGER = r"PRIVATE KEY|PuTTY-User-Key"
_BEGIN = re.compile(r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|PuTTY-User-Key-File-[0-9]")
_END = re.compile(r"-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_KEY_BODY_LINE = re.compile(r"[ \t]{0,16}[A-Za-z0-9+/]{16,128}={0,2}[ \t]{0,16}")
# The last line of a key body may be short ("Kj8=").
_KEY_LAST_LINE = re.compile(r"[ \t]{0,16}[A-Za-z0-9+/]{1,128}={0,2}[ \t]{0,16}")

_URL = re.compile(
    r"([A-Za-z][A-Za-z0-9+.\-]{0,20}://)([^\s:/@\"'<>]{0,256}):"
    # The password runs to the last "@" before the host: it may hold "/" and "@", while the parts
    # after an inner "@" hold no "/" (else that "@" is in the path, not the userinfo). Each
    # repetition starts at an "@", so the split is unambiguous and the scan linear.
    r"([^\s@\"'<>]{1,256}(?:@[^\s/@\"'<>]{0,256}){0,8})@"
)
# A scheme, a user and a password before an "@": what `url_password_spans` reads.
URL_PASSWORD_TRIGGER = r"://[^\s:/@\"'<>]*:[^\s@\"'<>]+@"
_SCHEME_CHARS = frozenset(string.ascii_letters + string.digits + "+.-")


def _orphan_start(text: str, floor: int, end_start: int) -> int:
    """Start of the run of base64-looking whole lines just before an END line without a BEGIN.

    The BEGIN line fell outside the captured tail; the lines above the END are key material.
    Each line is looked at once and never before ``floor``, so the walk is linear.
    """
    start = text.rfind("\n", floor, end_start) + 1
    if start < floor:
        start = floor
    if text[start:end_start].strip():
        return end_start  # the END marker is not at the start of its line
    line_re = _KEY_LAST_LINE
    while start > floor:
        prev = text.rfind("\n", floor, start - 1) + 1
        if prev < floor:
            prev = floor
        if not line_re.fullmatch(text, prev, start - 1):
            break
        start = prev
        line_re = _KEY_BODY_LINE
    return start


def private_key_spans(text: str, rank: int) -> Iterator[Span]:
    """Whole key blocks; a block cut off by the tail runs to the end, a headless one from its body."""
    if "PRIVATE KEY" not in text and "PuTTY-User-Key" not in text:
        return
    pos = 0
    begin = _BEGIN.search(text)
    while True:
        if begin is not None and begin.start() < pos:
            begin = _BEGIN.search(text, pos)  # each BEGIN is searched for once: the scan stays linear
        orphan = _END.search(text, pos, begin.start() if begin else len(text))
        if orphan is not None:
            yield Span(_orphan_start(text, pos, orphan.start()), orphan.end(), "private_key", rank)
            pos = orphan.end()
            continue
        if begin is None:
            return
        end = _END.search(text, begin.end())
        stop = len(text) if end is None else end.end()
        yield Span(begin.start(), stop, "private_key", rank)
        pos = stop


def url_password_spans(text: str, rank: int) -> Iterator[Span]:
    """The password of ``scheme://user:password@host``; user and host stay readable."""
    pos = text.find("://")
    last = 0
    while pos >= 0:
        start = pos
        while start > last and pos - start <= 21 and text[start - 1] in _SCHEME_CHARS:
            start -= 1
        has_at = text.find("@", pos, pos + 2400) >= 0  # no "@" near: no userinfo, nothing to try
        m = _URL.match(text, start) if has_at and start < pos and pos - start <= 21 else None
        if m is not None and not (start > 0 and text[start - 1] in _SCHEME_CHARS):
            password = m.group(3)
            port_path = "/" in password and password.split("/", 1)[0].isdigit()
            if not port_path and not password.startswith(MARKER_PREFIX):
                yield Span(m.start(3), m.end(3), "url_password", rank)
                last = m.end()
        pos = text.find("://", pos + 3)
