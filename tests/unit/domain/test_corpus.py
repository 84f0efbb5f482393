"""The labelled corpus: every canary of tests/corpus gets the verdict a reviewing SRE expects."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from selfheal.domain.evidence import Side
from selfheal.domain.policy import AnalysisSpec
from selfheal.services.judge import prepare
from selfheal.services.offline import evidence_from_logs

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
CASES = sorted(p for p in (CORPUS / "cases").iterdir() if p.is_dir())


def judge_case(case: Path) -> tuple[str, str]:
    evidence = evidence_from_logs(case.name, (case / "canary.log").read_text(), (case / "stable.log").read_text())
    _, _, verdict, _ = prepare(evidence, AnalysisSpec())
    return verdict.verdict.value, verdict.summary


def test_the_corpus_is_large_and_varied() -> None:
    expected = [json.loads((case / "expected.json").read_text()) for case in CASES]
    assert len(CASES) >= 40
    assert {e["kind"] for e in expected} >= {"web", "worker", "daemon", "database", "queue"}
    assert len({e["software"] for e in expected}) >= 15
    assert sum(e["verdict"] == "unhealthy" for e in expected) >= 20
    assert sum(e["verdict"] == "healthy" for e in expected) >= 20


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_corpus_case_gets_its_expected_verdict(case: Path) -> None:
    expected = json.loads((case / "expected.json").read_text())["verdict"]
    verdict, summary = judge_case(case)
    assert verdict == expected, summary


def test_the_corpus_is_what_its_generator_writes(tmp_path: Path) -> None:
    sys.path.insert(0, str(CORPUS))
    try:
        from generate import generate  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(CORPUS))
    names = generate(tmp_path)
    assert sorted(names) == [case.name for case in CASES]
    for name in names[::7]:
        for file in ("canary.log", "stable.log", "expected.json"):
            assert (tmp_path / name / file).read_text() == (CORPUS / "cases" / name / file).read_text(), (name, file)


def test_no_case_is_judged_on_an_empty_side() -> None:
    for case in CASES:
        evidence = evidence_from_logs(case.name, (case / "canary.log").read_text(), (case / "stable.log").read_text())
        assert evidence.log_text(Side.CANARY) and evidence.log_text(Side.STABLE)
