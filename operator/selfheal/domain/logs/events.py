"""Event splitting: raw log text, cleaned of terminal colours, cut into events with their stack traces."""

from __future__ import annotations

import re

from selfheal.domain.logs.masking import MAX_LINE_CHARS
from selfheal.domain.logs.severity import severity

MAX_EVENT_LINES = 200

# Terminal escape sequences (colours, cursor moves): CSI sequences and two-character escapes.
_ANSI = re.compile(r"\x1b\[[0-9;:?<=>]{0,64}[ -/]{0,4}[@-~]|\x1b[@-Z\\^_]|\x1b\][^\x07\x1b]{0,512}(?:\x07|\x1b\\)?")
# Characters no text log holds: controls other than tab and line ends, and the replacement
# character that undecodable bytes become.
_UNREADABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences, so a coloured ``ERROR`` reads as ``ERROR``."""
    return _ANSI.sub("", text) if "\x1b" in text else text


def unreadable_share(text: str) -> float:
    """The share of ``text`` that is binary noise (control characters, undecodable bytes), 0 to 1."""
    if not text:
        return 0.0
    return (len(text) - len(_UNREADABLE.sub("", text))) / len(text)


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


def parse_events(text: str) -> list[str]:
    """Split a log into events, joining multi-line continuations to the event that opened them.

    A Go panic with its goroutine stack, a Python traceback (joined to the error line that logged
    it), a Java exception with its ``at`` frames and ``Caused by:`` chain, and indented
    continuation lines each become part of one event. Blank lines between events are dropped.
    Terminal escape sequences are removed first.
    """
    if not text:
        return []
    text = strip_ansi(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    events: list[str] = []
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

    for i in range(n):
        line = lines[i]
        c0 = line[:1]
        # Fast path: an ordinary single-line record, neither continued nor continuing.
        if (
            not mode
            and c0
            and c0 not in _WS
            and not line.startswith(_SPECIAL_STARTS)
            and (i + 1 >= n or lines[i + 1][:1] not in _WS_OR_EMPTY)
        ):
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
    return events


_WS = (" ", "\t")
_WS_OR_EMPTY = (" ", "\t", "")
_SPECIAL_STARTS = (_PY_TRACEBACK, "Caused by:", "Suppressed:")


def _MAY_OPEN_GO(line: str) -> bool:
    if "panic" in line or "fatal error" in line or line.startswith("goroutine "):
        return bool(_GO_OPENER.search(line[:MAX_LINE_CHARS]))
    return False
