"""Log templating: event splitting, masking of variable parts, severity, crash signatures, template mining."""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning", "info"]

SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}

WILDCARD = "<*>"

# Hard bounds that keep every step linear whatever a pod prints.
MAX_EVENT_LINES = 200
MAX_LINE_CHARS = 4096
MAX_TEMPLATE_TOKENS = 400
_TOKEN_CACHE_LIMIT = 400_000

# ---------------------------------------------------------------------------------------------
# Masking
# ---------------------------------------------------------------------------------------------

_LEAD = "([{<\"'`+"
_TRAIL = ")]}>\"'`,;:.!?"

_ISO_TS = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T_]\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?")
_DATE = re.compile(r"\d{4}/\d{1,2}/\d{1,2}|\d{1,2}/[A-Z][a-z]{2}/\d{4}(?::\d{2}:\d{2}:\d{2})?|\d{4}\.\d{2}\.\d{2}")
_TIME = re.compile(r"\d{1,2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?")
_KLOG_HEAD = re.compile(r"([IWEF])\d{4}")
_EPOCH = re.compile(r"1\d{9}(?:\.\d{1,9})?|1\d{12}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_IPV6 = re.compile(r"(?=[0-9a-fA-F:]*\d)(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}")
_IPV6_BRACKETED_PORT = re.compile(r"(?=[0-9a-fA-F:]*\d)(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}\]:\d{1,5}")
_HEX_PREFIXED = re.compile(r"0[xX][0-9a-fA-F]{1,64}")
_HEX_LONG = re.compile(r"(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,}|[0-9a-fA-F]{16,}")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|μs|ms|s|m|h|d)){1,4}")
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?")
_NUM_UNIT = re.compile(r"[-+]?\d+(?:\.\d+)?(%|[kKMGTP]i?[bB]?|[bB]|bytes|x|rps|qps|ops)")
_PATH_LINE = re.compile(r"(.{0,512}\.[A-Za-z]{1,8}):(\d+)(?::\d+)?")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{0,20}://\S+")
_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9\-.]{1,253}\.[A-Za-z]{2,24}")
_STATUS_KEYS = frozenset(
    {"status", "status_code", "statuscode", "code", "http_status", "httpstatus", "response_code", "resp_status"}
)
_STATUS = re.compile(r"[1-5]\d\d")
_SEGMENT_SPLIT = re.compile(r"([/\-_.:,#@|()\[\]{}?*&+])")
_MONTHS = frozenset(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])

_CLASSES = re.compile(
    "|".join(
        f"(?P<{name}>{rx.pattern})"
        for name, rx in (
            ("ts", _ISO_TS),
            ("time", _TIME),
            ("date", _DATE),
            ("epoch", _EPOCH),
            ("ipport", re.compile(r"(?:\d{1,3}\.){3}\d{1,3}:\d{1,5}")),
            ("ip", re.compile(r"(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?")),
            ("num", _NUMBER),
            ("uuid", _UUID),
            ("hex", re.compile(_HEX_PREFIXED.pattern + "|" + _HEX_LONG.pattern)),
            ("dur", _DURATION),
            ("unit", re.compile(r"[-+]?\d+(?:\.\d+)?(?P<unitsuffix>%|[kKMGTP]i?[bB]?|[bB]|bytes|x|rps|qps|ops)")),
            ("klog", _KLOG_HEAD),
        )
    )
)
_CLASS_TOKENS = {
    "ts": "<TS>",
    "time": "<TS>",
    "date": "<TS>",
    "epoch": "<TS>",
    "ipport": "<IP>:<PORT>",
    "ip": "<IP>",
    "num": "<NUM>",
    "uuid": "<UUID>",
    "hex": "<HEX>",
    "dur": "<DUR>",
}

_token_cache: dict[str, str] = {}
_value_cache: dict[str, str] = {}


_HAS_DIGIT = re.compile(r"\d").search


def clear_caches() -> None:
    """Forget memoised token masks (they only speed up repeated tokens; results never depend on them)."""
    _token_cache.clear()
    _value_cache.clear()


def _mask_segment(seg: str) -> str:
    if not seg or not _HAS_DIGIT(seg):
        return seg
    if _NUMBER.fullmatch(seg):
        return "<NUM>"
    if _HEX_LONG.fullmatch(seg) or _HEX_PREFIXED.fullmatch(seg):
        return "<HEX>"
    if _DURATION.fullmatch(seg):
        return "<DUR>"
    m = _NUM_UNIT.fullmatch(seg)
    if m:
        return "<NUM>" + m.group(1)
    if len(seg) >= 8 and any(c.isalpha() for c in seg):
        return "<ID>"
    return seg


def _mask_core(core: str, kv: bool = True) -> str:
    """Mask one whitespace-free token with its surrounding punctuation removed."""
    if kv and "=" in core:
        key, _, value = core.partition("=")
        if key and len(key) <= 64 and key.replace(".", "_").replace("-", "_").isidentifier():
            if key.lower() in _STATUS_KEYS and _STATUS.fullmatch(value.strip("\"'")):
                return core
            return f"{key}={_mask_token(value, kv=False)}" if value else core
    if "://" in core and _URL.fullmatch(core):
        return "<URL>"
    if "@" in core and _EMAIL.fullmatch(core):
        return "<EMAIL>"
    if not _HAS_DIGIT(core):
        return core
    m = _CLASSES.fullmatch(core)
    if m:
        kind = m.lastgroup
        if kind == "unit":
            return "<NUM>" + m.group("unitsuffix")
        if kind == "klog":
            return core[0] + "<TS>"
        return _CLASS_TOKENS[kind or ""]
    if ":" in core and core.count(":") >= 2:
        if _IPV6.fullmatch(core):
            return "<IP>"
        if _IPV6_BRACKETED_PORT.fullmatch(core):
            return "<IP>]:<PORT>"
    m = _PATH_LINE.fullmatch(core) if len(core) <= 600 else None
    if m:
        return f"{_mask_core(m.group(1))}:<NUM>"
    if len(core) > 512:
        return "<LONG>"
    parts = _SEGMENT_SPLIT.split(core)
    if len(parts) > 1:
        return "".join(p if i % 2 else _mask_segment(p) for i, p in enumerate(parts))
    return _mask_segment(core)


def _mask_token(tok: str, kv: bool = True) -> str:
    cache = _token_cache if kv else _value_cache
    cached = cache.get(tok)
    if cached is not None:
        return cached
    if tok[0].isalnum() and tok[-1].isalnum():
        masked = _mask_core(tok, kv)
    else:
        lead = tok.lstrip(_LEAD)
        core = lead.rstrip(_TRAIL)
        masked = tok if not core else tok[: len(tok) - len(lead)] + _mask_core(core, kv) + lead[len(core) :]
    if len(cache) >= _TOKEN_CACHE_LIMIT:
        cache.clear()
    cache[tok] = masked
    return masked


def _flatten_json(line: str) -> str | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    parts: list[str] = []
    for key, value in obj.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                parts.append(f"{key}.{sub}={_json_scalar(v)}")
        else:
            parts.append(f"{key}={_json_scalar(value)}")
    return " ".join(parts)


def _json_scalar(value: object) -> str:
    if isinstance(value, str):
        return value.replace("\n", " ")
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def _mask_line(line: str) -> str:
    if len(line) > MAX_LINE_CHARS:
        line = line[:MAX_LINE_CHARS]
    stripped = line.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        flat = _flatten_json(stripped)
        if flat is not None:
            stripped = flat
    tokens = stripped.split()
    get = _token_cache.get
    out = [get(t) or _mask_token(t) for t in tokens]
    if " - " in stripped or "HTTP/" in stripped:
        # An HTTP status code is kept: "200 - blue" and "500 - red" must stay apart.
        n = len(tokens)
        for i, tok in enumerate(tokens):
            if (
                len(tok) == 3
                and tok.isdigit()
                and tok[0] in "12345"
                and ((i + 1 < n and tokens[i + 1] == "-") or (i > 0 and tokens[i - 1].startswith("HTTP/")))
            ):
                out[i] = tok
    if len(out) > 1 and out[1] == "<TS>" and out[0] == "<TS>":
        del out[1]
    if out.count("<TS>") > 1 or (len(out) > 1 and out[1] == "<TS>" and out[0].endswith("<TS>")):
        out = _collapse_timestamps(out)
    elif len(out) > 2 and out[2] == "<TS>" and out[1] == "<NUM>" and out[0] in _MONTHS:
        out[0:3] = ["<TS>"]
    return " ".join(out)


def _collapse_timestamps(tokens: list[str]) -> list[str]:
    out: list[str] = []
    for tok in tokens:
        if tok == "<TS>" and out:
            prev = out[-1]
            if prev == "<TS>" or (prev.endswith("<TS>") and len(prev) <= 5):
                continue
            if prev == "<NUM>" and len(out) >= 2 and out[-2] in _MONTHS:
                out.pop()
                out[-1] = "<TS>"
                continue
        out.append(tok)
    return out


def mask(line: str) -> str:
    """Mask the variable parts of a log line (or of each line of a multi-line event).

    Timestamps become ``<TS>``, UUIDs ``<UUID>``, addresses ``<IP>`` / ``<IP>:<PORT>``, hex ids
    ``<HEX>``, durations ``<DUR>``, numbers ``<NUM>``, URLs ``<URL>``, e-mail addresses ``<EMAIL>``;
    words, HTTP status codes and log levels are kept. JSON objects are flattened to ``key=value``.
    Whitespace is normalised to single spaces.
    """
    if "\n" not in line:
        return _mask_line(line.rstrip("\r"))
    return "\n".join(_mask_line(part.rstrip("\r")) for part in line.split("\n"))


# ---------------------------------------------------------------------------------------------
# Severity and crash signatures
# ---------------------------------------------------------------------------------------------

_LEVEL_WORDS: dict[str, Severity] = {
    "trace": "info",
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
_UPPER_LEVEL = re.compile(
    r"(?<![\w\-])(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRIT|CRITICAL|FATAL|PANIC|SEVERE)(?![\w\-])"
)
_STATUS_LINE = re.compile(
    r"(?:(?<![\w.:/\-])([1-5]\d\d)(?= - )"
    r"|HTTP/\d(?:\.\d)?\"?[ \t]{1,3}([1-5]\d\d)\b"
    r"|(?<![\w])(?:status|status_?code|statusCode|http_status|response_code)"
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


_WARN_WORDS = re.compile(r"\b(?:warn|warning|deprecated|retrying|timed out|timeout|refused|throttled)\b", re.IGNORECASE)

_CRASH = re.compile(
    r"panic:|http: panic serving|\bpanic\(|panicked at|^goroutine (?:\d+|<NUM>) \[running\]|fatal error:"
    r"|SIGSEGV|SIGABRT|SIGBUS|[Ss]egmentation fault|\bsegfault|core dumped"
    r"|Traceback \(most recent call last\)|OutOfMemoryError|[Oo]ut of memory|\bOOM(?:Killed)?\b|Killed process"
    r"|index out of range|nil pointer dereference|invalid memory address"
    r"|[Uu]nhandled (?:exception|rejection|error)|[Uu]ncaught (?:exception|error)|UnhandledPromiseRejection"
    r"|Exception in thread \"|StackOverflowError|stack overflow|concurrent map (?:writes|read and map write)"
    r"|all goroutines are asleep",
    re.MULTILINE,
)


def _worse(a: Severity, b: Severity) -> Severity:
    return a if SEVERITY_ORDER[a] <= SEVERITY_ORDER[b] else b


def severity(line: str) -> Severity:
    return _severity(line)[0]


def _severity(line: str) -> tuple[Severity, bool, bool]:
    """Classify a log line or event as ``error``, ``warning`` or ``info``.

    An explicit level (logfmt/JSON ``level``, klog prefix, ``[ERROR]``, an upper-case level word)
    decides; an HTTP 5xx (4xx) status in an access-log line raises it to error (warning); without
    a level, error and warning words decide. Crash signatures anywhere in the event are errors.
    """
    # Also returns whether a masked count decided it (see _error_words) and whether it is a crash.
    if not line:
        return "info", False, False
    if _CRASH.search(line):
        return "error", False, True
    first = line.split("\n", 1)[0][:MAX_LINE_CHARS]
    level: Severity | None = None
    m = _KV_LEVEL.search(first)
    if m:
        level = _LEVEL_WORDS[m.group(1).lower()]
    else:
        m = _KLOG.match(first)
        if m:
            level = {"I": "info", "W": "warning", "E": "error", "F": "error"}[m.group(1)]  # type: ignore[assignment]
        else:
            m = _UPPER_LEVEL.search(first) or _BRACKET_LEVEL.search(first)
            if m:
                level = _LEVEL_WORDS[m.group(1).lower()]
    result: Severity = level or "info"
    sm = _STATUS_LINE.search(first)
    if sm:
        code = next(g for g in sm.groups() if g)
        if code[0] == "5":
            result = "error"
        elif code[0] == "4":
            result = _worse(result, "warning")
    uncertain = False
    if level is None and result == "info":
        found, uncertain = _error_words(line)
        if found:
            result = "error"
        elif _WARN_WORDS.search(line):
            result = "warning"
    return result, uncertain, False


def is_crash_signature(event: str) -> bool:
    """True when the event shows a crash: panic, fatal error, segfault, Traceback, OOM, unhandled exception..."""
    return bool(_CRASH.search(event))


# ---------------------------------------------------------------------------------------------
# Event splitting
# ---------------------------------------------------------------------------------------------

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
    """
    if not text:
        return []
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


# ---------------------------------------------------------------------------------------------
# Template mining
# ---------------------------------------------------------------------------------------------


@dataclass
class Template:
    """A group of events that share one masked shape; ``counts`` and ``examples`` are per side."""

    id: str
    tokens: list[str]
    severity: Severity
    crash_signature: bool
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return " ".join(self.tokens).replace(" \n ", "\n").replace(" \n", "\n").replace("\n ", "\n")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _tokenize(masked: str) -> list[str]:
    if "\n" not in masked:
        tokens = masked.split(" ") if masked else []
    else:
        tokens = []
        for part in masked.split("\n"):
            if tokens:
                tokens.append("\n")
            if part:
                tokens.extend(part.split(" "))
    if len(tokens) > MAX_TEMPLATE_TOKENS:
        tokens = [*tokens[:MAX_TEMPLATE_TOKENS], "…"]
    return tokens


class TemplateMiner:
    """Drain-like online clustering of masked events into templates.

    Events are grouped by severity, token count and their first ``depth`` tokens (the first line
    as a whole for multi-line events); inside a group an event joins the most similar template if
    the share of equal tokens reaches ``similarity``, and the positions that differ become ``<*>``.
    Ids are ``T1``, ``T2``... in order of first appearance, so the same input gives the same ids.

    A group holds at most ``max_candidates`` templates, so placing an event costs a bounded number
    of comparisons: an event that matches none of a full group's templates goes to the group's
    catch-all template, whose differing positions become ``<*>`` like any other merge.

    Severity is read from the masked event, except when a masked count next to an error word
    decides it ("failed=<NUM>" is benign when it was "failed=0"): then the raw event decides.
    """

    def __init__(
        self,
        similarity: float = 0.5,
        depth: int = 2,
        max_examples: int = 3,
        max_prefixes: int = 64,
        max_candidates: int = 32,
    ) -> None:
        if not 0.0 < similarity <= 1.0:
            raise ValueError("similarity must be in (0, 1]")
        self.similarity = similarity
        self.depth = max(0, depth)
        self.max_examples = max(0, max_examples)
        self.max_prefixes = max(1, max_prefixes)
        self.max_candidates = max(1, max_candidates)
        self._templates: list[Template] = []
        self._groups: dict[tuple[object, ...], dict[tuple[str, ...], list[Template]]] = {}
        self._overflow: dict[tuple[object, ...], Template] = {}
        # masked event -> its template, or None when its severity depends on the raw event
        self._exact: dict[str, Template | None] = {}
        self._by_raw_severity: dict[tuple[str, Severity], Template] = {}

    @property
    def templates(self) -> list[Template]:
        return list(self._templates)

    def add_many(self, events: Iterable[str], side: str = "") -> None:
        for event in events:
            self.add(event, side)

    def add(self, event: str, side: str = "") -> Template:
        masked = mask(event)
        tpl = self._exact.get(masked, _MISSING)
        if tpl is _MISSING:
            sev, uncertain, crash = _severity(masked)
            if uncertain:
                self._exact[masked] = None
                tpl = None
            else:
                tpl = self._place(masked, sev, crash)
                self._exact[masked] = tpl
        if tpl is None:
            sev = severity(event)
            tpl = self._by_raw_severity.get((masked, sev))
            if tpl is None:
                # Not a crash: a crash signature decides before any count is looked at.
                tpl = self._place(masked, sev, False)
                self._by_raw_severity[(masked, sev)] = tpl
        assert isinstance(tpl, Template)
        tpl.counts[side] = tpl.counts.get(side, 0) + 1
        if self.max_examples:
            ex = tpl.examples.setdefault(side, [])
            if len(ex) < self.max_examples:
                ex.append(event)
        return tpl

    def _place(self, masked: str, sev: Severity, crash: bool) -> Template:
        tokens = _tokenize(masked)
        if "\n" in tokens:
            first_line = tuple(tokens[: tokens.index("\n")])
            key: tuple[object, ...] = (sev, crash, len(tokens), first_line)
            prefix: tuple[str, ...] = ()
        else:
            key = (sev, crash, len(tokens))
            prefix = tuple(WILDCARD if _HAS_DIGIT(t) else t for t in tokens[: self.depth])
        group = self._groups.setdefault(key, {})
        if prefix not in group and len(group) >= self.max_prefixes:
            prefix = (WILDCARD,) * len(prefix)
        candidates = group.setdefault(prefix, [])
        best: Template | None = None
        best_equal = -1
        n = len(tokens)
        eq = operator.eq
        for cand in candidates:
            equal = sum(map(eq, cand.tokens, tokens))
            if equal > best_equal:
                best, best_equal = cand, equal
        best_score = best_equal / n if n else 1.0
        if best is not None and best_score >= self.similarity:
            best.tokens = [a if a == b else WILDCARD for a, b in zip(best.tokens, tokens, strict=True)]
            return best
        if len(candidates) >= self.max_candidates:
            # A full group: the catch-all absorbs the event instead of a new template, which
            # would make every later event of the group pay one more comparison.
            full_key = (key, prefix)
            catch_all = self._overflow.get(full_key)
            if catch_all is not None:
                catch_all.tokens = [a if a == b else WILDCARD for a, b in zip(catch_all.tokens, tokens, strict=True)]
                return catch_all
            tpl = Template(id=f"T{len(self._templates) + 1}", tokens=tokens, severity=sev, crash_signature=crash)
            self._templates.append(tpl)
            self._overflow[full_key] = tpl
            return tpl
        tpl = Template(id=f"T{len(self._templates) + 1}", tokens=tokens, severity=sev, crash_signature=crash)
        self._templates.append(tpl)
        candidates.append(tpl)
        return tpl


_MISSING: Template = Template(id="", tokens=[], severity="info", crash_signature=False)
