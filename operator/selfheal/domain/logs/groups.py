"""Event groups: lines that differ only in digits and hex letters, found in whole-text passes and masked once.

Masking one line costs microseconds of Python; a log repeats a few dozen line shapes with other
timestamps, ids and numbers. So lines are grouped by their skeleton (every digit and hex letter
folded to ``0``, one `str.translate` of the whole batch): the lines of a group have the same length
and the same other characters at the same places, so the same tokens at the same places too. Only
the tokens whose characters vary are looked at, column by column over the group:

- a token that varies in digits alone (a time, a count, an address) is masked the same whatever its
  digits, unless the mask keeps them (an HTTP status, an exit status) or they decide a class (an
  epoch's leading 1, ``0x``): each group's first line is masked again with those digits set to 1
  and to 7, and the token is the group's variable part only if the mask stays the same;
- a token that is a lower-case hex id of 16 or more characters, or a UUID, holding a digit on
  every line, is ``<HEX>`` or ``<UUID>`` whatever its letters;
- any other varying token splits the group by its value.

Each part of a group is masked once, through its first line, and checked again with its variable
digits set to 1 and to 7; a part that does not keep its mask, and a group that splits into many
parts, is masked line by line. Either way every event gets the mask that masking it alone gives.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import compress, repeat
from operator import contains, itemgetter

from selfheal.domain.logs.masking import (
    _HAS_ALPHA,
    _HAS_DIGIT,
    _SEGMENT_SPLIT,
    MAX_LINE_CHARS,
    _mask_line,
    mask_tokens,
    split_line,
)

_HEX = "0123456789abcdefABCDEF"
_SKELETON = str.maketrans(_HEX, "0" * len(_HEX))
_SPECIAL_FIRST = frozenset({"{", "<", " ", "\t", ""})
# Two probes: a varying digit is set to each digit, a varying hex run to alternating digit and letter.
_PROBES = (("1", "a"), ("7", "f"))
# Characters no pattern of a whole token or of a segment of one accepts (`_CLASSES`, `_NUMBER`,
# `_DURATION`...): a core holding one is masked segment by segment, a segment holding one as <ID>.
_BLOCKERS = frozenset("\"'`;=<>!$^~\\")
_UUID = re.compile(r"0{8}-0{4}-0{4}-0{4}-0{12}")
_LEAD = "([{<\"'`+"
_TRAIL = ")]}>\"'`,;:.!?"
# A group that splits into more parts than this share of its lines is masked line by line.
_MOST_PARTS = 0.25


@dataclass
class Part:
    """Events with one masked form: their indices in the batch (ascending) and how to read their raw tokens."""

    masked: str
    first: list[str]
    rest: str
    indices: list[int]
    token_count: int
    # Where the raw tokens are: the group's rows and this part's rows in it, or one event's tokens.
    reader: _Reader | None = None
    rows: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    def within(self, start: int, end: int) -> Part | None:
        """This part's events whose indices are in ``[start, end)``; None when there are none."""
        lo, hi = bisect_left(self.indices, start), bisect_left(self.indices, end)
        if lo == 0 and hi == len(self.indices):
            return self
        if lo == hi:
            return None
        rows = self.rows[lo:hi] if self.reader is not None else self.rows
        return replace(self, indices=self.indices[lo:hi], rows=rows)

    def tokens_at(self, position: int) -> list[str]:
        """Raw token ``position`` (counted from 0 over the whitespace-split line) of each event."""
        if self.reader is None:
            return [self.tokens[position]]
        values = self.reader.column(position)
        if len(self.rows) == 1:
            return [values[self.rows[0]]]
        if len(self.rows) == len(values):
            return list(values)
        return list(itemgetter(*self.rows)(values))


class _Reader:
    """One group's lines as equal-length rows of one string: a token's values, column by column."""

    def __init__(self, rows: str, width: int, bounds: list[tuple[int, int]]) -> None:
        self.rows = rows
        self.width = width
        self.bounds = bounds
        self._tokens: dict[int, list[str]] = {}

    def column(self, position: int) -> list[str]:
        values = self._tokens.get(position)
        if values is None:
            a, b = self.bounds[position]
            rows, width = self.rows, self.width
            values = self._tokens[position] = [rows[o : o + b - a] for o in range(a, len(rows), width)]
        return values


def line_mask(line: str) -> tuple[str, list[str]]:
    """The masked form of one prepared line, as a string and as tokens."""
    tokens = mask_tokens(line.split(), line)
    return " ".join(tokens), tokens


def _single(index: int, event: str, prepared: str | None = None) -> Part:
    """One event masked alone: ``prepared`` is its line made ready, or None to take its first line."""
    rest = ""
    if prepared is None:
        first, _, rest = event.partition("\n")
        prepared = _prepare(first)
    masked, tokens = line_mask(prepared)
    if rest:
        masked = masked + "\n" + "\n".join(_mask_line(p) for p in rest.split("\n"))
    raw = prepared.split()
    return Part(masked, tokens, rest, [index], len(raw), tokens=raw)


def _prepare(first: str) -> str:
    return first if first[:1] not in _SPECIAL_FIRST and len(first) <= MAX_LINE_CHARS else split_line(first)


def _bounds(line: str) -> list[tuple[int, int]]:
    out = []
    pos = 0
    for tok in line.split():
        start = line.find(tok, pos)
        pos = start + len(tok)
        out.append((start, pos))
    return out


def _core(tok: str, start: int, kv: bool = True) -> tuple[int, int] | None:
    """Where `_mask_core` reads the core of a token (its punctuation off, and the value of a
    ``key=value`` pair), as positions of the line; None when the token masks to itself."""
    if tok[0].isalnum() and tok[-1].isalnum():
        lead, end = 0, len(tok)
    else:
        stripped = tok.lstrip(_LEAD)
        lead = len(tok) - len(stripped)
        end = lead + len(stripped.rstrip(_TRAIL))
    core = tok[lead:end]
    if not core:
        return None
    if kv and "=" in core:
        key, _, value = core.partition("=")
        if key and len(key) <= 64 and key.lstrip("@").replace(".", "_").replace("-", "_").isidentifier():
            return _core(value, start + lead + len(key) + 1, kv=False) if value else None
    return start + lead, start + end


# Bit tables for the columns of hex positions: a digit, a letter, an upper-case letter.
_IS_DIGIT = str.maketrans(_HEX, "1" * 10 + "0" * 12)
_IS_LETTER = str.maketrans(_HEX, "0" * 10 + "1" * 12)
_IS_UPPER = str.maketrans(_HEX, "0" * 16 + "1" * 6)


class _Group:
    """The lines of one skeleton: which positions vary, and which of them leave the mask alone."""

    def __init__(self, skeleton: str, lines: Sequence[str], indices: list[int]) -> None:
        self.skeleton = skeleton
        self.indices = indices
        self.rows = "".join(lines)
        self.width = len(skeleton)
        self.first = lines[0]
        self.bounds = _bounds(self.first)
        self.all = (1 << len(indices)) - 1
        self._columns: dict[int, str] = {}

    def column(self, p: int) -> str:
        """The characters of every row at position ``p``, in row order."""
        col = self._columns.get(p)
        if col is None:
            col = self._columns[p] = self.rows[p :: self.width]
        return col

    def _bits(self, positions: Sequence[int], table: dict[int, int], least: int = 1) -> int:
        """Rows with at least ``least`` (1 or 2) such characters at ``positions`` (a bit each)."""
        one = two = 0
        for p in positions:
            bits = int(self.column(p).translate(table), 2)
            two |= one & bits
            one |= bits
            if (one if least == 1 else two) == self.all:
                break  # every row has them already
        return one if least == 1 else two

    def analyse(self) -> tuple[list[int], list[list[int]], list[int], int]:
        """Varying digits that leave the mask alone (to probe), varying hex runs that do, positions whose
        value splits the group, and the rows (a bit each, row 0 the highest) to mask alone."""
        k = len(self.indices)
        digits: list[int] = []
        runs: list[list[int]] = []
        split: list[int] = []
        bad = 0
        skeleton, rows, width, columns = self.skeleton, self.rows, self.width, self._columns
        for a, b in self.bounds:
            varying = []
            p = skeleton.find("0", a, b)
            while p >= 0:
                col = columns.get(p)
                if col is None:
                    col = columns[p] = rows[p::width]
                if col.count(col[0]) != k:
                    varying.append(p)
                p = skeleton.find("0", p + 1, b)
            if not varying:
                continue
            if all(self.column(p).isdigit() for p in varying):
                digits += varying
                continue
            found = self._hex_runs(a, b, varying)
            if found is None:
                split += varying
                continue
            token_digits, token_runs, token_split, ok = found
            digits += token_digits
            runs += token_runs
            split += token_split
            bad |= self.all & ~ok
        return digits, runs, split, bad

    def _hex_runs(self, a: int, b: int, varying: list[int]) -> tuple[list[int], list[list[int]], list[int], int] | None:
        """For token ``[a, b)`` whose varying positions include hex letters: its varying digits (to
        probe), the hex runs that mask to one placeholder whatever they hold, the positions whose value
        decides the mask, and the rows (bits) where the runs do mask to their placeholder; None when
        the whole token's value decides. Each rule follows `_mask_core` in its order."""
        span = _core(self.first[a:b], a)
        if span is None or not (span[0] <= varying[0] and varying[-1] < span[1]):
            return None
        start, end = span
        core, shape = self.first[start:end], self.skeleton[start:end]
        whole = list(range(start, end))
        if set(shape) == {"0"} and end - start >= 16 and not self._bits(whole, _IS_UPPER):
            return [], [whole], [], self._bits(whole, _IS_DIGIT)  # <HEX>, before any class is tried
        if _UUID.fullmatch(shape):
            hexes = [p for p in whole if shape[p - start] == "0"]
            return [], [hexes], [], self._bits(hexes, _IS_DIGIT)  # <UUID>
        if set(shape) == {"0"}:
            return ([], [whole], [], self._hex_ok(whole)) if end - start >= 6 else None  # the class "hex": <HEX>
        fixed = "".join(c for c, s in zip(core, shape, strict=True) if s != "0")
        if "://" in core or "@" in core or "." in core or not set(fixed) & _BLOCKERS:
            return None
        if len(core) > 512:
            return None
        # No whole-core pattern accepts a blocking character: the core is masked segment by segment.
        digits: list[int] = []
        runs: list[list[int]] = []
        split: list[int] = []
        ok = self.all
        pos = start
        for segment in _SEGMENT_SPLIT.split(core):
            seg_start, pos = pos, pos + len(segment)
            inside = [p for p in varying if seg_start <= p < pos]
            if not inside:
                continue
            seg_shape = self.skeleton[seg_start:pos]
            positions = [p for p in range(seg_start, pos) if seg_shape[p - seg_start] == "0"]
            if all(self.column(p).isdigit() for p in inside):
                digits += inside
            elif set(seg_shape) == {"0"} and pos - seg_start >= 6:
                ok &= self._hex_ok(positions)  # <HEX>
                runs.append(positions)
            elif set(segment) & _BLOCKERS and pos - seg_start >= 8:
                seg_fixed = "".join(c for c, s in zip(segment, seg_shape, strict=True) if s != "0")
                has_digit = self.all if _HAS_DIGIT(seg_fixed) else self._bits(positions, _IS_DIGIT)
                has_alpha = self.all if _HAS_ALPHA(seg_fixed) else self._bits(positions, _IS_LETTER)
                ok &= has_digit & has_alpha  # <ID>
                runs.append(positions)
            else:
                split += inside
        return digits, runs, split, ok

    def _hex_ok(self, positions: list[int]) -> int:
        """Rows whose hex run holds a digit and two letters: neither a number nor a duration, so <HEX>."""
        return self._bits(positions, _IS_DIGIT) & self._bits(positions, _IS_LETTER, least=2)


def _probed(line: str, digits: list[int], runs: list[list[int]], n: int) -> str:
    """``line`` with its varying digits set to probe ``n``'s digit and its varying hex runs to a run
    of the same kind (a digit and letters, lower case)."""
    chars = list(line)
    digit, letter = _PROBES[n]
    for p in digits:
        chars[p] = digit
    for run in runs:
        for i, p in enumerate(run):
            chars[p] = digit if i % 2 == 0 else letter
    return "".join(chars)


def _rows(bits: int, k: int) -> list[int]:
    """The rows whose bit is set (row 0 the highest bit)."""
    text = format(bits, f"0{k}b")
    out = []
    i = text.find("1")
    while i >= 0:
        out.append(i)
        i = text.find("1", i + 1)
    return out


def _parts_of(group: _Group, events: Sequence[str], out: list[Part]) -> None:
    digits, runs, split, bad = group.analyse()
    k = len(group.indices)
    lone = set(_rows(bad, k)) if bad else set()
    rows = [r for r in range(k) if r not in lone] if lone else list(range(k))
    subsets = _split(group, rows, split) if split else [rows]
    if subsets is None:
        lone.update(rows)
        subsets = []
    reader = _Reader(group.rows, group.width, group.bounds)
    for subset in subsets:
        _settle(group, subset, digits, runs, reader, events, out, lone)
    out.extend(_single(group.indices[r], events[group.indices[r]], events[group.indices[r]]) for r in sorted(lone))


def _split(group: _Group, rows: list[int], positions: list[int]) -> list[list[int]] | None:
    """``rows`` by their characters at ``positions``; None when that makes too many parts."""
    if not rows:
        return []
    first, last = positions[0], positions[-1] + 1
    keys: Sequence[object]
    if positions == list(range(first, last)):
        # One run of positions (a token's varying characters): each row's key is a slice.
        keys = [group.rows[o : o + last - first] for o in range(first, len(group.rows), group.width)]
    else:
        keys = list(zip(*(group.column(p) for p in positions), strict=True))
    if len(set(itemgetter(*rows)(keys)) if len(rows) > 1 else rows) > max(16, _MOST_PARTS * len(rows)):
        return None
    # Each row appended to its key's list in one C-level pass.
    members: defaultdict[object, list[int]] = defaultdict(list)
    deque(map(list.append, map(members.__getitem__, map(keys.__getitem__, rows)), rows), maxlen=0)
    return list(members.values())


def _settle(
    group: _Group,
    rows: list[int],
    digits: list[int],
    runs: list[list[int]],
    reader: _Reader,
    events: Sequence[str],
    out: list[Part],
    lone: set[int],
) -> None:
    """One part for ``rows`` if their first line keeps its mask under both probes; else, if varying
    digits are what changed it, a part per value of those digits; else each row alone."""
    line = events[group.indices[rows[0]]]
    masked, tokens = line_mask(line)
    if (digits or runs) and any(line_mask(_probed(line, digits, runs, n))[0] != masked for n in (0, 1)):
        subsets = _split(group, rows, digits) if digits else None
        if subsets is None:
            lone.update(rows)
            return
        for subset in subsets:
            _settle(group, subset, [], runs, reader, events, out, lone)
        return
    indices = group.indices if len(rows) == len(group.indices) else [group.indices[r] for r in rows]
    out.append(Part(masked, tokens, "", indices, len(group.bounds), reader, rows))


def group_events(events: Sequence[str], prepared: bool = False) -> list[Part]:
    """The events of a batch in parts of one masked form each (see the module's description).

    Single-line events are grouped by skeleton; lines that need preparing first (JSON, a syslog
    priority, leading blanks, very long) are prepared and grouped among themselves; multi-line
    events (stack traces) are masked one by one. ``prepared``: the events are lines made ready.
    """
    out: list[Part] = []
    n = len(events)
    if not n:
        return out
    joined = "\n".join(events)
    alone: set[int] = set()
    if joined.count("\n") != n - 1:
        # Multi-line events are masked alone; in the skeleton pass they stand as empty lines.
        lines = list(events)
        for i in compress(range(n), map(contains, events, repeat("\n"))):
            alone.add(i)
            lines[i] = ""
            out.append(_single(i, events[i], events[i] if prepared else None))
        joined = "\n".join(lines)
    # Each line's index appended to its skeleton's list, in one C-level pass (no Python code per line).
    groups: defaultdict[str, list[int]] = defaultdict(list)
    deque(map(list.append, map(groups.__getitem__, joined.translate(_SKELETON).split("\n")), range(n)), maxlen=0)
    special: list[int] = []
    for skeleton, indices in groups.items():
        if alone and not skeleton:
            indices = [i for i in indices if i not in alone]
            if not indices:
                continue
        if not prepared and (skeleton[:1] in _SPECIAL_FIRST or len(skeleton) > MAX_LINE_CHARS):
            special += indices
        elif len(indices) == 1:
            out.append(_single(indices[0], events[indices[0]], events[indices[0]]))
        else:
            _parts_of(_Group(skeleton, itemgetter(*indices)(events), indices), events, out)
    if special:
        special.sort()
        for part in group_events([split_line(events[i]) for i in special], prepared=True):
            part.indices = [special[i] for i in part.indices]
            out.append(part)
    return out
