"""Secret and PII redaction of untrusted text before it leaves the cluster."""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

MARKER_PREFIX = "[REDACTED:"

# Every built-in expression uses bounded quantifiers and starts either with a literal or with a
# cheap one-character boundary check, so a scan is linear in the text length: no nested unbounded
# repetition, and a failed attempt at one position costs at most a bounded number of steps.

_NOT_REDACTED = r"(?!\[REDACTED:)"

_PRIVATE_KEY_BEGIN = re.compile(r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_PRIVATE_KEY_END = re.compile(r"-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")

_KV_KINDS = (
    ("password", ("passwd", "password", "pwd")),
    ("api_key", ("apikey", "api_key", "api-key")),
    ("aws_secret_key", ("access_key", "access-key", "accesskey")),
    ("secret", ("secret",)),
    ("token", ("token",)),
)


def _kv_kind(key: str) -> str:
    low = key.lower()
    for kind, needles in _KV_KINDS:
        if any(n in low for n in needles):
            return kind
    return "secret"


def _looks_like_token(value: str) -> bool:
    """Tell an opaque credential from an ordinary English word following "Bearer"."""
    if len(value) >= 20:
        return True
    has_digit = any(c.isdigit() for c in value)
    has_upper = any(c.isupper() for c in value)
    has_lower = any(c.islower() for c in value)
    has_symbol = any(c in "-._~+/=" for c in value)
    return has_digit or has_symbol or (has_upper and has_lower and not value[:1].isupper())


@dataclass(frozen=True)
class _Detector:
    kind: str
    regex: re.Pattern[str]
    # Substrings of which at least one must occur (in the lowered text when ``lowered``) for the
    # detector to run at all: a cheap pre-check that skips whole scans on ordinary logs.
    gates: tuple[str, ...] = ()
    lowered: bool = False
    # Builds the replacement from the match; ``None`` means keep the match unchanged.
    replace: Callable[[re.Match[str]], tuple[str, str] | None] | None = None
    # Anchored scanning: instead of trying the expression at every position, find the (lower-case)
    # anchors with str.find and try it only there. "match": a match starts at the anchor;
    # "back": a match contains the anchor and starts after a run of at most ``before`` characters
    # of ``back_chars`` that ends at the anchor (a longer run means no match).
    anchors: tuple[str, ...] = ()
    mode: str = "scan"
    before: int = 0
    back_chars: frozenset[str] = frozenset()


def _whole(kind: str) -> Callable[[re.Match[str]], tuple[str, str] | None]:
    def repl(m: re.Match[str]) -> tuple[str, str] | None:
        return kind, f"[REDACTED:{kind}]"

    return repl


def _url_password(m: re.Match[str]) -> tuple[str, str] | None:
    password = m.group(3)
    if "/" in password and password.split("/", 1)[0].isdigit():
        # "host:8080/users/jane@example.com": a port and a path, not a password.
        return None
    return "url_password", f"{m.group(1)}{m.group(2)}:[REDACTED:url_password]@"


def _bearer(m: re.Match[str]) -> tuple[str, str] | None:
    if not _looks_like_token(m.group(2)):
        return None
    return "bearer", f"{m.group(1)}[REDACTED:bearer]"


def _basic(m: re.Match[str]) -> tuple[str, str] | None:
    return "basic_auth", f"{m.group(1)}[REDACTED:basic_auth]"


def _aws_secret(m: re.Match[str]) -> tuple[str, str] | None:
    return "aws_secret_key", f"{m.group(1)}[REDACTED:aws_secret_key]"


def _kv(m: re.Match[str]) -> tuple[str, str] | None:
    kind = _kv_kind(m.group("key"))
    value = m.group("value")
    if value.startswith("\\"):
        # JSON-escaped quotes: keep them so the surrounding JSON string stays valid.
        return kind, f"{m.group('lead')}{value[:2]}[REDACTED:{kind}]{value[:2]}"
    if value.startswith(('"', "'")):
        return kind, f"{m.group('lead')}{value[0]}[REDACTED:{kind}]{value[0]}"
    return kind, f"{m.group('lead')}[REDACTED:{kind}]"


_B64 = r"A-Za-z0-9+/"
_KV_VALUE = (
    rf"(?P<value>\"{_NOT_REDACTED}[^\"\n]{{1,1024}}\"|'{_NOT_REDACTED}[^'\n]{{1,1024}}'"
    # A value in JSON-escaped quotes, inside a string that is itself JSON: password=\"x\".
    rf"|\\\"{_NOT_REDACTED}[^\"\n]{{1,1024}}\\\""
    rf"|(?!\\[\"']){_NOT_REDACTED}[^\s\"'&,;<>)}}\]]{{1,1024}})"
)

_BUILTINS: tuple[_Detector, ...] = (
    _Detector(
        "url_password",
        re.compile(
            r"(?<![A-Za-z0-9+.\-])([A-Za-z][A-Za-z0-9+.\-]{0,20}://)([^\s:/@\"'<>]{0,256}):"
            + _NOT_REDACTED
            # The password runs to the last "@" before the host: it may hold "/" and "@", while the
            # parts after an inner "@" hold no "/" (else that "@" is in the path, not the userinfo).
            # Each repetition starts at an "@", so the split is unambiguous and the scan linear.
            + r"([^\s@\"'<>]{1,256}(?:@[^\s/@\"'<>]{0,256}){0,8})@"
        ),
        gates=("://",),
        replace=_url_password,
        anchors=("://",),
        mode="back",
        before=21,
        back_chars=frozenset(string.ascii_letters + string.digits + "+.-"),
    ),
    _Detector(
        "jwt",
        re.compile(
            r"eyJ(?<![A-Za-z0-9_\-]eyJ)[A-Za-z0-9_\-]{4,8192}\.eyJ[A-Za-z0-9_\-]{4,8192}\.[A-Za-z0-9_\-]{0,8192}"
        ),
        gates=("eyJ",),
    ),
    _Detector(
        "bearer",
        re.compile(r"(?i)(\bbearer[ \t]{1,4})" + _NOT_REDACTED + r"([A-Za-z0-9\-._~+/]{8,4096}=*)"),
        gates=("bearer",),
        lowered=True,
        replace=_bearer,
        anchors=("bearer",),
        mode="match",
    ),
    _Detector(
        "basic_auth",
        re.compile(
            r"(?i)(\bauthorization[\"']?[ \t]{0,3}[:=][ \t]{0,3}[\[\"']{0,2}basic[ \t]{1,4})"
            + _NOT_REDACTED
            + r"[A-Za-z0-9+/]{4,4096}={0,2}"
        ),
        gates=("basic",),
        lowered=True,
        replace=_basic,
        anchors=("authorization",),
        mode="match",
    ),
    _Detector(
        "aws_access_key",
        re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"),
        gates=("AKIA", "ASIA"),
    ),
    _Detector(
        "aws_secret_key",
        re.compile(
            r"(?i)(aws_?secret_?(?:access_?)?key[\"']?[ \t]{0,3}[:=][ \t]{0,3}[\"']?"
            r"|secret_?access_?key[\"']?[ \t]{0,3}[:=][ \t]{0,3}[\"']?)"
            + _NOT_REDACTED
            + rf"[{_B64}]{{40}}(?![{_B64}])"
        ),
        gates=("secret",),
        lowered=True,
        replace=_aws_secret,
        anchors=("aws", "secret"),
        mode="match",
    ),
    _Detector(
        "gcp_api_key",
        re.compile(r"AIza(?<![A-Za-z0-9_\-]AIza)[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])"),
        gates=("AIza",),
    ),
    _Detector(
        "github_token",
        re.compile(
            r"g(?<![A-Za-z0-9_]g)(?:h[pousr]_[A-Za-z0-9]{30,255}|ithub_pat_[A-Za-z0-9_]{22,255})(?![A-Za-z0-9_])"
        ),
        gates=("gh", "github_pat_"),
    ),
    _Detector(
        "slack_token",
        re.compile(r"xox(?<![A-Za-z0-9]xox)[abposrec]-[A-Za-z0-9\-]{10,255}"),
        gates=("xox",),
    ),
    _Detector(
        "slack_webhook",
        re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]{8,512}"),
        gates=("hooks.slack.com",),
    ),
    _Detector(
        "credential",
        re.compile(
            r"(?i)(?P<lead>(?P<key>passw(?:or)?d|pwd|secret|token|api[_\-]?key|access[_\-]?key)"
            r"[A-Za-z_]{0,12}\\?[\"']?[ \t]{0,3}[:=][ \t]{0,3})" + _KV_VALUE
        ),
        gates=("passw", "pwd", "secret", "token", "api", "access"),
        lowered=True,
        replace=_kv,
        anchors=("passw", "pwd", "secret", "token", "api", "access"),
        mode="match",
    ),
    _Detector(
        "email",
        re.compile(
            r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,6}\.[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
        ),
        gates=("@",),
        anchors=("@",),
        mode="back",
        before=64,
        back_chars=frozenset(string.ascii_letters + string.digits + "._%+-"),
    ),
)

BUILTIN_KINDS: tuple[str, ...] = ("private_key", *tuple(d.kind for d in _BUILTINS))


def fold(text: str) -> str:
    """NFKC-fold ``text`` (full-width and other compatibility forms to their plain equivalents)."""
    if not text or text.isascii():
        return text
    return unicodedata.normalize("NFKC", text)


def _kind_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "_", name.strip())
    return cleaned or "custom"


class Redactor:
    """Replaces secrets with ``[REDACTED:<kind>]`` and counts what it replaced, by kind.

    ``patterns`` are ``(name, regex)`` pairs supplied by users; the name becomes the kind. They run
    before the built-in detectors. Redacting already-redacted text changes nothing.
    """

    def __init__(self, patterns: Sequence[tuple[str, str]] = (), builtins: bool = True) -> None:
        self.counts: dict[str, int] = {}
        self._custom: list[_Detector] = []
        for name, pattern in patterns:
            try:
                compiled = re.compile(pattern)
            except (re.error, TypeError) as e:
                raise ValueError(f"invalid redaction pattern {name!r}: {e}") from e
            self._custom.append(_Detector(_kind_name(name), compiled))
        self._builtins = builtins

    def redact(self, text: str) -> str:
        """Return ``text`` with every detected secret replaced; add what was found to ``counts``.

        The text is NFKC-folded first, so full-width or other compatibility look-alikes of a
        secret's key ("ｐａｓｓｗｏｒｄ") are caught, and no later folding can resurrect one.
        """
        redacted, found = self._run(fold(text))
        for kind, n in found.items():
            self.counts[kind] = self.counts.get(kind, 0) + n
        return redacted

    def redact_with_counts(self, text: str) -> tuple[str, dict[str, int]]:
        """Like :meth:`redact`, also returning the counts of this call alone."""
        redacted, found = self._run(fold(text))
        for kind, n in found.items():
            self.counts[kind] = self.counts.get(kind, 0) + n
        return redacted, found

    def scrub(self, text: str) -> str:
        """Redact without counting: for text derived from text that was already redacted and counted."""
        return self._run(text)[0]

    def _run(self, text: str) -> tuple[str, dict[str, int]]:
        found: dict[str, int] = {}
        if not text:
            return text, found
        for det in self._custom:
            text = _apply(det, text, found)
        if self._builtins:
            text = _redact_private_keys(text, found)
            lowered = text.lower()
            for det in _BUILTINS:
                hay = lowered if det.lowered else text
                if det.gates and not any(g in hay for g in det.gates):
                    continue
                if det.anchors and len(lowered) == len(text):
                    changed = _apply_anchored(det, text, lowered, found)
                else:
                    changed = _apply(det, text, found)
                if changed is not text:
                    text = changed
                    lowered = text.lower()
        return text, found


def _replacement(det: _Detector, m: re.Match[str]) -> tuple[str, str] | None:
    whole = m.group(0)
    if not whole:
        return None
    if det.replace is None:
        if MARKER_PREFIX in whole:
            return None
        return det.kind, f"[REDACTED:{det.kind}]"
    return det.replace(m)


def _apply(det: _Detector, text: str, found: dict[str, int]) -> str:
    hits = 0

    def sub(m: re.Match[str]) -> str:
        nonlocal hits
        result = _replacement(det, m)
        if result is None:
            return m.group(0)
        kind, out = result
        found[kind] = found.get(kind, 0) + 1
        hits += 1
        return out

    out = det.regex.sub(sub, text)
    return out if hits else text


def _find_all(hay: str, needle: str) -> list[int]:
    out: list[int] = []
    find = hay.find
    i = find(needle)
    while i >= 0:
        out.append(i)
        i = find(needle, i + 1)
    return out


def _apply_anchored(det: _Detector, text: str, lowered: str, found: dict[str, int]) -> str:
    if len(det.anchors) == 1:
        positions = _find_all(lowered, det.anchors[0])
    else:
        positions = sorted({p for a in det.anchors for p in _find_all(lowered, a)})
    parts: list[str] = []
    last = 0
    for p in positions:
        if p < last:
            continue
        if det.mode == "match":
            m = det.regex.match(text, p)
        else:
            start = p
            floor = max(last, p - det.before - 1)
            chars = det.back_chars
            while start > floor and text[start - 1] in chars:
                start -= 1
            if start == p or (start == floor and start > last):
                continue  # nothing before the anchor, or a run longer than allowed
            m = det.regex.match(text, start)
            if m is not None and m.end() <= p:
                m = None
        if m is None:
            continue
        result = _replacement(det, m)
        if result is None:
            continue
        kind, rep = result
        found[kind] = found.get(kind, 0) + 1
        parts.append(text[last : m.start()])
        parts.append(rep)
        last = m.end()
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)


_KEY_BODY_LINE = re.compile(r"[ \t]{0,16}[A-Za-z0-9+/]{16,128}={0,2}[ \t]{0,16}")
# The last line of a key body may be short ("Kj8=").
_KEY_LAST_LINE = re.compile(r"[ \t]{0,16}[A-Za-z0-9+/]{1,128}={0,2}[ \t]{0,16}")


def _orphan_key_start(text: str, floor: int, end_start: int) -> int:
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


def _redact_private_keys(text: str, found: dict[str, int]) -> str:
    if "PRIVATE KEY" not in text:
        return text
    parts: list[str] = []
    pos = 0
    while True:
        begin = _PRIVATE_KEY_BEGIN.search(text, pos)
        orphan = _PRIVATE_KEY_END.search(text, pos, begin.start() if begin else len(text))
        if orphan is not None:
            start = _orphan_key_start(text, pos, orphan.start())
            parts.append(text[pos:start])
            parts.append("[REDACTED:private_key]")
            found["private_key"] = found.get("private_key", 0) + 1
            pos = orphan.end()
            continue
        if begin is None:
            break
        end = _PRIVATE_KEY_END.search(text, begin.end())
        parts.append(text[pos : begin.start()])
        parts.append("[REDACTED:private_key]")
        found["private_key"] = found.get("private_key", 0) + 1
        if end is None:
            # A truncated block: everything after its header is key material.
            pos = len(text)
            break
        pos = end.end()
    parts.append(text[pos:])
    return "".join(parts)


_DEFAULT: Redactor | None = None


def redact_with_counts(text: str) -> tuple[str, dict[str, int]]:
    """Redact ``text`` with the built-in detectors only; return the text and counts by kind."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Redactor()
    return _DEFAULT._run(fold(text))
