"""The judged situation against a fresh read: which changes void a promote or pause, and which an abort."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from selfheal.domain.argo import Rollout
from selfheal.domain.situation import CHANGED, Situation, changes, refusal_to_proceed, refusal_to_stop

STEPS = [{"setWeight": 40}, {"pause": {}}, {"setWeight": 80}, {"pause": {}}]
T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def paused_at_step_2() -> dict[str, Any]:
    """A canary Rollout as the controller leaves it at its first indefinite pause."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "generation": 3, "resourceVersion": "100"},
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"image": "demo:v2"}]}},
            "strategy": {"canary": {"steps": STEPS}},
        },
        "status": {
            "observedGeneration": "3",
            "currentPodHash": "new5c4",
            "stableRS": "old7d8",
            "currentStepIndex": 1,
            "controllerPause": True,
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": T0}],
            "phase": "Paused",
            "message": "CanaryPauseStep",
            "readyReplicas": 5,
        },
    }


def edited(change: Callable[[dict[str, Any]], None], *, version: str = "101") -> Rollout:
    obj = copy.deepcopy(paused_at_step_2())
    obj["metadata"]["resourceVersion"] = version
    change(obj)
    return Rollout.from_obj(obj)


def status(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda obj: obj["status"].update(fields)


def spec(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def apply(obj: dict[str, Any]) -> None:
        obj["spec"].update(fields)
        obj["metadata"]["generation"] += 1

    return apply


def both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def apply(obj: dict[str, Any]) -> None:
        for change in changes:
            change(obj)

    return apply


def observed(obj: dict[str, Any]) -> None:
    obj["status"]["observedGeneration"] = str(obj["metadata"]["generation"])


def new_image(obj: dict[str, Any]) -> None:
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = "demo:v3"
    obj["metadata"]["generation"] += 1


JUDGED = Situation.of(Rollout.from_obj(paused_at_step_2()))

# (what happened since the judgement, the fresh read) -> (why a promote is refused, why an abort is refused)
CASES: list[tuple[str, Rollout | None, str | None, str | None]] = [
    (
        "the controller rewrote replica counts: nothing judged changed",
        edited(status(readyReplicas=4, availableReplicas=4)),
        None,
        None,
    ),
    (
        "a human promoted; the controller has not reacted yet",
        edited(status(pauseConditions=None)),
        "pause conditions went from CanaryPauseStep since 2026-01-01T00:00:00+00:00 to none",
        None,
    ),
    (
        "a human promoted; the controller moved on to the next pause",
        edited(status(currentStepIndex=3, pauseConditions=[{"reason": "CanaryPauseStep", "startTime": T1}])),
        "it moved from step 2/4 to step 4/4",
        None,
    ),
    (
        "a human set spec.paused; the controller has not observed it",
        edited(spec(paused=True)),
        "spec.paused was set",
        None,
    ),
    (
        "a human set spec.paused; the controller observed it",
        edited(both(spec(paused=True), observed)),
        "spec.paused was set",
        None,
    ),
    (
        "a new revision was asked for; the controller has not observed it",
        edited(new_image),
        "its pod template changed (a new revision)",
        "its pod template changed (a new revision)",
    ),
    (
        "a new revision is being rolled out",
        edited(both(new_image, observed, status(currentPodHash="new9f1", currentStepIndex=0, pauseConditions=None))),
        "its canary is new9f1, not the judged new5c4",
        "its canary is new9f1, not the judged new5c4",
    ),
    (
        "the canary was fully promoted",
        edited(status(stableRS="new5c4", currentStepIndex=4, pauseConditions=None, controllerPause=None)),
        "the judged canary new5c4 was fully promoted",
        "the judged canary new5c4 was fully promoted",
    ),
    (
        "the controller aborted it (a failed analysis)",
        edited(status(abort=True, pauseConditions=None, controllerPause=None, currentStepIndex=0)),
        "it was aborted",
        None,
    ),
    (
        "aborted and retried, back at the same pause",
        edited(status(pauseConditions=[{"reason": "CanaryPauseStep", "startTime": T1}])),
        "pause conditions went from CanaryPauseStep since 2026-01-01T00:00:00+00:00 to CanaryPauseStep since "
        "2026-01-01T00:05:00+00:00",
        None,
    ),
    ("a full promotion was requested", edited(status(promoteFull=True)), "a full promotion was requested", None),
    (
        "its step analysis ended",
        edited(status(canary={"currentStepAnalysisRunStatus": {"name": "web-new5c4-2-1", "status": "Inconclusive"}})),
        "its step analysis went from none to web-new5c4-2-1 (Inconclusive)",
        None,
    ),
    (
        "deleted and created again under the same name",
        edited(lambda obj: obj["metadata"].update(uid="u-2")),
        "it was deleted and created again",
        "it was deleted and created again",
    ),
]


@pytest.mark.parametrize(("what", "fresh", "no_promote", "no_abort"), CASES, ids=[c[0] for c in CASES])
def test_what_voids_a_judgement(what: str, fresh: Rollout, no_promote: str | None, no_abort: str | None) -> None:
    proceed, stop = refusal_to_proceed(JUDGED, fresh), refusal_to_stop(JUDGED, fresh)
    if no_promote is None:
        assert proceed is None, what
    else:
        assert proceed is not None and proceed.startswith(CHANGED) and no_promote in proceed, (what, proceed)
    if no_abort is None:
        assert stop is None, what
    else:
        assert stop is not None and stop.startswith(CHANGED) and no_abort in stop, (what, stop)


def test_a_rollout_that_is_gone_is_left_alone() -> None:
    assert refusal_to_proceed(JUDGED, None) == "the Rollout is gone"
    assert refusal_to_stop(JUDGED, None) == "the Rollout is gone"


@pytest.mark.parametrize(
    ("state", "refusal"),
    [
        (status(pauseConditions=None), "the Rollout is Progressing: waiting for rollout to unpause"),
        (spec(replicas=6), "the Rollout is Progressing: waiting for rollout spec update to be observed"),
        (both(spec(paused=True), observed), "the Rollout is paused by hand (spec.paused)"),
        (status(abort=True), "the Rollout is aborted"),
    ],
    ids=["unpausing", "generation-not-observed", "paused-by-hand", "aborted"],
)
def test_a_situation_that_was_never_settled_is_not_promoted(
    state: Callable[[dict[str, Any]], None], refusal: str
) -> None:
    """Judged and found unchanged, yet not a state to promote: the checks look at the fresh read itself."""
    ro = edited(state)
    judged = Situation.of(ro)
    assert changes(judged, Situation.of(edited(state, version="102"))) == []
    reason = refusal_to_proceed(judged, ro)
    assert reason is not None and reason.startswith(refusal)


def test_a_spec_change_that_touches_nothing_judged_is_fine_once_observed() -> None:
    assert refusal_to_proceed(JUDGED, edited(both(spec(replicas=6), observed))) is None


def test_several_changes_are_all_named() -> None:
    fresh = edited(status(currentStepIndex=3, pauseConditions=None, abort=True))
    found = changes(JUDGED, Situation.of(fresh))
    assert found == [
        "it moved from step 2/4 to step 4/4",
        "its pause conditions went from CanaryPauseStep since 2026-01-01T00:00:00+00:00 to none",
        "it was aborted",
    ]


def test_where_the_rollout_stood_reads_as_a_step() -> None:
    assert (JUDGED.canary, JUDGED.step, JUDGED.step_label()) == ("new5c4", 1, "step 2/4")
    assert Situation.of(edited(status(currentStepIndex=None))).step_label() == "step 1/4"
    assert Situation.of(edited(status(currentStepIndex=4))).step_label() == "the end of its 4 steps"
    no_steps = edited(lambda obj: obj["spec"]["strategy"]["canary"].update(steps=[]))
    assert Situation.of(no_steps).step_label() == "no step"
