"""Masking lines in groups gives every event the mask it gets alone, and mining in batches counts alike."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from selfheal.domain.logs import TemplateMiner, clear_caches, mask, parse_events
from selfheal.domain.logs.fields import Samples, feed
from selfheal.domain.logs.groups import group_events

CASES = sorted((Path(__file__).parents[2] / "corpus" / "cases").iterdir())
_DIGIT = re.compile(r"\d")
_HEX_LETTER = re.compile(r"(?<=[0-9a-f])[a-f]|[a-f](?=[0-9a-f])")


def _varied(lines: list[str], rng: random.Random, copies: int) -> list[str]:
    """Each line again with other digits and hex letters: what a log repeats with other ids and numbers.
    Some keep their digits' count and letters' places (one skeleton), some change (a digit more)."""
    out = []
    for _ in range(copies):
        for line in lines:
            line = _DIGIT.sub(lambda m: rng.choice("0123456789"), line)
            if rng.random() < 0.3:
                line = _HEX_LETTER.sub(lambda m: rng.choice("abcdef0123456789"), line)
            if rng.random() < 0.1:
                line = _DIGIT.sub(lambda m: m.group() * rng.choice((1, 2)), line, count=1)
            out.append(line)
    rng.shuffle(out)
    return out


def _log(case: Path, name: str, rng: random.Random) -> list[str]:
    events = parse_events((case / name).read_text(errors="replace"))
    return _varied(events[:150], rng, copies=3)


@pytest.mark.parametrize("case", CASES[::3], ids=lambda p: p.name)
def test_every_event_gets_the_mask_it_gets_alone(case: Path) -> None:
    rng = random.Random(case.name)
    events = _log(case, "canary.log", rng) + _log(case, "stable.log", rng)
    clear_caches()
    seen: list[int] = []
    for part in group_events(events):
        assert part.indices == sorted(part.indices)
        for i in part.indices:
            assert part.masked == mask(events[i]), events[i]
        seen += part.indices
    assert sorted(seen) == list(range(len(events)))


def _mined(miner: TemplateMiner) -> list[tuple[object, ...]]:
    return [
        (
            t.id,
            t.text,
            t.severity,
            t.crash_signature,
            t.counts,
            t.examples,
            t.statuses,
            t.family,
            t.first_of,
            {
                name: {side: (s.values, s.seen) for side, s in series.sides.items()}
                for name, series in t.numbers.items()
            },
        )
        for t in miner.templates
    ]


@pytest.mark.parametrize("case", CASES[1::9], ids=lambda p: p.name)
def test_both_sides_mined_together_count_as_each_side_alone(case: Path) -> None:
    rng = random.Random(case.name)
    canary, stable = _log(case, "canary.log", rng), _log(case, "stable.log", rng)
    together = TemplateMiner()
    together.add_sides([("canary", canary), ("stable", stable)])
    in_turn = TemplateMiner()
    in_turn.add_many(canary, "canary")
    in_turn.add_many(stable, "stable")
    one_by_one = TemplateMiner()
    for side, events in (("canary", canary), ("stable", stable)):
        for event in events:
            one_by_one.add(event, side)
    assert _mined(together) == _mined(in_turn) == _mined(one_by_one)


@pytest.mark.parametrize("seed", range(12))
def test_samples_fed_in_bulk_keep_what_one_value_at_a_time_keeps(seed: int) -> None:
    rng = random.Random(seed)
    bulk = Samples(cap=rng.choice((4, 16, 100)))
    single = Samples(cap=bulk.cap)
    for _ in range(rng.randint(1, 30)):
        values: list[float | None] = [float(rng.randint(0, 999)) for _ in range(rng.randint(0, 900))]
        if rng.random() < 0.2:
            values = [None if rng.random() < 0.1 else v for v in values]
        feed(bulk, values)
        for value in values:
            if single.due() and value is not None:
                single.keep(value)
        assert (bulk.values, bulk.seen, bulk._stride) == (single.values, single.seen, single._stride)
