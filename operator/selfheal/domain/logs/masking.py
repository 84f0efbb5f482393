"""Masking: the variable parts of a log line (times, numbers, ids, addresses) become placeholders."""

from __future__ import annotations

import json
import re

# Hard bounds that keep every step linear whatever a pod prints.
MAX_LINE_CHARS = 4096
_TOKEN_CACHE_LIMIT = 400_000
# JSON objects are flattened this deep ("http.response.status_code"); deeper values stay JSON text.
_JSON_DEPTH = 3

_LEAD = "([{<\"'`+"
_TRAIL = ")]}>\"'`,;:.!?"

_ISO_TS = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T_]\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?")
_DATE = re.compile(
    r"\d{4}/\d{1,2}/\d{1,2}|\d{1,2}/[A-Z][a-z]{2}/\d{4}(?::\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)?|\d{4}\.\d{2}\.\d{2}"
)
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
# Keys whose small numeric values name an outcome, kept so "status=502" and "status=200" stay apart.
STATUS_KEYS = frozenset(
    {
        "status",
        "status_code",
        "statuscode",
        "code",
        "http_status",
        "httpstatus",
        "response_code",
        "resp_status",
        "exit_code",
        "exitcode",
        "exit_status",
        "exitstatus",
        "returncode",
        "grpc_code",
        "grpccode",
    }
)
_STATUS_VALUE = re.compile(r"\d{1,3}")
_SEGMENT_SPLIT = re.compile(r"([/\-_.:,#@|()\[\]{}?*&+])")
_HAPROXY_TIMERS = re.compile(r"-?\d+/-?\d+/-?\d+/-?\d+/\+?\d+")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_MONTHS = frozenset(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])
# The words before a process's exit status: "exit status 1", "exited with code 137", "exit code: 2".
_EXIT_WORDS = frozenset({"status", "code"})
_EXIT_LEADS = frozenset({"exit", "exited", "exiting", "with"})
# Numeric levels of pino and bunyan.
_NUMERIC_LEVELS = {10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal"}
# A syslog PRI at the start of a line: its low three bits are the severity.
_SYSLOG_PRI = re.compile(r"<(\d{1,3})>")
_SYSLOG_SEVERITY = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")

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
_HEX_DIGITS = "0123456789abcdef"


_HAS_DIGIT = re.compile(r"\d").search
_HAS_ALPHA = re.compile(r"[^\W\d_]").search


def has_digit(text: str) -> bool:
    return _HAS_DIGIT(text) is not None


def clear_caches() -> None:
    """Forget memoised token masks (they only speed up repeated tokens; results never depend on them)."""
    _token_cache.clear()
    _value_cache.clear()


def _mask_segment(seg: str) -> str:
    if seg.isdigit():
        return "<NUM>"
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
    if len(seg) >= 8 and _HAS_ALPHA(seg):
        return "<ID>"
    return seg


def _is_status_key(key: str) -> bool:
    last = key.rsplit(".", 1)[-1].lower()
    if last in STATUS_KEYS:
        return True
    # "DownstreamStatus", "upstream_status", "originStatusCode"
    return last.replace("_", "").replace("-", "").endswith(("status", "statuscode"))


def _mask_core(core: str, kv: bool = True) -> str:
    """Mask one whitespace-free token with its surrounding punctuation removed."""
    if kv and "=" in core:
        key, _, value = core.partition("=")
        if key and len(key) <= 64 and key.lstrip("@").replace(".", "_").replace("-", "_").isidentifier():
            if _STATUS_VALUE.fullmatch(value.strip("\"'")) and _is_status_key(key):
                return core
            return f"{key}={_mask_token(value, kv=False)}" if value else core
    if core.startswith("HTTP/") and len(core) <= 8:
        return core  # the protocol version, which the status that follows is read by
    if "://" in core and _URL.fullmatch(core):
        return "<URL>"
    if "@" in core and _EMAIL.fullmatch(core):
        return "<EMAIL>"
    if not _HAS_DIGIT(core):
        return core
    if len(core) >= 16 and not core.strip(_HEX_DIGITS):
        return "<HEX>"  # a request or trace id: the commonest token, decided without the regexes
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


def flatten_json(line: str) -> str | None:
    """A JSON object as sorted ``key=value`` pairs (nested keys dotted), or None when it is not one.

    Keys are sorted so that two loggers writing the same fields in another order give the same
    shape; numeric pino/bunyan levels become their names. Nesting however deep never recurses
    without bound: past a few levels a value stays JSON text, and what the parser refuses is not JSON.
    """
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    parts: list[tuple[str, str]] = []
    stack: list[tuple[str, dict[str, object], int]] = [("", obj, 1)]
    while stack:
        prefix, current, depth = stack.pop()
        for key, value in current.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict) and depth < _JSON_DEPTH:
                stack.append((f"{name}.", value, depth + 1))
            elif key in ("level", "lvl") and isinstance(value, int) and value in _NUMERIC_LEVELS:
                parts.append((name, _NUMERIC_LEVELS[value]))
            else:
                parts.append((name, _json_scalar(value)))
    parts.sort(key=lambda kv: kv[0])
    return " ".join(f"{k}={v}" for k, v in parts)


def _json_scalar(value: object) -> str:
    if isinstance(value, str):
        return value.replace("\n", " ")
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return str(value)
    try:
        return json.dumps(value, separators=(",", ":"), default=str)
    except (ValueError, RecursionError):
        return "<LONG>"


def _syslog_pri(line: str) -> str:
    """``<134>1 2025-...`` (RFC 5424) or ``<34>Oct 11 ...`` (RFC 3164) with the PRI read as a level word."""
    m = _SYSLOG_PRI.match(line)
    if m is None or int(m.group(1)) > 191:
        return line
    level = _SYSLOG_SEVERITY[int(m.group(1)) % 8]
    rest = line[m.end() :]
    if rest[:2] == "1 ":
        rest = rest[2:]
    return f"<{level}> {rest}"


def split_line(line: str) -> str:
    """One physical line made ready for masking: bounded, JSON flattened, syslog PRI read, trimmed."""
    if len(line) > MAX_LINE_CHARS:
        line = line[:MAX_LINE_CHARS]
    stripped = line.strip()
    if stripped[:1] == "{" and stripped[-1:] == "}":
        flat = flatten_json(stripped)
        if flat is not None:
            return flat
    elif stripped[:1] == "<":
        return _syslog_pri(stripped)
    return stripped


def mask_tokens(tokens: list[str], line: str) -> list[str]:
    """The masked form of each whitespace-separated token of ``line`` (HTTP and exit statuses kept)."""
    get = _token_cache.get
    out = [get(t) or _mask_token(t) for t in tokens]
    if "HTTP/" in line or " - " in line or "xit" in line or "/" in line:
        _keep_statuses(tokens, out)
    if len(out) > 1 and out[1] == "<TS>" and out[0] == "<TS>":
        del out[1]
    if out.count("<TS>") > 1 or (len(out) > 1 and out[1] == "<TS>" and out[0].endswith("<TS>")):
        out = _collapse_timestamps(out)
    elif len(out) > 2 and out[2] == "<TS>" and out[1] == "<NUM>" and out[0] in _MONTHS:
        out[0:3] = ["<TS>"]
    return out


def _keep_statuses(tokens: list[str], out: list[str]) -> None:
    n = len(tokens)
    for i, tok in enumerate(tokens):
        if out[i] == "<NUM>" and len(tok) <= 3 and tok.isdigit():
            prev = tokens[i - 1] if i else ""
            # An HTTP status: "14:00:00 200 - blue", "\"GET / HTTP/1.1\" 502 157", HAProxy's
            # "0/0/1/950/951 502 215".
            if (
                len(tok) == 3
                and tok[0] in "12345"
                and (
                    prev.startswith("HTTP/")
                    or _HAPROXY_TIMERS.fullmatch(prev) is not None
                    or (
                        i
                        and i + 1 < n
                        and tokens[i + 1] == "-"
                        and (out[i - 1].endswith("<TS>") or prev in _METHODS or prev[:1] == "/")
                    )
                )
            ) or _is_exit_status(tokens, i):
                out[i] = tok
        elif "<NUM>" in out[i] and len(tok) <= 6 and _is_exit_status(tokens, i):
            # "(exit status 2;", "code 1)".
            core = tok.strip(_TRAIL + _LEAD)
            if core.isdigit() and len(core) <= 3:
                out[i] = tok


def _is_exit_status(tokens: list[str], i: int) -> bool:
    """A process's exit status: "exit status 1", "exited with code 137", "(exit status 2;"."""
    if i < 2:
        return False
    prev = tokens[i - 1].strip(_LEAD + _TRAIL).lower()
    lead = tokens[i - 2].strip(_LEAD + _TRAIL).lower()
    return prev in _EXIT_WORDS and lead in _EXIT_LEADS


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


def _mask_line(line: str) -> str:
    line = split_line(line)
    return " ".join(mask_tokens(line.split(), line))


def mask(line: str) -> str:
    """Mask the variable parts of a log line (or of each line of a multi-line event).

    Timestamps become ``<TS>``, UUIDs ``<UUID>``, addresses ``<IP>`` / ``<IP>:<PORT>``, hex ids
    ``<HEX>``, durations ``<DUR>``, numbers ``<NUM>``, URLs ``<URL>``, e-mail addresses ``<EMAIL>``;
    words, HTTP status codes, exit statuses and log levels are kept. JSON objects are flattened to
    sorted ``key=value`` pairs, a syslog PRI becomes its level. Whitespace is normalised to single spaces.
    """
    if "\n" not in line:
        return _mask_line(line.rstrip("\r"))
    return "\n".join(_mask_line(part.rstrip("\r")) for part in line.split("\n"))
