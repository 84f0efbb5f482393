"""Field recognition: which masked positions of a line hold a latency or a size, and their values in a raw line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, cast

from selfheal.domain.logs.masking import _mask_token

NumberKind = Literal["latency", "size"]

# Keys (their last dotted segment, lower-cased, without "_" and "-") that name how long something took.
_LATENCY_KEYS = frozenset(
    {
        "latency",
        "duration",
        "elapsed",
        "elapsedtime",
        "took",
        "rt",
        "requesttime",
        "responsetime",
        "upstreamresponsetime",
        "urt",
        "timetaken",
        "servicetime",
        "processingtime",
        "executiontime",
        "querytime",
        "dbtime",
    }
)
# Unit suffixes of such keys: "latency_ms", "durationNanos", "ElapsedMilliseconds".
_KEY_UNITS = (
    ("milliseconds", 1e-3),
    ("millis", 1e-3),
    ("msec", 1e-3),
    ("ms", 1e-3),
    ("microseconds", 1e-6),
    ("micros", 1e-6),
    ("usec", 1e-6),
    ("us", 1e-6),
    ("nanoseconds", 1e-9),
    ("nanos", 1e-9),
    ("ns", 1e-9),
    ("seconds", 1.0),
    ("secs", 1.0),
    ("sec", 1.0),
    ("s", 1.0),
)
# Keys whose durations are settings or waits, not the time a piece of work took.
_WAITS = (
    r"ttl|timeout|interval|period|backoff|delay|wait|sleep|uptime|age|expir\w*|deadline|cooldown|grace|every|retry\w*"
)
_NOT_LATENCY_KEY = re.compile(rf"^(?:{_WAITS})|(?:{_WAITS})$")
_NOT_LATENCY_CONTEXT = re.compile(rf"\b(?:{_WAITS}|sleeping|waiting)\b", re.IGNORECASE)
_SIZE_KEYS = frozenset(
    {
        "size",
        "bytes",
        "bodybytessent",
        "bytessent",
        "contentlength",
        "length",
        "respsize",
        "responsesize",
        "reqsize",
        "requestsize",
        "responsebytes",
        "payloadsize",
    }
)
# Keys with a fixed unit whatever their suffix says: ECS event.duration is in nanoseconds, pino's
# responseTime in milliseconds.
_FIXED_SCALE = {"event.duration": 1e-9, "responsetime": 1e-3, "elapsedmilliseconds": 1e-3}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_SIZE_UNIT = re.compile(r"(\d+(?:\.\d+)?)(?:([kKMGT])i?)?[bB](?:ytes)?\b|(\d+) ?bytes")
_SIZE_SCALE = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
_QUOTES = "\"'()[]{},;"


@dataclass(frozen=True)
class NumberField:
    """A numeric position of a line: where it is (counted from the line's end), what it measures, its unit."""

    from_end: int
    name: str
    kind: NumberKind
    # Seconds (latency) or bytes (size) per unit of a plain number; None when the token carries its unit.
    scale: float | None
    masked: str
    # A latency key without a unit ("duration=12"): an integer is read as milliseconds, a decimal as seconds.
    bare: bool = False
    # Only a decimal is this field (an access log's trailing request time, not its trailing byte count).
    decimal_only: bool = False


@dataclass
class Samples:
    """A bounded, evenly thinned sample of the values one side logged for a field."""

    cap: int = 4096
    values: list[float] = field(default_factory=list)
    seen: int = 0
    _stride: int = 1

    def add(self, value: float) -> None:
        if self.due():
            self.keep(value)

    def due(self) -> bool:
        """Count one more value; True when it is one to keep (call ``keep`` with it)."""
        self.seen += 1
        return not self.seen % self._stride

    def keep(self, value: float) -> None:
        self.values.append(value)
        if len(self.values) >= 2 * self.cap:
            # Keep every other value: the sample stays spread over the whole log, not its start.
            del self.values[1::2]
            self._stride *= 2

    def extend(self, other: Samples) -> None:
        self.values.extend(other.values)
        self.seen += other.seen
        if len(self.values) > 2 * self.cap:
            step = len(self.values) // self.cap
            self.values = self.values[::step]


def feed(samples: Samples, values: list[float | None]) -> None:
    """``samples.due()`` for each value in turn, keeping the due ones that were read (None: unreadable)."""
    if samples._stride == 1 and len(samples.values) + len(values) < 2 * samples.cap:
        samples.values.extend([v for v in values if v is not None] if None in values else cast(list[float], values))
        samples.seen += len(values)
        return
    if None in values:
        for value in values:
            if samples.due() and value is not None:
                samples.keep(value)
        return
    # Every value read: the due ones are every stride-th, taken a slice at a time up to each thinning.
    pos, n = 0, len(values)
    while pos < n:
        stride = samples._stride
        first = pos + (-(samples.seen + 1)) % stride
        room = 2 * samples.cap - len(samples.values)
        due = cast(list[float], values[first:n:stride][:room])
        if len(due) < room:
            samples.values.extend(due)
            samples.seen += n - pos
            return
        last = first + (room - 1) * stride
        samples.values.extend(due[:-1])
        samples.seen += last - pos
        samples.due()
        samples.keep(due[-1])  # the value that fills the sample: it thins to every other
        pos = last + 1


def _norm_key(key: str) -> str:
    return key.strip(_QUOTES).rsplit(".", 1)[-1].replace("_", "").replace("-", "").lower()


def _key_scale(norm: str) -> tuple[str, float | None] | None:
    """The latency key without its unit suffix and the suffix's scale, when ``norm`` names a latency."""
    if norm in _LATENCY_KEYS:
        return norm, None
    for suffix, scale in _KEY_UNITS:
        if norm.endswith(suffix) and norm[: -len(suffix)] in _LATENCY_KEYS | {"time"}:
            return norm[: -len(suffix)] or norm, scale
    return None


def _field_of(i: int, masked: list[str], has_status: bool) -> NumberField | None:
    tok = masked[i]
    from_end = len(masked) - i
    key, eq, value = tok.partition("=")
    if eq:
        norm = _norm_key(key)
        if _NOT_LATENCY_KEY.search(norm):
            return None
        fixed = _FIXED_SCALE.get(key.strip(_QUOTES).lower()) or _FIXED_SCALE.get(norm)
        named = _key_scale(norm)
        if "<DUR>" in value:
            return NumberField(from_end, key.strip(_QUOTES), "latency", None, tok)
        if named is not None and value.strip(_QUOTES) == "<NUM>":
            scale = fixed or named[1]
            return NumberField(from_end, key.strip(_QUOTES), "latency", scale or 1.0, tok, bare=scale is None)
        if norm in _SIZE_KEYS and value.strip(_QUOTES).startswith("<NUM>"):
            plain = value.strip(_QUOTES) == "<NUM>"
            return NumberField(from_end, key.strip(_QUOTES), "size", 1.0 if plain else None, tok)
        return None
    if "<DUR>" in tok:
        context = " ".join(masked[max(0, i - 2) : i])
        if _NOT_LATENCY_CONTEXT.search(context):
            # "retrying in 5s", "sleeping for 2s", "ttl 30s": a wait, not work done.
            return None
        return NumberField(from_end, "duration", "latency", None, tok)
    if has_status and tok == "<NUM>":
        if i and masked[i - 1].isdigit() and len(masked[i - 1]) == 3:
            # The response size after the status of a common or combined log line.
            return NumberField(from_end, "bytes", "size", 1.0, tok)
        if i == len(masked) - 1:
            # The request time nginx and others append to an access-log line ("... 0.950").
            return NumberField(from_end, "request_time", "latency", 1.0, tok, decimal_only=True)
    return None


def number_fields(masked: list[str], http_status: str | None) -> tuple[NumberField, ...]:
    """The latency and size positions of one masked line."""
    out: list[NumberField] = []
    for i, tok in enumerate(masked):
        if "<DUR>" in tok or ("<NUM>" in tok and ("=" in tok or http_status is not None)):
            f = _field_of(i, masked, http_status is not None)
            if f is not None:
                out.append(f)
    return tuple(out)


def read_number(raw: list[str], f: NumberField) -> float | None:
    """The value of field ``f`` in a raw line's tokens (seconds for a latency, bytes for a size)."""
    i = len(raw) - f.from_end
    return read_token(raw[i], f) if i >= 0 else None


def read_token(tok: str, f: NumberField) -> float | None:
    """The value of field ``f`` in the raw token at its place, or None when the token is not that field."""
    return read_value(tok, f) if _mask_token(tok) == f.masked else None


def read_value(tok: str, f: NumberField) -> float | None:
    """The value of field ``f`` in a raw token known to mask as the field does."""
    value = (tok.partition("=")[2] if "=" in f.masked else tok).strip(_QUOTES)
    if f.scale is not None:
        m = _PLAIN_NUMBER.match(value)
        if m is None:
            return None
        text = m.group(0)
        if f.decimal_only and "." not in text:
            return None
        scale = 1e-3 if f.bare and "." not in text and "e" not in text.lower() else f.scale
        return float(text) * scale
    if f.kind == "size":
        s = _SIZE_UNIT.search(value)
        if s is None:
            return None
        if s.group(3):
            return float(s.group(3))
        return float(s.group(1)) * _SIZE_SCALE[(s.group(2) or "").lower()]
    total = 0.0
    found = False
    for number, unit in _DURATION_PART.findall(value):
        total += float(number) * _UNIT_SECONDS[unit]
        found = True
    return total if found else None
