"""Event splitting: raw log text, cleaned of terminal colours, cut into events with their stack traces."""

from __future__ import annotations

import re
from collections.abc import Sequence

import re2

from selfheal.domain.logs.masking import MAX_LINE_CHARS
from selfheal.domain.logs.severity import severity
from selfheal.domain.redaction.lines import matches

MAX_EVENT_LINES = 200

# Terminal escape sequences (colours, cursor moves): CSI sequences and two-character escapes.
_ANSI = re.compile(r"\x1b\[[0-9;:?<=>]{0,64}[ -/]{0,4}[@-~]|\x1b[@-Z\\^_]|\x1b\][^\x07\x1b]{0,512}(?:\x07|\x1b\\)?")
# Characters no text log holds: controls other than tab and line ends, and the replacement
# character that undecodable bytes become.
_UNREADABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_CONTROLS = dict.fromkeys([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences, so a coloured ``ERROR`` reads as ``ERROR``."""
    return _ANSI.sub("", text) if "\x1b" in text else text


def unreadable_share(text: str) -> float:
    """The share of ``text`` that is binary noise (control characters, undecodable bytes), 0 to 1."""
    if not text:
        return 0.0
    # Deleting through a table is a single pass for ASCII text; other text holds few such characters,
    # which a pattern finds faster.
    kept = text.translate(_CONTROLS) if text.isascii() else _UNREADABLE.sub("", text)
    return (len(text) - len(kept)) / len(text)


_GO_OPENER = re.compile(r"\bpanic: |http: panic serving|\bfatal error: |^goroutine \d+ \[|panicked at")
_PY_TRACEBACK = "Traceback (most recent call last):"
_RECORD_START = re.compile(
    r"^(?:\d{4}[-/.]\d{2}[-/.]\d{2}|[A-Z][a-z]{2} [ \d]\d \d{2}:|[IWEF]\d{4} \d|\d{2}:\d{2}:\d{2}|\{|\[\d{4}-"
    r"|(?:level|time|ts|lvl)=|(?:TRACE|DEBUG|INFO|WARN|WARNING|ERROR|CRITICAL|FATAL)\b)"
)
_GO_CONT = re.compile(
    r"^(?:goroutine \d+ \[|created by |\[signal |exit status \d+|\.\.\.additional frames elided|panic\(|\[recovered\])"
)
_GO_FRAME = re.compile(r"^[^\s:]{1,300}\(.{0,500}\)$")
_PY_EXC_LINE = re.compile(r"^[A-Za-z_][\w.]{0,200}(?::.*)?$")
_PY_CHAIN = ("During handling of the above exception", "The above exception was the direct cause")
_JAVA_CONT = ("Caused by:", "Suppressed:")
_JAVA_EXC_LINE = re.compile(r"^[\w$.]{1,200}(?:Exception|Error|Throwable)(?::.*)?$")


def _is_java_frame(line: str) -> bool:
    return bool(line) and line[0] in " \t" and line.lstrip().startswith(("at ", "..."))


def parse_events(text: str, near: Sequence[tuple[int, int]] | None = None) -> list[str]:
    """Split a log into events, joining multi-line continuations to the event that opened them.

    A Go panic with its goroutine stack, a Python traceback (joined to the error line that logged
    it), a Java exception with its ``at`` frames and ``Caused by:`` chain, and indented
    continuation lines each become part of one event. Blank lines between events are dropped.
    Terminal escape sequences are removed first.

    Most lines are events of their own: one scan finds the few that may open, continue or close a
    multi-line event (`EVENT_EDGES`), and only around those are lines read one by one. ``near``:
    ranges of whole lines of ``text`` that hold every line `EVENT_EDGES` matches, when a scan of the
    text already found them.
    """
    if not text:
        return []
    cleaned = strip_ansi(text)
    if "\r" in cleaned:
        cleaned = cleaned.replace("\r\n", "\n")
    if cleaned is not text:
        near = None  # the ranges were of the text before cleaning
    text = cleaned
    lines = text.split("\n")
    events: list[str] = []
    done = 0
    for j in _eventful(text, lines, near):
        if j < done:
            continue
        # Start at the line before: an exception line or a traceback may join the event it opened.
        start = max(done, j - 1)
        events.extend(lines[done:start])
        done = _read(lines, start, events)
    events.extend(lines[done:])
    return events


def _eventful(text: str, lines: list[str], near: Sequence[tuple[int, int]] | None) -> list[int]:
    """Lines that are not plainly an event of their own: blank or indented lines and the lines before
    them, lines that open a traceback or a chained exception, and lines that may open a Go panic."""
    found: set[int] = set()
    line = 0
    pos = 0
    ranges = near if near is not None else matches(_EVENTFUL, text)
    for start, end in ranges:
        line += text.count("\n", pos, start)
        last = line + text.count("\n", start, end)
        pos = end
        for i in range(line, last + 1):
            found.add(i)
            if i > 0 and lines[i][:1] in _WS_OR_EMPTY:
                found.add(i - 1)
        line = last
    return sorted(found)


def _read(lines: list[str], start: int, events: list[str]) -> int:
    """Read events line by line from ``start`` (with nothing pending) until a line that is plainly an
    event of its own is reached with nothing open; return that line (not read), or the end."""
    append_event = events.append
    cur: list[str] = []
    mode = ""  # "", "go", "py", "py_end"
    n = len(lines)

    def flush() -> None:
        if len(cur) == 1:
            append_event(cur[0])
        elif cur:
            while cur and not cur[-1].strip():
                cur.pop()
            append_event("\n".join(cur))
        cur.clear()

    for i in range(start, n):
        line = lines[i]
        c0 = line[:1]
        # An ordinary single-line record, neither continued nor continuing.
        if (
            not mode
            and c0
            and c0 not in _WS
            and not line.startswith(_SPECIAL_STARTS)
            and (i + 1 >= n or lines[i + 1][:1] not in _WS_OR_EMPTY)
        ):
            if i > start and not _MAY_OPEN_GO(line):
                flush()
                return i
            if cur:
                flush()
            cur.append(line)
            if _MAY_OPEN_GO(line):
                mode = "go"
            continue
        if cur and len(cur) < MAX_EVENT_LINES:
            joined = False
            if not line.strip():
                joined = mode in ("go", "py", "py_end")
            elif c0 in _WS or line.startswith(_JAVA_CONT):
                joined = True
            elif mode == "go":
                joined = not _RECORD_START.match(line) and (bool(_GO_CONT.match(line)) or bool(_GO_FRAME.match(line)))
            elif mode in ("py", "py_end"):
                if line.startswith(_PY_CHAIN):
                    joined, mode = True, "py"
                elif line.startswith(_PY_TRACEBACK):
                    joined = True
                elif mode == "py" and not _RECORD_START.match(line) and _PY_EXC_LINE.match(line):
                    joined, mode = True, "py_end"
            elif line.startswith(_PY_TRACEBACK):
                if len(cur) == 1 and severity(cur[0]) == "error":
                    joined, mode = True, "py"
            elif (
                i + 1 < n
                and _is_java_frame(lines[i + 1])
                and _JAVA_EXC_LINE.match(line)
                and not _RECORD_START.match(line)
            ):
                joined = True
            if joined:
                cur.append(line)
                continue
        if not line.strip():
            flush()
            mode = ""
            continue
        flush()
        cur.append(line)
        if line.startswith(_PY_TRACEBACK):
            mode = "py"
        elif _MAY_OPEN_GO(line):
            mode = "go"
        else:
            mode = ""
    flush()
    return n


_WS = (" ", "\t")
_WS_OR_EMPTY = (" ", "\t", "")
_SPECIAL_STARTS = (_PY_TRACEBACK, "Caused by:", "Suppressed:")
# Where a line may be part of a multi-line event (see `_eventful`): at its start, a blank, an indent or
# an opening phrase; anywhere, the words `_MAY_OPEN_GO` looks for.
EVENT_EDGES = (
    r"(?m)^(?:[ \t]|$|Traceback \(most recent call last\):|Caused by:|Suppressed:|goroutine )|panic|fatal error"
)
_EVENTFUL = re2.compile(EVENT_EDGES)


def _MAY_OPEN_GO(line: str) -> bool:
    if "panic" in line or "fatal error" in line or line.startswith("goroutine "):
        return bool(_GO_OPENER.search(line[:MAX_LINE_CHARS]))
    return False
