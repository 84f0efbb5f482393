"""Secret and PII redaction of untrusted text before it leaves the cluster."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import re2

from selfheal.domain.redaction.gate import PHASES, candidates, gated_spans, shift, whole_text_spans
from selfheal.domain.redaction.lines import Lines, matches
from selfheal.domain.redaction.normalise import fold
from selfheal.domain.redaction.shapes import url_password_spans
from selfheal.domain.redaction.spans import MARKER_PREFIX, Edit, Span, apply
from selfheal.domain.redaction.vendors import re2_options, vendor_spans

__all__ = ["BUILTIN_KINDS", "MARKER_PREFIX", "Redactor", "compile_pattern", "fold", "redact_with_counts"]

BUILTIN_KINDS: tuple[str, ...] = (
    "private_key", "password", "token", "secret", "api_key", "aws_secret_key", "session", "authorization",
    "bearer", "basic_auth", "cookie", "url_password", "high_entropy", "base64_credential", "card_number", "email",
)  # fmt: skip
# A user pattern longer than this is refused: it is a configuration mistake, not a redaction rule.
MAX_PATTERN_LENGTH = 1024
# Secrets a redactor has replaced are remembered (the longest first kept) and replaced wherever they
# appear again, context or not: an LLM quoting a password without its key name still leaks it.
MAX_REMEMBERED = 4096
MIN_REMEMBERED_LENGTH = 6
MAX_REMEMBERED_LENGTH = 512
# Up to this many remembered values are looked for one by one; more, with one automaton.
_FEW_REMEMBERED = 8
_NAMED_VALUE = re.compile(r"[A-Za-z]{3,40}[=:](.{6,})")
_TOKEN = re.compile(r"[A-Za-z0-9_\-+/=.]*")


def compile_pattern(name: str, pattern: str) -> re2._Regexp:
    """A user redaction pattern on RE2 (linear time); ValueError with a message naming it otherwise.

    RE2 has no backreferences or lookaround: a pattern using them is refused, never run on the
    backtracking engine, where a pattern like ``(a+)+$`` takes minutes on a short line.
    """
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"redaction pattern {name!r} is empty")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"redaction pattern {name!r} is longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(pattern, re2_options())
    except re2.error as e:
        detail = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
        hint = ""
        if re.search(r"\(\?<?[=!]|\\[1-9]|\(\?P=", pattern):
            hint = " (lookaround and backreferences are not supported: patterns run on RE2, in linear time)"
        raise ValueError(f"redaction pattern {name!r} is not a valid RE2 regular expression: {detail}{hint}") from e


def _kind_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "_", name.strip())
    return cleaned or "custom"


class Redactor:
    """Replaces secrets with ``[REDACTED:<kind>]`` and counts what it replaced, by kind.

    Text is folded first (see `fold`), so what is redacted is what every output shows. Every rule
    reports spans on the folded text; overlapping spans are merged and each replaced region counts
    once. ``patterns`` are ``(name, regex)`` pairs supplied by users (RE2 syntax); the name becomes
    the kind, and their spans win over the built-in rules'. Every secret replaced is remembered and
    replaced again wherever it reappears, in any later text. Redacting redacted text changes nothing.
    """

    def __init__(self, patterns: Sequence[tuple[str, str]] = (), builtins: bool = True) -> None:
        self.counts: dict[str, int] = {}
        self._custom = [(_kind_name(name), compile_pattern(name, pattern)) for name, pattern in patterns]
        self._builtins = builtins
        self._known: dict[str, str] = {}
        self._known_regex: re2._Regexp | None = None

    def redact(self, text: str) -> str:
        """Return ``text`` with every detected secret replaced; add what was found to ``counts``."""
        return self.redact_with_counts(text)[0]

    def redact_with_counts(self, text: str) -> tuple[str, dict[str, int]]:
        """Like :meth:`redact`, also returning the counts of this call alone."""
        redacted, found, _ = self._run(text)
        for kind, n in found.items():
            self.counts[kind] = self.counts.get(kind, 0) + n
        return redacted, found

    def redact_marking(self, text: str, pattern: str) -> tuple[str, Lines | None]:
        """Like :meth:`redact`, also returning ranges of whole lines of the result that hold every
        line ``pattern`` (RE2 syntax, not crossing a line end) matches there, found in the scan redaction
        makes anyway; None when not known (the caller then looks itself)."""
        redacted, found, lines = self._run(text, pattern)
        for kind, n in found.items():
            self.counts[kind] = self.counts.get(kind, 0) + n
        return redacted, lines

    def scrub(self, text: str) -> str:
        """Redact without counting: for text derived from text that was already redacted and counted."""
        return self._run(text)[0]

    def _custom_spans(self, text: str) -> Iterator[Span]:
        for kind, regex in self._custom:
            for m in regex.finditer(text):
                yield Span(m.start(), m.end(), kind, 0)

    def _run(self, text: str, marking: str | None = None) -> tuple[str, dict[str, int], Lines | None]:
        """Fold ``text``, then replace remembered secrets, user patterns' matches and built-in findings;
        with the lines (see `redact_marking`) any rule or ``marking`` found."""
        found: dict[str, int] = {}
        if not text:
            return text, found, None
        replaced: dict[str, str] = {}
        # Each built-in rule reads only the lines its trigger is on (see `gate`), found in the scan
        # that finds the lines to fold; every replacement moves them (see `shift`).
        text, lines = candidates(text, marking) if self._builtins else (fold(text), None)
        if self._known:
            edits: list[Edit] = []
            text = apply(text, self._known_spans(text), found, edits=edits)
            lines = shift(lines, edits, text)
        if self._custom:
            edits = []
            text = apply(text, self._custom_spans(text), found, replaced, edits)
            lines = shift(lines, edits, text)
        if self._builtins:
            for phase in PHASES:
                spans = gated_spans(phase, text, lines)
                edits = []
                text = apply(text, whole_text_spans(phase, text) if spans is None else spans, found, replaced, edits)
                lines = shift(lines, edits, text)
        self._remember(replaced)
        return text, found, lines

    def _known_spans(self, text: str) -> Iterator[Span]:
        if len(self._known) <= _FEW_REMEMBERED:
            # A few values: a substring search each reads the text faster than one automaton.
            for value, kind in self._known.items():
                start = text.find(value)
                while start >= 0:
                    yield Span(start, start + len(value), kind, 0)
                    start = text.find(value, start + len(value))
            return
        if self._known_regex is None:
            # One automaton for all remembered values, the longest first: a single scan of the text.
            values = sorted(self._known, key=len, reverse=True)
            self._known_regex = re2.compile("|".join(re2.escape(v) for v in values), re2_options())
        for start, end in matches(self._known_regex, text):
            yield Span(start, end, self._known[text[start:end]], 0)

    def _remember(self, replaced: dict[str, str]) -> None:
        for whole, kind in replaced.items():
            # The value itself, and the secrets inside it (a vendor token or URL password within a
            # longer value), which may be quoted alone later.
            found = [(whole, kind)]
            if not _TOKEN.fullmatch(whole):  # a single token holds no other token
                plain = whole.replace("\\", "")  # a value from escaped JSON, as a reader would quote it
                found += [(plain[s.start : s.end], s.kind) for s in vendor_spans(plain, 0)]
                found += [(plain[s.start : s.end], kind) for s in url_password_spans(plain, 0)]
            # "SharedAccessSignature=<value>": the value may be quoted without its name.
            found += [(named.group(1), name) for value, name in found if (named := _NAMED_VALUE.match(value))]
            for value, name in found:
                value = value.strip()
                if _memorable(value) and value not in self._known:
                    self._known[value] = name
                    self._known_regex = None
        if len(self._known) > MAX_REMEMBERED:
            longest = sorted(self._known, key=len, reverse=True)[:MAX_REMEMBERED]
            self._known = {value: self._known[value] for value in longest}
            self._known_regex = None


def _memorable(value: str) -> bool:
    """A value worth finding again: long enough, not a run of one or two characters, not a marker."""
    return (
        MIN_REMEMBERED_LENGTH <= len(value) <= MAX_REMEMBERED_LENGTH
        and len(set(value)) >= 4
        and MARKER_PREFIX not in value
    )


_DEFAULT: Redactor | None = None


def redact_with_counts(text: str) -> tuple[str, dict[str, int]]:
    """Redact ``text`` with the built-in detectors only; return the text and counts by kind."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Redactor()
    redacted, found, _ = _DEFAULT._run(text)
    return redacted, found
