"""The judgement ledger's pure rules: attempts, situations judged once (again only while unsure), actions at most
once, an action a restart kept from being recorded, and the merge patch that writes one Rollout's entry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from selfheal.domain import ledger
from selfheal.domain.ledger import CanaryRecord, JudgedSituation
from selfheal.domain.situation import Situation
from selfheal.domain.verdict import VerdictKind

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


def situation(**changes: object) -> Situation:
    base = dict(
        uid="u",
        template="t",
        canary="new",
        stable="old",
        step=1,
        steps=4,
        pauses=(("CanaryPauseStep", "2026-11-20T13:59:00Z"),),
        paused=False,
        aborted=False,
        promote_full=False,
        step_run=("", ""),
    )
    return Situation(**{**base, **changes})  # type: ignore[arg-type]


def test_a_retry_after_an_abort_is_one_more_attempt_and_a_new_revision_starts_over() -> None:
    record = ledger.for_revision(None, "new", aborted=False)
    record = ledger.for_revision(record, "new", aborted=True)
    assert record.attempt == 0
    record = ledger.for_revision(record, "new", aborted=False)
    assert (record.attempt, record.aborted) == (1, False)
    assert ledger.for_revision(record, "new", aborted=False) is record  # nothing changed: nothing to write
    assert ledger.for_revision(record, "next", aborted=False).attempt == 0


def test_a_situation_is_judged_once_and_again_only_while_unsure() -> None:
    record = CanaryRecord(pod_template_hash="new")
    assert ledger.is_due(record, "indefinitePause/step-1", 60, T0)
    sure = ledger.with_judged(record, JudgedSituation(situation="s", verdict=VerdictKind.UNHEALTHY, at=T0))
    assert not ledger.is_due(sure, "s", 60, T0 + timedelta(days=1))
    unsure = ledger.with_judged(record, JudgedSituation(situation="s", verdict=VerdictKind.INCONCLUSIVE, at=T0))
    assert not ledger.is_due(unsure, "s", 60, T0 + timedelta(seconds=59))
    assert ledger.is_due(unsure, "s", 60, T0 + timedelta(seconds=60))
    unheard = ledger.with_judged(record, JudgedSituation(situation="s", verdict=VerdictKind.HEALTHY, at=T0, again=True))
    assert ledger.is_due(unheard, "s", 60, T0 + timedelta(seconds=61))
    assert ledger.is_due(ledger.without_judged(sure, "s"), "s", 60, T0)


def test_the_judged_list_is_bounded() -> None:
    record = CanaryRecord(pod_template_hash="new")
    for i in range(ledger.MAX_JUDGED + 5):
        record = ledger.with_judged(record, JudgedSituation(situation=f"s{i}", verdict=VerdictKind.HEALTHY, at=T0))
    assert len(record.judged) == ledger.MAX_JUDGED and record.judged[-1].situation == f"s{ledger.MAX_JUDGED + 4}"
    CanaryRecord.model_validate(record.model_dump())  # still valid for the CRD's bounds


def test_an_action_the_rollout_already_shows_was_done() -> None:
    judged = situation()
    assert ledger.fulfilled("abort", judged, situation(aborted=True))
    assert not ledger.fulfilled("abort", situation(aborted=True), situation(aborted=True))  # aborted before: not ours
    assert not ledger.fulfilled("abort", judged, situation(aborted=True, canary="other"))  # another revision
    assert ledger.fulfilled("pause", judged, situation(paused=True))
    assert ledger.fulfilled("promote", judged, situation(step=2, pauses=()))
    assert ledger.fulfilled("promote", judged, situation(stable="new"))
    assert not ledger.fulfilled("promote", judged, judged)


def test_one_rollouts_entry_is_written_as_a_merge_patch_of_what_changed() -> None:
    old = ledger.wire(CanaryRecord(pod_template_hash="new", acted=["abort attempt-0"]))
    new = ledger.wire(CanaryRecord(pod_template_hash="new", attempt=1))
    assert ledger.merge_patch(old, new) == {"acted": [], "attempt": 1}
    assert ledger.merge_patch({"last": {"draft": "{}"}}, {}) == {"last": None}
    assert ledger.merge_patch(new, new) is None
    assert ledger.stale({"web": {}, "gone": {}}, {"web"}) == ["gone"]
