"""Line ranges of a text: the lines a pattern's matches touch, found in one linear scan, and merged."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import re2

Lines = list[tuple[int, int]]


def matches(regex: re2._Regexp, text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each match in ``text``; ASCII text is scanned as bytes, whose offsets are its
    own (a ``str`` costs a conversion of offsets at every match)."""
    if text.isascii():
        for m in regex.finditer(text.encode("ascii")):
            yield m.start(), m.end()
    else:
        for m in regex.finditer(text):
            yield m.start(), m.end()


def line_of(text: str, start: int, end: int) -> tuple[int, int]:
    """The lines ``text[start:end]`` touches, as one ``(first line start, last line end)`` range."""
    first = text.rfind("\n", 0, start) + 1
    last = text.find("\n", max(start, end - 1))
    return first, len(text) if last < 0 else last


def merge(ranges: Iterable[tuple[int, int]]) -> Lines:
    """Ranges sorted, with overlapping and adjacent ones (one line after the other) made one."""
    out: Lines = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1] + 1:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def lines_matching(regex: re2._Regexp, text: str, most: float = 1.0) -> Lines | None:
    """The lines of ``text`` that ``regex`` matches (merged ranges), or None once they make up more than
    ``most`` of the text read so far (past the first few hundred): then reading it whole costs less."""
    found: Lines = []
    covered = 0
    reach = 0
    for count, (start, end) in enumerate(matches(regex, text), start=1):
        first, last = line_of(text, start, end)
        covered += max(0, last - max(first, reach))
        reach = max(reach, last)
        found.append((first, last))
        if count % 256 == 0 and covered > most * reach:
            return None
    if covered > most * len(text):
        return None
    return merge(found)
