"""Where secrets are: spans found by every rule, merged, and replaced by one marker each."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

MARKER_PREFIX = "[REDACTED:"

# Characters a credential token is made of; a match is widened over them so no tail of it survives.
TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=")
_MAX_WIDEN = 4096


class Span(NamedTuple):
    """``text[start:end]`` is a secret of ``kind``; ``rank`` breaks ties (lower wins)."""

    start: int
    end: int
    kind: str
    rank: int = 0


def marker(kind: str) -> str:
    return f"{MARKER_PREFIX}{kind}]"


def widen(text: str, start: int, end: int) -> tuple[int, int]:
    """Trim non-token characters off both ends of a match, then grow its end over token characters."""
    while start < end and text[start] not in TOKEN_CHARS:
        start += 1
    while end > start and text[end - 1] not in TOKEN_CHARS:
        end -= 1
    limit = min(len(text), end + _MAX_WIDEN)
    while end < limit and text[end] in TOKEN_CHARS:
        end += 1
    return start, end


def in_marker(text: str, start: int) -> bool:
    """Whether ``start`` falls inside a marker already in ``text`` (redacting again changes nothing)."""
    left = text.rfind(MARKER_PREFIX, max(0, start - 40), start + 1)
    if left < 0:
        return False
    close = text.find("]", left)
    return close >= start


Edit = tuple[int, int, int]


def apply(
    text: str,
    spans: Iterable[Span],
    found: dict[str, int],
    replaced: dict[str, str] | None = None,
    edits: list[Edit] | None = None,
) -> str:
    """Replace the union of ``spans`` with markers; each replaced region is counted once, by the kind
    of the span that starts it (ties: the lower rank, then the longer). Spans inside markers are skipped.
    ``replaced`` collects each replaced text with its kind, ``edits`` each ``(start, end, length of
    the marker)`` in ``text``'s positions."""
    ordered = sorted((s for s in spans if s.end > s.start), key=lambda s: (s.start, s.rank, -s.end))
    if not ordered:
        return text
    parts: list[str] = []
    pos = 0
    current: Span | None = None
    cur_end = 0
    for span in ordered:
        if current is not None and span.start < cur_end:
            cur_end = max(cur_end, span.end)
            continue
        if current is not None:
            pos = _emit(text, parts, pos, current, cur_end, found, replaced, edits)
        if in_marker(text, span.start):
            current = None
            continue
        current, cur_end = span, span.end
    if current is not None:
        pos = _emit(text, parts, pos, current, cur_end, found, replaced, edits)
    if not parts:
        return text
    parts.append(text[pos:])
    return "".join(parts)


def _emit(
    text: str,
    parts: list[str],
    pos: int,
    span: Span,
    end: int,
    found: dict[str, int],
    replaced: dict[str, str] | None,
    edits: list[Edit] | None,
) -> int:
    if replaced is not None:
        replaced[text[span.start : end]] = span.kind
    parts.append(text[pos : span.start])
    parts.append(marker(span.kind))
    if edits is not None:
        edits.append((span.start, end, len(parts[-1])))
    found[span.kind] = found.get(span.kind, 0) + 1
    return end
