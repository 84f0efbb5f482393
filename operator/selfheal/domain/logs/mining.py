"""Template mining: events counted by masked shape, shapes partitioned into templates that keep events apart."""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from selfheal.domain.logs.fields import NumberField, NumberKind, Samples, feed, number_fields, read_value
from selfheal.domain.logs.groups import Part, group_events
from selfheal.domain.logs.masking import _mask_line, _mask_token
from selfheal.domain.logs.severity import Severity, classify, http_status

WILDCARD = "<*>"
MAX_TEMPLATE_TOKENS = 400
# A position with at most this many distinct values across a group's shapes stays a constant:
# "connection to redis failed" and "connection to postgres failed" are two events.
FEW_VALUES = 8
# Splits on the way from a group to a template: real events differ in a few parts (a status, a
# method, a message word); lines of random words from a small vocabulary stop here, not at one
# template a line.
MAX_SPLITS = 8
# Positions looked at when partitioning (the first line of a stack trace is where events differ).
SPLIT_POSITIONS = 48
# A position with more distinct values splits a group only when it decides the other varying
# positions (a message word that fixes the rest of the message); rows sampled to find out.
_DECIDING_ROWS = 4000
_DECIDING_SLACK = 1.2
_MAX_CHILDREN = 512
_EXIT_STATUS = re.compile(r"exit(?:ed|ing)? (?:with )?(?:status|code):? (\d{1,3})\b|exit_?(?:code|status)=(\d{1,3})\b")


@dataclass
class NumberSeries:
    """The values one numeric field took on each side (bounded samples)."""

    name: str
    kind: NumberKind
    sides: dict[str, Samples] = field(default_factory=dict)

    def side(self, side: str) -> Samples:
        samples = self.sides.get(side)
        if samples is None:
            samples = self.sides[side] = Samples()
        return samples


@dataclass
class Shape:
    """All events with one masked form: their counts, first examples and field values per side."""

    order: int
    tokens: list[str]
    severity: Severity
    crash: bool
    http_status: str | None
    exit_status: str | None
    fields: tuple[NumberField, ...]
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    numbers: list[NumberSeries] = field(default_factory=list)


@dataclass
class Template:
    """A group of events that share one template; ``counts``, ``examples`` and ``numbers`` are per side."""

    id: str
    tokens: list[str]
    severity: Severity
    crash_signature: bool
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    numbers: dict[str, NumberSeries] = field(default_factory=dict)
    http_status: str | None = None
    # Events of this template per HTTP status (a template whose status varies counts each).
    statuses: dict[str, dict[str, int]] = field(default_factory=dict)
    # Templates told apart only by a part with few values ("500 - red", "500 - blue") share a family.
    family: str | None = None
    # The sides whose log begins with this template (a start-up line, when the software logs one).
    first_of: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.tokens).replace(" \n ", "\n").replace(" \n", "\n").replace("\n ", "\n")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _tokenize(first: list[str], rest: str) -> list[str]:
    tokens = list(first)
    if rest:
        for part in rest.split("\n"):
            tokens.append("\n")
            masked = _mask_line(part.rstrip("\r"))
            if masked:
                tokens.extend(masked.split(" "))
    if len(tokens) > MAX_TEMPLATE_TOKENS:
        tokens = [*tokens[:MAX_TEMPLATE_TOKENS], "…"]
    return tokens


def _decides(column_i: tuple[str, ...], column_j: tuple[str, ...], d: int) -> bool:
    """Whether the values of one position (``d`` of them) fix those of another in (almost) every row."""
    return len(set(zip(column_i, column_j, strict=True))) <= _DECIDING_SLACK * d


def _deciding_position(columns: list[tuple[str, ...]], varying: list[int], rows: int) -> int | None:
    """A varying position with many values that decides most others (a message type), or None."""
    best: int | None = None
    best_score = 0
    for i in varying[:16]:
        d = len(set(columns[i]))
        if d <= 1 or d > rows / 2 or d > _MAX_CHILDREN:
            continue
        score = sum(1 for j in varying if j != i and _decides(columns[i], columns[j], d))
        if score > best_score:
            best, best_score = i, score
    return best


def _split_position(node: list[Shape]) -> tuple[int, bool] | None:
    """The position to split a node on, and whether it is a parameter's (its values few, the rest of
    the event the same whatever it says): the templates it makes are then one family.

    Positions are weighed on a sample of the node's shapes; the one chosen for having few values is
    checked against all of them, so the work per node is the sample plus one pass."""
    n = min(len(node[0].tokens), SPLIT_POSITIONS)
    rows = node[:_DECIDING_ROWS]
    sample = list(zip(*(s.tokens[:n] for s in rows), strict=True))
    distinct = [len(set(column)) for column in sample]
    varying = [i for i, d in enumerate(distinct) if d > 1]
    # A value must repeat to be a constant: four events with four topics are one event, four times.
    limit = min(FEW_VALUES, sum(sum(s.counts.values()) for s in node) // 2)
    # A part that holds a masked value ("blk_-<NUM>" against "blk_<NUM>", "<NUM>ms" against "<DUR>")
    # is a parameter written in several ways, never a constant.
    candidates = sorted(
        (i for i in varying if distinct[i] <= limit and not any("<" in v for v in set(sample[i]))),
        key=lambda i: distinct[i],
    )
    for few in candidates:
        values = {s.tokens[few] for s in node} if len(node) > len(rows) else set(sample[few])
        if len(values) > limit or any("<" in v for v in values):
            continue
        parameter = not any(j != few and _decides(sample[few], sample[j], distinct[few]) for j in varying[:16])
        return few, parameter
    if len(varying) < 2:
        return None
    deciding = _deciding_position(sample, varying, len(rows))
    return (deciding, False) if deciding is not None else None


def partition(shapes: list[Shape]) -> list[tuple[list[Shape], int | None]]:
    """Split shapes of one token count into templates, each with its family.

    A position whose values are few stays a constant, and so does a word that decides the rest of
    the message (many message types of one length); the positions left varying become ``<*>``.
    Nothing is ever merged into a catch-all: the work is bounded by positions x shapes, not by
    comparing each event with a growing list of candidates, and at most ``MAX_SPLITS`` deep.
    Templates split apart on a position with few values share a family (a number): "500 - red" and
    "500 - blue" are one event with a parameter, whose rate can be judged as a whole.
    """
    leaves: list[tuple[list[Shape], int | None]] = []
    work: list[tuple[list[Shape], int | None, int]] = [(shapes, None, 0)]
    families = 0
    while work:
        node, family, depth = work.pop()
        split = _split_position(node) if len(node) > 1 and depth < MAX_SPLITS else None
        if split is None:
            leaves.append((node, family))
            continue
        pos, parameter = split
        if parameter:
            families += 1
        child_family = families if parameter else None
        children: dict[str, list[Shape]] = {}
        for s in node:
            children.setdefault(s.tokens[pos], []).append(s)
        work.extend((child, child_family, depth + 1) for child in reversed(list(children.values())))
    return leaves


class TemplateMiner:
    """Events counted by masked shape per side, then partitioned into templates.

    Every event is masked (cached per token) and counted under its shape, with its severity, crash
    flag, HTTP and exit status and the values of its latency and size fields; ``templates``
    partitions the shapes of each (severity, crash, token count) group. Ids are ``T1``, ``T2``...
    in order of first appearance, so the same input gives the same ids whatever the order of the
    shapes inside a template.

    Severity is read from the masked event, except when a masked count next to an error word
    decides it ("failed=<NUM>" is benign when it was "failed=0"): then the raw event decides.
    """

    def __init__(self, max_examples: int = 3) -> None:
        self.max_examples = max(0, max_examples)
        self._shapes: dict[str, Shape | None] = {}
        self._by_raw_severity: dict[tuple[str, Severity], Shape] = {}
        self._ordered: list[Shape] = []
        self._first: dict[str, Shape] = {}
        self._templates: list[Template] | None = None
        # Field values read so far, by field and raw token (canary and stable share most of them).
        self._read: dict[NumberField, dict[str, float | None]] = {}

    @property
    def shapes(self) -> list[Shape]:
        return list(self._ordered)

    @property
    def templates(self) -> list[Template]:
        if self._templates is None:
            self._templates = self._build()
        return list(self._templates)

    def add_many(self, events: Iterable[str], side: str = "") -> None:
        """Count ``events`` on ``side``: the same shapes, counts, examples and samples as adding them one
        by one, with each group of events that differ only in digits and ids masked once."""
        self.add_sides([(side, events if isinstance(events, list) else list(events))])

    def add_sides(self, sides: Sequence[tuple[str, list[str]]]) -> None:
        """`add_many` for each ``(side, events)`` in turn, with the events of all sides grouped together:
        a line shape the sides share is analysed and masked once."""
        batch = list(itertools.chain.from_iterable(events for _, events in sides))
        if not batch:
            return
        parts = group_events(batch)
        start = 0
        for side, events in sides:
            end = start + len(events)
            if end > start:
                own = [p for p in (part.within(start, end) for part in parts) if p is not None]
                self._add_parts(own, batch, side, start)
            start = end
        self._templates = None

    def _add_parts(self, parts: list[Part], batch: list[str], side: str, start: int) -> None:
        """Count on ``side`` the events of ``parts`` (indices into ``batch``; the side's first is ``start``)."""
        # (first event, part, its events, severity, crash or None when the raw event decided the severity)
        pieces: list[tuple[int, Part, list[int], Severity, bool | None]] = []
        for part in parts:
            shape = self._shapes.get(part.masked, _MISSING)
            if shape is not None:
                sev, crash = (shape.severity, shape.crash) if shape is not _MISSING else self._classified(part.masked)
                if crash is not None:
                    pieces.append((part.indices[0], part, part.indices, sev, crash))
                    continue
            # A masked count next to an error word: the raw event decides the severity, event by event.
            by_severity: dict[Severity, list[int]] = {}
            for i in part.indices:
                by_severity.setdefault(classify(batch[i])[0], []).append(i)
            pieces += [(indices[0], part, indices, sev, None) for sev, indices in by_severity.items()]
        # Shapes are numbered in the order their first event came, as if the events came one by one.
        pieces.sort(key=lambda piece: piece[0])
        taken: dict[int, tuple[Shape, list[tuple[Part, list[int]]]]] = {}
        for _, part, indices, sev, crash in pieces:
            shape = self._shape_for(part, sev, crash)
            taken.setdefault(id(shape), (shape, []))[1].append((part, indices))
        for shape, shape_parts in taken.values():
            self._count(shape, shape_parts, batch, side)
        if side not in self._first:
            self._first[side] = next(shape for shape, sp in taken.values() if any(ix[0] == start for _, ix in sp))

    def add(self, event: str, side: str = "") -> None:
        self.add_many([event], side)

    def _classified(self, masked: str) -> tuple[Severity, bool | None]:
        """Severity and crash flag of a masked form not seen before; crash None when the form alone
        cannot tell (remembered, so its events are always judged raw)."""
        sev, uncertain, crash = classify(masked)
        if uncertain:
            self._shapes[masked] = None
            return sev, None
        return sev, crash

    def _shape_for(self, part: Part, sev: Severity, crash: bool | None) -> Shape:
        if crash is not None:
            shape = self._shapes.get(part.masked)
            if shape is None:
                shape = self._shapes[part.masked] = self._new_shape(part.first, part.rest, sev, crash)
            return shape
        raw = self._by_raw_severity.get((part.masked, sev))
        if raw is None:
            # Not a crash: a crash signature decides before any count is looked at.
            raw = self._by_raw_severity[(part.masked, sev)] = self._new_shape(part.first, part.rest, sev, False)
        return raw

    def _count(self, shape: Shape, parts: list[tuple[Part, list[int]]], batch: list[str], side: str) -> None:
        before = shape.counts.get(side, 0)
        total = sum(len(indices) for _, indices in parts)
        shape.counts[side] = before + total
        room = self.max_examples - before
        if room > 0:
            first = heapq.nsmallest(room, itertools.chain.from_iterable(indices[:room] for _, indices in parts))
            shape.examples.setdefault(side, []).extend(batch[i] for i in first)
        for f, series in zip(shape.fields, shape.numbers, strict=True):
            values = self._values(f, parts)
            feed(series.side(side), values)

    def _values(self, f: NumberField, parts: list[tuple[Part, list[int]]]) -> list[float | None]:
        """The value of field ``f`` on each event of ``parts``, in the order the events came.

        The events of a part mask alike token by token, so whether the token at the field's place is
        that field is read once, on the part's first event."""
        per_part: list[tuple[list[int], list[float | None]]] = []
        for part, indices in parts:
            position = part.token_count - f.from_end
            if position < 0:
                per_part.append((indices, [None] * len(indices)))
                continue
            tokens = part.tokens_at(position)
            if len(indices) != len(part.indices):
                keep = set(indices)
                tokens = [t for i, t in zip(part.indices, tokens, strict=True) if i in keep]
            if _mask_token(tokens[0]) != f.masked:
                per_part.append((indices, [None] * len(indices)))
                continue
            values = self._read.get(f)
            if values is None:
                values = self._read[f] = {}
            for t in set(tokens).difference(values):
                values[t] = read_value(t, f)
            per_part.append((indices, list(map(values.__getitem__, tokens))))
        if len(per_part) == 1:
            return per_part[0][1]
        order = list(itertools.chain.from_iterable(ix for ix, _ in per_part))
        merged = list(itertools.chain.from_iterable(vals for _, vals in per_part))
        return list(map(merged.__getitem__, sorted(range(len(order)), key=order.__getitem__)))

    def _new_shape(self, first: list[str], rest: str, sev: Severity, crash: bool) -> Shape:
        line = " ".join(first)
        status = http_status(line)
        fields = number_fields(first, status)
        m = _EXIT_STATUS.search(line) if "xit" in line else None
        shape = Shape(
            order=len(self._ordered),
            tokens=_tokenize(first, rest),
            severity=sev,
            crash=crash,
            http_status=status,
            exit_status=next(g for g in m.groups() if g) if m else None,
            fields=fields,
            numbers=[NumberSeries(f.name, f.kind) for f in fields],
        )
        self._ordered.append(shape)
        return shape

    def _build(self) -> list[Template]:
        groups: dict[tuple[object, ...], list[Shape]] = {}
        for shape in self._ordered:
            groups.setdefault((shape.severity, shape.crash, len(shape.tokens)), []).append(shape)
        leaves: list[tuple[list[Shape], str | None]] = []
        for g, group in enumerate(groups.values()):
            leaves += [(leaf, None if fam is None else f"{g}.{fam}") for leaf, fam in partition(group)]
        leaves.sort(key=lambda item: min(s.order for s in item[0]))
        return [self._template(f"T{i}", leaf, fam) for i, (leaf, fam) in enumerate(leaves, start=1)]

    def _template(self, tid: str, leaf: list[Shape], family: str | None) -> Template:
        leaf = sorted(leaf, key=lambda s: s.order)
        head = leaf[0]
        tokens = list(head.tokens)
        for s in leaf[1:]:
            tokens = [a if a == b else WILDCARD for a, b in zip(tokens, s.tokens, strict=True)]
        tpl = Template(id=tid, tokens=tokens, severity=head.severity, crash_signature=head.crash, family=family)
        for s in leaf:
            for side, n in s.counts.items():
                tpl.counts[side] = tpl.counts.get(side, 0) + n
                if s.http_status is not None:
                    per_side = tpl.statuses.setdefault(s.http_status, {})
                    per_side[side] = per_side.get(side, 0) + n
            for side, examples in s.examples.items():
                kept = tpl.examples.setdefault(side, [])
                kept.extend(examples[: self.max_examples - len(kept)])
            for series in s.numbers:
                merged = tpl.numbers.get(series.name)
                if merged is None:
                    merged = tpl.numbers[series.name] = NumberSeries(series.name, series.kind)
                for side, samples in series.sides.items():
                    merged.side(side).extend(samples)
        tpl.first_of = sorted(side for side, first in self._first.items() if any(first is s for s in leaf))
        statuses = {s.http_status for s in leaf}
        tpl.http_status = head.http_status if len(statuses) == 1 else None
        return tpl


_MISSING = Shape(order=-1, tokens=[], severity="info", crash=False, http_status=None, exit_status=None, fields=())
