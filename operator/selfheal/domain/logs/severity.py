"""Severity and crash signatures: how serious one log event is, read from its level, status and words."""

from __future__ import annotations

import re
from typing import Literal

from selfheal.domain.logs.masking import MAX_LINE_CHARS

Severity = Literal["error", "warning", "info"]

SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}

_LEVEL_WORDS: dict[str, Severity] = {
    "trace": "info",
    "trce": "info",
    "debug": "info",
    "dbug": "info",
    "info": "info",
    "inf": "info",
    "notice": "info",
    "warn": "warning",
    "warning": "warning",
    "wrn": "warning",
    "error": "error",
    "err": "error",
    "eror": "error",
    "fail": "error",
    "crit": "error",
    "critical": "error",
    "fatal": "error",
    "panic": "error",
    "severe": "error",
    "alert": "error",
    "emerg": "error",
    "emergency": "error",
    "dpanic": "error",
}
# Levels a logger uses just before the process dies (log.Fatal, logger.fatal, zap's Panic).
_DYING_LEVELS = frozenset({"fatal", "panic", "dpanic", "emerg", "emergency"})
_LEVEL_NAMES = "|".join(sorted(_LEVEL_WORDS, key=len, reverse=True))
_KV_LEVEL = re.compile(
    r"(?<![\w.])[\"']?(?:level|lvl|severity|loglevel|log\.level|levelname)[\"']?[ \t]{0,2}[=:][ \t]{0,2}[\"']?("
    + _LEVEL_NAMES
    + r")\b",
    re.IGNORECASE,
)
# "(?!\w)", not "\b": after the masked "<TS>" the next character is a space, and there is no
# word boundary between ">" and a space.
_KLOG = re.compile(r"^([IWEF])(?:\d{4}|<TS>)(?!\w)")
_BRACKET_LEVEL = re.compile(r"[\[<(|](" + _LEVEL_NAMES + r")[\]>)|:]", re.IGNORECASE)
# Microsoft.Extensions.Logging's console format: "fail: Orders.Api[0]".
_DOTNET_LEVEL = re.compile(r"^(trce|dbug|info|warn|fail|crit):(?= )")
_UPPER_LEVEL = re.compile(
    r"(?<![\w\-])(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRIT|CRITICAL|FATAL|PANIC|SEVERE)(?![\w\-])"
)
_STATUS_LINE = re.compile(
    r"(?:(?:(?<=<TS> )|(?<=\d\d:\d\d:\d\d ))([1-5]\d\d)(?= - )|(?<=<NUM>/<NUM> )([1-5]\d\d)(?= )"
    r"|HTTP/\d(?:\.\d)?\"?[ \t]{1,3}([1-5]\d\d)\b"
    r"|(?<![\w])(?:[a-z]{0,20}status|status_?code|statusCode|[a-z]{0,20}_status|response_code)"
    r"[\"']?[ \t]{0,2}[=:][ \t]{0,2}[\"']?([1-5]\d\d)\b)",
    re.IGNORECASE,
)
_ERROR_WORDS = re.compile(
    r"\b(?:errors?|exceptions?|fatal|panic|panicked|traceback|segfault|failed|failures?|unhandled|uncaught)\b",
    re.IGNORECASE,
)
# An error word that counts nothing: "no error", "0 errors", "without errors", "failed=0".
_BENIGN_BEFORE = re.compile(r"(?:\b(?:no|zero|without)|(?<!\S)(?P<num>0|<NUM>))[ \t]{1,3}$", re.IGNORECASE)
_BENIGN_AFTER = re.compile(r"[\"']?[ \t]{0,2}[=:][ \t]{0,2}[\"']?(?P<num>0|<NUM>)(?![\w.])")
_BENIGN_LOOKBACK = 12

_WARN_WORDS = re.compile(r"\b(?:warn|warning|deprecated|retrying|timed out|timeout|refused|throttled)\b", re.IGNORECASE)

_CRASH = re.compile(
    # Go, Rust and C runtimes
    r"panic:|http: panic serving|\bpanic\(|panicked at|^goroutine (?:\d+|<NUM>) \[running\]|fatal error:"
    r"|SIGSEGV|SIGABRT|SIGBUS|[Ss]egmentation fault|\bsegfault|core dumped|all goroutines are asleep"
    r"|concurrent map (?:writes|read and map write)|stack overflow|StackOverflowError"
    # memory
    r"|OutOfMemoryError|\bMemoryError\b|[Oo]ut of memory|\bOOM(?:Killed)?\b|Killed process"
    r"|JavaScript heap out of memory"
    r"|index out of range|nil pointer dereference|invalid memory address"
    # uncaught exceptions (Python, Java, Node, .NET, PHP, Ruby, Elixir/Erlang)
    r"|Traceback \(most recent call last\)|Exception in thread \""
    r"|(?i:unhandled (?:exception|rejection|error|promise rejection)|uncaught (?:\w+)?(?:exception|error))"
    r"|UnhandledPromiseRejection|Unhandled 'error' event|PHP Fatal error|Fatal error: Uncaught"
    r"|\bNoMethodError\b|undefined method [`'‘]\S+['’] for nil"
    r"|^\*\* \((?:EXIT|exit|stop|[A-Z][\w.]*(?:Error|Exception))\)|GenServer \S+ terminating|=CRASH REPORT"
    r"|\*\* \(EXIT from|:in [`'‘][^\n]{0,300}\([A-Z][\w:]*(?:Error|Exception)\)\s*$"
    # the process ending badly
    r"|exit(?:ed|ing)? (?:with )?(?:status|code):? ?[1-9]\d{0,2}\b|exit_?(?:code|status)=[1-9]"
    r"|returned non-zero exit status|signal: (?:killed|aborted|terminated|segmentation fault|bus error)"
    r"|^Killed$|terminated by signal|crashed by signal|[Pp]rocess (?:exited|terminated) (?:with|unexpectedly)"
    r"|Main process exited, code=(?:killed|dumped)|status=[1-9]\d{0,2}/(?:FAILURE|KILL|SEGV|ABRT|TERM)"
    r"|(?<!no )(?<!zero )\b[Ff]atal error\b(?!s)|APPLICATION FAILED TO START|Could not start application"
    r"|exit signal (?:Segmentation fault|Aborted|Bus error)",
    re.MULTILINE,
)
# Words one of which every alternative of a pattern contains (lower case unless said otherwise).
_CRASH_HINTS = (
    "panic",
    "goroutine",
    "fatal",
    "sig",
    "seg",
    "core dumped",
    "concurrent map",
    "overflow",
    "memory",
    "oom",
    "killed",
    "out of range",
    "pointer",
    "traceback",
    "exception",
    "unhandled",
    "uncaught",
    "nomethod",
    "undefined method",
    "** (",
    "genserver",
    "crash",
    ":in ",
    "exit",
    "signal",
    "process",
    "status=",
    "application failed",
    "could not start",
)
_ERROR_HINTS = ("error", "exception", "fatal", "panic", "traceback", "segfault", "fail", "unhandled", "uncaught")
_WARN_HINTS = ("warn", "deprecated", "retrying", "timed out", "timeout", "refused", "throttled")
_KV_LEVEL_HINTS = ("level", "lvl", "severity")
_UPPER_HINTS = ("TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "ERR", "CRIT", "FATAL", "PANIC", "SEVERE")
_EXCEPTION_HINTS = ("error", "exception", "throwable", "fault")
_HAS_DIGIT = re.compile(r"\d").search

# A stack frame of a multi-line event, as masking leaves it (indentation gone, numbers masked):
# Java/.NET/Node "at pkg.Class.method(File.java:<NUM>)", Node "at /app/x.js:<NUM>", Python
# 'File "/app/x.py", line <NUM>, in f', Ruby "from /app/x.rb:<NUM>:in", PHP "#<NUM> /app/x.php(<NUM>)".
_FRAME = re.compile(
    r"^(?:at [\w$.<>`'\[\]/@ -]{1,300}\(.{0,400}\)"
    r"|at (?:\S+ \()?(?:/|node:|file:|\w:\\)\S*:(?:\d+|<NUM>)"
    r"|at \S+ in \S+:line (?:\d+|<NUM>)"
    r"|File \".{1,300}\", line (?:\d+|<NUM>)"
    r"|(?:from )?\S+\.rb:(?:\d+|<NUM>)(?::in\b)?"
    r"|#(?:\d+|<NUM>) \S+\.php\()",
    re.MULTILINE,
)
# Frames flattened into one line, as JSON loggers write a stack trace into a field.
_INLINE_FRAME = re.compile(
    r" at [\w$.<>]{3,200} ?\([^()\n]{0,300}\)| File \"[^\"\n]{1,300}\", line (?:\d+|<NUM>)| at /\S{1,300}:(?:\d+|<NUM>)"
)
_EXCEPTION_NAME = re.compile(r"\b(?:[A-Z][\w$]*\.)*[A-Z][\w$]*(?:Error|Exception|Throwable|Fault)\b")


def _error_words(line: str) -> tuple[bool, bool]:
    """Whether ``line`` has an error word that is not a zero count, and whether a masked count
    (``<NUM>``, which may have been a zero or not) decided that for some word."""
    uncertain = False
    for m in _ERROR_WORDS.finditer(line):
        s, e = m.span()
        b = _BENIGN_BEFORE.search(line, max(0, s - _BENIGN_LOOKBACK), s) or _BENIGN_AFTER.match(line, e)
        if b is None:
            return True, uncertain
        if b.group("num") == "<NUM>":
            uncertain = True
            return True, uncertain
    return False, uncertain


def _worse(a: Severity, b: Severity) -> Severity:
    return a if SEVERITY_ORDER[a] <= SEVERITY_ORDER[b] else b


def _stack_trace_of_exception(event: str, low: str) -> bool:
    """An event that names an exception and carries stack frames: an exception thrown far enough to
    print its stack, whichever language printed it, on lines of its own or inside a JSON field."""
    if not _mentions(low, _EXCEPTION_HINTS):
        return False
    if "\n" not in event:
        head = event[:MAX_LINE_CHARS]
        return len(_INLINE_FRAME.findall(head)[:2]) == 2 and bool(_EXCEPTION_NAME.search(head))
    rest = event.partition("\n")[2]
    return bool(_FRAME.search(rest)) and bool(_EXCEPTION_NAME.search(event[:2000]))


def _mentions(text: str, words: tuple[str, ...]) -> bool:
    return any(w in text for w in words)


def severity(line: str) -> Severity:
    return classify(line)[0]


def _level_word(first: str, low: str) -> str | None:
    m = _KV_LEVEL.search(first) if _mentions(low, _KV_LEVEL_HINTS) else None
    if m:
        return m.group(1).lower()
    m = _KLOG.match(first)
    if m:
        return {"I": "info", "W": "warn", "E": "error", "F": "fatal"}[m.group(1)]
    m = _DOTNET_LEVEL.match(first)
    if m:
        return m.group(1)
    m = (_UPPER_LEVEL.search(first) if _mentions(first, _UPPER_HINTS) else None) or _BRACKET_LEVEL.search(first)
    return m.group(1).lower() if m else None


def classify(line: str) -> tuple[Severity, bool, bool]:
    """Classify a log line or event as ``error``, ``warning`` or ``info``; also whether a masked count
    decided it (see ``_error_words``) and whether it is a crash.

    An explicit level (logfmt/JSON ``level``, klog prefix, ``[ERROR]``, an upper-case level word)
    decides; an HTTP 5xx (4xx) status in an access-log line raises it to error (warning); without
    a level, error and warning words decide. A crash is an error: a crash signature anywhere in the
    event (panic, segfault, OOM, an uncaught exception, a process exiting with a failure status or
    killed by a signal), an exception printed with its stack frames, or a fatal/panic level.
    """
    if not line:
        return "info", False, False
    # Each pattern runs only where one of its words occurs: cheap substring tests keep a line of
    # unusual words from paying for every alternative at every position.
    low = line.lower()
    if (_mentions(low, _CRASH_HINTS) and _CRASH.search(line)) or _stack_trace_of_exception(line, low):
        return "error", False, True
    first = line.split("\n", 1)[0][:MAX_LINE_CHARS]
    word = _level_word(first, low)
    level: Severity | None = _LEVEL_WORDS.get(word) if word else None
    if word in _DYING_LEVELS:
        return "error", False, True
    result: Severity = level or "info"
    sm = _STATUS_LINE.search(first) if _HAS_DIGIT(first) else None
    if sm:
        code = next(g for g in sm.groups() if g)
        if code[0] == "5":
            result = "error"
        elif code[0] == "4":
            result = _worse(result, "warning")
    uncertain = False
    if level is None and result == "info":
        found, uncertain = _error_words(line) if _mentions(low, _ERROR_HINTS) else (False, False)
        if found:
            result = "error"
        elif _mentions(low, _WARN_HINTS) and _WARN_WORDS.search(line):
            result = "warning"
    return result, uncertain, False


def is_crash_signature(event: str) -> bool:
    """True when the event shows a crash: panic, fatal error, segfault, Traceback, OOM, an uncaught
    exception or one printed with its stack, a fatal level, a process exiting with a failure."""
    return classify(event)[2]


def http_status(first_line: str) -> str | None:
    """The HTTP status of an access-log or request line (``502``), or None."""
    m = _STATUS_LINE.search(first_line[:MAX_LINE_CHARS]) if _HAS_DIGIT(first_line) else None
    return next(g for g in m.groups() if g) if m else None
