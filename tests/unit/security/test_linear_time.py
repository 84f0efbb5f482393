"""Linear time on hostile input: folding, and policy patterns on RE2 (CPU time, so load does not matter)."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from selfheal.domain.policy import PolicySpec
from selfheal.domain.redaction import Redactor, fold
from selfheal.domain.redaction.normalise import MAX_MARKS


def cpu(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def test_folding_combining_marks_is_linear_and_cuts_runs() -> None:
    small = "é" + "\u0301\u0316\u0327" * 8_000
    large = "é" + "\u0301\u0316\u0327" * 80_000  # 240k marks on one letter: quadratic NFKC took minutes
    assert cpu(lambda: fold(large)) < 1.0
    assert len(fold(large)) <= 1 + MAX_MARKS
    assert fold(fold(small)) == fold(small)


def test_a_secret_split_by_invisible_or_look_alike_characters_is_still_found() -> None:
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    for split in ("\u200b", "\u200d", "\ufeff", "\u2060", "\u00ad", "\u034f", "\ufe0f"):
        out = Redactor().redact(f"using {token[:10]}{split}{token[10:]} now")
        assert token[10:20] not in out and "[REDACTED:" in out, split
    assert "hunter2x" not in Redactor().redact("p\u0430ssword=hunter2x")  # a Cyrillic а in the key


def test_a_catastrophic_backtracking_pattern_runs_in_linear_time_on_re2() -> None:
    redactor = Redactor(patterns=[("evil", "(a+)+$")])
    assert cpu(lambda: redactor.redact("a" * 30 + "b")) < 0.1
    assert cpu(lambda: redactor.redact("a" * 200_000 + "b")) < 1.0


@pytest.mark.parametrize("regex", [r"(?<=key=)\w+", r"secret(?!s)", r"(\w)\1", r"(?P<x>a)(?P=x)"])
def test_a_pattern_re2_cannot_run_is_refused_at_the_edge_with_a_clear_message(regex: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PolicySpec.model_validate({"analysis": {"redaction": {"patterns": [{"name": "mine", "regex": regex}]}}})
    message = str(caught.value)
    assert "'mine'" in message and "RE2" in message
