"""Read models of Argo objects: phase wrapper, canary/stable identification, promote patches, pauses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from selfheal.domain.argo import (
    ABORT_STATUS_PATCH,
    PAUSE_SPEC_PATCH,
    RETRY_STATUS_PATCH,
    AnalysisRun,
    Rollout,
    canary_hash,
    current_step_description,
    effective_phase,
    is_aborted,
    is_canary_in_progress,
    is_inconclusive_pause,
    is_paused_at_indefinite_step,
    promote_patches,
    stable_hash,
)

STEPS = [
    {"setWeight": 20},
    {"pause": {}},
    {"analysis": {"templates": [{"templateName": "error-rate"}]}},
    {"setWeight": 50},
    {"pause": {"duration": "30s"}},
    {"setWeight": 80},
    {"pause": {"duration": 10}},
    {"setWeight": 100},
]


def rollout(
    status: dict[str, Any] | None = None,
    *,
    generation: int = 3,
    paused: bool = False,
    strategy: dict[str, Any] | None = None,
) -> Rollout:
    spec: dict[str, Any] = {
        "replicas": 4,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "demo:v2"}, {"name": "proxy", "image": "envoy:1"}]},
        },
        "strategy": strategy
        if strategy is not None
        else {"canary": {"steps": STEPS, "analysis": {"templates": [{"templateName": "bg"}], "startingStep": 2}}},
    }
    if paused:
        spec["paused"] = True
    return Rollout.from_obj(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "uid": "u-1",
                "generation": generation,
                "labels": {"team": "a"},
                "annotations": {"rollout.argoproj.io/revision": "7"},
                "creationTimestamp": "2026-01-01T00:00:00Z",
            },
            "spec": spec,
            "status": {
                "observedGeneration": str(generation),
                "phase": "Paused",
                "message": "CanaryPauseStep",
                "currentPodHash": "new5c4",
                "stableRS": "old7d8",
                **(status or {}),
            },
        }
    )


def blue_green(status: dict[str, Any], **spec: Any) -> Rollout:
    return rollout(
        {"currentPodHash": "", "stableRS": "", **status},
        strategy={"blueGreen": {"activeService": "web", "previewService": "web-preview", **spec}},
    )


# --- parsing --------------------------------------------------------------------------------------


def test_rollout_is_read_from_the_raw_object() -> None:
    ro = rollout(
        {
            "currentStepIndex": 1,
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-01-01T00:01:00Z"}],
            "controllerPause": True,
            "observedGeneration": "3",
            "canary": {
                "currentStepAnalysisRunStatus": {"name": "web-new5c4-7-2", "status": "Running"},
                "currentBackgroundAnalysisRunStatus": None,
            },
            "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": "x"}],
            "unknownField": {"ignored": True},
        }
    )
    assert (ro.name, ro.namespace, ro.uid, ro.generation, ro.revision) == ("web", "shop", "u-1", 3, "7")
    assert ro.selector == {"app": "web"}
    assert ro.replicas == 4
    assert ro.images == ["demo:v2", "envoy:1"]
    assert ro.containers == ["app", "proxy"]
    assert ro.strategy == "canary"
    assert [s.kind for s in ro.steps] == [
        "setWeight",
        "pause",
        "analysis",
        "setWeight",
        "pause",
        "setWeight",
        "pause",
        "setWeight",
    ]
    assert ro.background_analysis and ro.background_analysis_starting_step == 2
    assert ro.status.stable_rs == "old7d8"
    assert ro.status.current_step_index == 1
    assert ro.status.pause_conditions[0].start_time == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    assert ro.status.canary.current_step_analysis_run_status.name == "web-new5c4-7-2"
    assert ro.status.canary.current_background_analysis_run_status is None
    assert ro.status.conditions[0].reason == "ReplicaSetUpdated"
    assert ro.labels == {"team": "a"}


def test_observed_generation_is_kept_as_a_string_even_if_sent_as_int() -> None:
    assert rollout({"observedGeneration": 3}).status.observed_generation == "3"


def test_an_empty_object_parses() -> None:
    ro = Rollout.from_obj({"metadata": {"name": "x"}})
    assert ro.strategy == "" and ro.status.current_pod_hash == "" and canary_hash(ro) is None


# --- phase wrapper (contract §1.2) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "generation", "expected"),
    [
        ({}, 3, ("Paused", "CanaryPauseStep")),
        ({"observedGeneration": "2"}, 3, ("Progressing", "waiting for rollout spec update to be observed")),
        ({"observedGeneration": None}, 3, ("Progressing", "waiting for rollout spec update to be observed")),
        ({"controllerPause": True, "pauseConditions": []}, 3, ("Progressing", "waiting for rollout to unpause")),
        (
            {"controllerPause": True, "pauseConditions": [{"reason": "CanaryPauseStep"}]},
            3,
            ("Paused", "CanaryPauseStep"),
        ),
        # generation check wins over the unpausing check
        (
            {"observedGeneration": "2", "controllerPause": True},
            3,
            ("Progressing", "waiting for rollout spec update to be observed"),
        ),
        (
            {"phase": "Degraded", "message": "RolloutAborted: Rollout aborted update to revision 7"},
            3,
            ("Degraded", "RolloutAborted: Rollout aborted update to revision 7"),
        ),
        ({"phase": "Healthy", "message": ""}, 3, ("Healthy", "")),
    ],
)
def test_effective_phase(status: dict[str, Any], generation: int, expected: tuple[str, str]) -> None:
    assert effective_phase(rollout(status, generation=generation)) == expected


# --- canary / stable (contract §4) -------------------------------------------------------------------


def test_canary_and_stable_hashes_of_a_canary() -> None:
    ro = rollout()
    assert (canary_hash(ro), stable_hash(ro)) == ("new5c4", "old7d8")
    assert is_canary_in_progress(ro)


def test_fully_promoted_canary_has_no_canary() -> None:
    ro = rollout({"currentPodHash": "old7d8", "stableRS": "old7d8", "phase": "Healthy"})
    assert canary_hash(ro) is None
    assert stable_hash(ro) == "old7d8"
    assert not is_canary_in_progress(ro)


def test_initial_deploy_has_no_stable() -> None:
    ro = rollout({"currentPodHash": "first1", "stableRS": ""})
    assert stable_hash(ro) is None
    assert canary_hash(ro) == "first1"
    assert not is_canary_in_progress(ro)


def test_aborted_canary_is_not_in_progress_but_keeps_its_hashes() -> None:
    ro = rollout({"abort": True, "abortedAt": "2026-01-01T00:05:00Z", "phase": "Degraded"})
    assert is_aborted(ro)
    assert not is_canary_in_progress(ro)
    assert canary_hash(ro) == "new5c4"


def test_blue_green_preview_vs_active() -> None:
    ro = blue_green(
        {
            "currentPodHash": "new5c4",
            "stableRS": "old7d8",
            "blueGreen": {"activeSelector": "old7d8", "previewSelector": "new5c4"},
        }
    )
    assert ro.strategy == "blueGreen"
    assert (canary_hash(ro), stable_hash(ro)) == ("new5c4", "old7d8")
    assert is_canary_in_progress(ro)
    assert current_step_description(ro) == "blueGreen: preview"


def test_blue_green_falls_back_to_selectors() -> None:
    ro = blue_green({"blueGreen": {"activeSelector": "old7d8", "previewSelector": "new5c4"}})
    assert (canary_hash(ro), stable_hash(ro)) == ("new5c4", "old7d8")


def test_blue_green_after_the_switch_compares_with_the_old_stable() -> None:
    ro = blue_green(
        {
            "currentPodHash": "new5c4",
            "stableRS": "old7d8",
            "blueGreen": {"activeSelector": "new5c4", "previewSelector": "new5c4"},
        }
    )
    assert (canary_hash(ro), stable_hash(ro)) == ("new5c4", "old7d8")
    assert current_step_description(ro) == "blueGreen: active, post-promotion"


def test_blue_green_spec_is_read() -> None:
    analysis = {"templates": [{"templateName": "selfheal"}]}
    ro = blue_green(
        {}, autoPromotionEnabled=False, autoPromotionSeconds=30, prePromotionAnalysis=analysis, postPromotionAnalysis={}
    )
    spec = ro.blue_green
    assert (spec.active_service, spec.preview_service) == ("web", "web-preview")
    assert (spec.auto_promotion_enabled, spec.auto_promotion_seconds) == (False, 30)
    assert (spec.pre_promotion_analysis, spec.post_promotion_analysis) == (True, False)
    assert blue_green({}).blue_green.auto_promotion_enabled is True  # unset means enabled, as in Argo


BLUE_GREEN_PAUSED = {
    "currentPodHash": "new5c4",
    "stableRS": "old7d8",
    "controllerPause": True,
    "pauseConditions": [{"reason": "BlueGreenPause", "startTime": "2026-01-01T00:01:00Z"}],
    "blueGreen": {"activeSelector": "old7d8", "previewSelector": "new5c4"},
}


def test_a_blue_green_waiting_for_promotion_is_an_indefinite_pause() -> None:
    ro = blue_green(BLUE_GREEN_PAUSED, autoPromotionEnabled=False)
    assert is_paused_at_indefinite_step(ro)
    # `kubectl argo rollouts promote` on a paused blue-green clears the pause conditions, nothing else
    assert promote_patches(ro) == ({"status": {"pauseConditions": None}}, None)


@pytest.mark.parametrize(
    ("spec", "status"),
    [
        ({"autoPromotionSeconds": 30}, {}),  # a timed pause: the controller promotes by itself
        ({}, {}),  # auto promotion: a BlueGreenPause ends on its own
        ({"autoPromotionEnabled": False}, {"abort": True}),
        ({"autoPromotionEnabled": False}, {"pauseConditions": [{"reason": "InconclusiveAnalysisRun"}]}),
    ],
)
def test_other_blue_green_pauses_are_not_indefinite(spec: dict[str, Any], status: dict[str, Any]) -> None:
    assert not is_paused_at_indefinite_step(blue_green({**BLUE_GREEN_PAUSED, **status}, **spec))


def test_promoting_a_blue_green_that_is_not_paused_sends_nothing() -> None:
    ro = blue_green({"currentPodHash": "new5c4", "stableRS": "old7d8"})
    assert promote_patches(ro) == (None, None)
    assert promote_patches(ro, full=True) == ({"status": {"promoteFull": True}}, None)


def test_blue_green_fully_promoted() -> None:
    ro = blue_green(
        {
            "currentPodHash": "new5c4",
            "stableRS": "new5c4",
            "blueGreen": {"activeSelector": "new5c4", "previewSelector": ""},
        }
    )
    assert canary_hash(ro) is None


# --- pauses -------------------------------------------------------------------------------------------


def test_indefinite_pause_step_is_detected() -> None:
    ro = rollout(
        {
            "currentStepIndex": 1,
            "controllerPause": True,
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-01-01T00:01:00Z"}],
        }
    )
    assert is_paused_at_indefinite_step(ro)
    assert current_step_description(ro) == "step 2/8 (pause)"


@pytest.mark.parametrize(
    ("index", "reasons", "abort"),
    [
        (4, ["CanaryPauseStep"], False),  # pause with a duration
        (6, ["CanaryPauseStep"], False),  # pause with an integer duration
        (1, [], False),  # the step is pause but no pause condition (resumed)
        (1, ["CanaryPauseStep"], True),  # aborted
        (2, ["InconclusiveAnalysisRun"], False),
        (8, ["CanaryPauseStep"], False),  # past the last step
    ],
)
def test_other_pauses_are_not_indefinite(index: int, reasons: list[str], abort: bool) -> None:
    ro = rollout(
        {
            "currentStepIndex": index,
            "controllerPause": bool(reasons),
            "abort": abort,
            "pauseConditions": [{"reason": r} for r in reasons],
        }
    )
    assert not is_paused_at_indefinite_step(ro)


def test_inconclusive_pause() -> None:
    ro = rollout(
        {
            "currentStepIndex": 2,
            "controllerPause": True,
            "pauseConditions": [{"reason": "InconclusiveAnalysisRun"}],
            "canary": {"currentStepAnalysisRunStatus": {"name": "ar", "status": "Inconclusive"}},
        }
    )
    assert is_inconclusive_pause(ro)
    assert not is_inconclusive_pause(rollout({"pauseConditions": [{"reason": "CanaryPauseStep"}]}))


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (None, "step 1/8 (setWeight: 20)"),
        (0, "step 1/8 (setWeight: 20)"),
        (2, "step 3/8 (analysis)"),
        (4, "step 5/8 (pause: 30s)"),
        (6, "step 7/8 (pause: 10)"),
        (8, "step 8/8 (done)"),
    ],
)
def test_current_step_description(index: int | None, expected: str) -> None:
    assert current_step_description(rollout({"currentStepIndex": index})) == expected


def test_canary_without_steps_has_no_step_description() -> None:
    assert current_step_description(rollout(strategy={"canary": {}})) == ""


# --- patches (contract §2), compared byte for byte with the CLI's Go literals ------------------------

GO = {
    "setCurrentStepIndex": '{"status":{"currentStepIndex":%d}}',
    "unpausePatch": '{"spec":{"paused":false}}',
    "clearPauseConditionsPatch": '{"status":{"pauseConditions":null}}',
    "clearPauseConditionsAndControllerPausePatch": '{"status":{"pauseConditions":null, "controllerPause":false, "currentStepIndex":%d}}',
    "promoteFullPatch": '{"status":{"promoteFull":true}}',
    "clearPauseConditionsPatchWithStep": '{"status":{"pauseConditions":null, "currentStepIndex":%d}}',
    "abortPatch": '{"status":{"abort":true}}',
    "retryRolloutPatch": '{"status":{"abort":false}}',
    "pausePatch": '{"spec":{"paused":true}}',
}


def go_bytes(patch: dict[str, Any] | None) -> str | None:
    """JSON with the separators of the Go literals (no space after ':', one after ',')."""
    return None if patch is None else json.dumps(patch, separators=(", ", ":"))


def test_constant_patches() -> None:
    assert go_bytes(ABORT_STATUS_PATCH) == GO["abortPatch"]
    assert go_bytes(RETRY_STATUS_PATCH) == GO["retryRolloutPatch"]
    assert go_bytes(PAUSE_SPEC_PATCH) == GO["pausePatch"]


INCONCLUSIVE = {"canary": {"currentStepAnalysisRunStatus": {"name": "ar", "status": "Inconclusive"}}}


@pytest.mark.parametrize(
    ("status", "paused", "full", "expected_status", "expected_spec"),
    [
        # --full: promoteFull unless fully promoted; unpause only when spec.paused
        ({}, False, True, GO["promoteFullPatch"], None),
        ({}, True, True, GO["promoteFullPatch"], GO["unpausePatch"]),
        ({"currentPodHash": "old7d8"}, False, True, None, None),
        ({"currentPodHash": "old7d8"}, True, True, None, GO["unpausePatch"]),
        # default, inconclusive step run with pause conditions and controllerPause: clear both and step on
        (
            {
                "currentStepIndex": 2,
                "controllerPause": True,
                "pauseConditions": [{"reason": "InconclusiveAnalysisRun"}],
                **INCONCLUSIVE,
            },
            False,
            False,
            GO["clearPauseConditionsAndControllerPausePatch"] % 3,
            None,
        ),
        (
            {
                "currentStepIndex": 8,
                "controllerPause": True,
                "pauseConditions": [{"reason": "InconclusiveAnalysisRun"}],
                **INCONCLUSIVE,
            },
            True,
            False,
            GO["clearPauseConditionsAndControllerPausePatch"] % 8,
            GO["unpausePatch"],
        ),
        (
            {
                "currentStepIndex": None,
                "controllerPause": True,
                "pauseConditions": [{"reason": "InconclusiveAnalysisRun"}],
                **INCONCLUSIVE,
            },
            False,
            False,
            GO["clearPauseConditionsAndControllerPausePatch"] % 1,
            None,
        ),
        # inconclusive but controllerPause false: falls to the plain pause-conditions case
        (
            {
                "currentStepIndex": 2,
                "controllerPause": False,
                "pauseConditions": [{"reason": "InconclusiveAnalysisRun"}],
                **INCONCLUSIVE,
            },
            False,
            False,
            GO["clearPauseConditionsPatch"],
            None,
        ),
        # paused on a pause step: only clear the pause conditions, the controller steps on
        (
            {"currentStepIndex": 1, "controllerPause": True, "pauseConditions": [{"reason": "CanaryPauseStep"}]},
            False,
            False,
            GO["clearPauseConditionsPatch"],
            None,
        ),
        (
            {"currentStepIndex": 1, "controllerPause": True, "pauseConditions": [{"reason": "CanaryPauseStep"}]},
            True,
            False,
            GO["clearPauseConditionsPatch"],
            GO["unpausePatch"],
        ),
        # sitting on an analysis step: skip it
        ({"currentStepIndex": 2}, False, False, GO["clearPauseConditionsPatchWithStep"] % 3, None),
        ({"currentStepIndex": None}, False, False, GO["clearPauseConditionsPatchWithStep"] % 1, None),
        # index already past the end stays at len(steps)
        ({"currentStepIndex": 8}, False, False, GO["clearPauseConditionsPatchWithStep"] % 8, None),
        # only spec.paused
        ({"currentStepIndex": 3}, True, False, GO["clearPauseConditionsPatchWithStep"] % 4, GO["unpausePatch"]),
    ],
)
def test_promote_patches_canary(
    status: dict[str, Any], paused: bool, full: bool, expected_status: str | None, expected_spec: str | None
) -> None:
    status_patch, spec_patch = promote_patches(rollout(status, paused=paused), full=full)
    assert go_bytes(status_patch) == expected_status
    assert go_bytes(spec_patch) == expected_spec


def test_promote_canary_without_steps_sends_nothing() -> None:
    ro = rollout(strategy={"canary": {}})
    assert promote_patches(ro) == (None, None)
    assert promote_patches(rollout(strategy={"canary": {}}, paused=True)) == (None, {"spec": {"paused": False}})


def test_promote_inconclusive_canary_without_steps_sends_no_status_patch() -> None:
    ro = rollout(
        {"controllerPause": True, "pauseConditions": [{"reason": "InconclusiveAnalysisRun"}], **INCONCLUSIVE},
        strategy={"canary": {}},
    )
    assert promote_patches(ro) == (None, None)


@pytest.mark.parametrize(
    ("status", "paused", "expected_status", "expected_spec"),
    [
        ({}, False, None, None),  # blueGreen neither paused nor with pause conditions: no API call at all
        ({}, True, None, GO["unpausePatch"]),
        (
            {"pauseConditions": [{"reason": "BlueGreenPause"}], "controllerPause": True},
            False,
            GO["clearPauseConditionsPatch"],
            None,
        ),
    ],
)
def test_promote_patches_blue_green(
    status: dict[str, Any], paused: bool, expected_status: str | None, expected_spec: str | None
) -> None:
    ro = Rollout.from_obj(
        {
            "metadata": {"name": "web", "generation": 1},
            "spec": {"paused": paused, "strategy": {"blueGreen": {"activeService": "web"}}},
            "status": {"currentPodHash": "new5c4", "stableRS": "old7d8", "observedGeneration": "1", **status},
        }
    )
    status_patch, spec_patch = promote_patches(ro)
    assert go_bytes(status_patch) == expected_status
    assert go_bytes(spec_patch) == expected_spec


def test_patch_builders_return_fresh_dicts() -> None:
    status_patch, _ = promote_patches(rollout({"pauseConditions": [{"reason": "CanaryPauseStep"}]}))
    status_patch["status"]["x"] = 1
    again, _ = promote_patches(rollout({"pauseConditions": [{"reason": "CanaryPauseStep"}]}))
    assert again == {"status": {"pauseConditions": None}}


# --- AnalysisRun -------------------------------------------------------------------------------------


def analysis_run(**status: Any) -> AnalysisRun:
    return AnalysisRun.from_obj(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisRun",
            "metadata": {
                "name": "web-new5c4-7-2",
                "namespace": "shop",
                "uid": "ar-1",
                "labels": {
                    "rollouts-pod-template-hash": "new5c4",
                    "rollout-type": "Step",
                    "step-index": "2",
                    "app": "web",
                },
                "annotations": {"rollout.argoproj.io/revision": "7"},
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": "x"},
                    {
                        "apiVersion": "argoproj.io/v1alpha1",
                        "kind": "Rollout",
                        "name": "web",
                        "uid": "u-1",
                        "controller": True,
                        "blockOwnerDeletion": True,
                    },
                ],
            },
            "spec": {"metrics": [{"name": "error-rate"}]},
            "status": status,
        }
    )


def test_analysis_run_is_read() -> None:
    run = analysis_run(
        phase="Failed",
        startedAt="2026-01-01T00:02:00Z",
        completedAt="2026-01-01T00:03:00Z",
        message='Metric "error-rate" assessed Failed due to failed (2) > failureLimit (1)',
    )
    assert (run.name, run.namespace, run.phase) == ("web-new5c4-7-2", "shop", "Failed")
    assert (run.pod_hash, run.rollout_type, run.step_index, run.revision) == ("new5c4", "Step", 2, "7")
    assert run.owner is not None and (run.owner.kind, run.owner.name, run.owner.uid) == ("Rollout", "web", "u-1")
    assert run.is_owned_by("u-1") and not run.is_owned_by("u-2") and not run.is_owned_by("")
    assert run.started_at == datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
    assert run.completed and run.unsuccessful


def test_analysis_run_without_status() -> None:
    run = analysis_run()
    assert run.phase == "" and not run.completed and run.failed_metrics() == []
    assert analysis_run(phase="Running").completed is False
    assert analysis_run(phase="Successful").completed is True


def test_failed_metrics_with_values_and_messages() -> None:
    run = analysis_run(
        phase="Failed",
        metricResults=[
            {
                "name": "error-rate",
                "phase": "Failed",
                "count": 3,
                "failed": 2,
                "successful": 1,
                "message": "",
                "measurements": [
                    {"phase": "Successful", "value": "0.01", "startedAt": "2026-01-01T00:02:00Z"},
                    {"phase": "Failed", "value": "0.31"},
                    {"phase": "Failed", "value": "0.42", "message": "above 0.05"},
                ],
            },
            {"name": "latency", "phase": "Successful", "measurements": [{"phase": "Successful", "value": "120"}]},
            {"name": "shadow", "phase": "Failed", "dryRun": True, "measurements": [{"phase": "Failed", "value": "9"}]},
            {
                "name": "web-check",
                "phase": "Error",
                "message": 'Get "http://x": connection refused',
                "measurements": [{"phase": "Error", "message": "connection refused"}],
            },
            {"name": "maybe", "phase": "Inconclusive", "measurements": None},
        ],
    )
    metrics = run.failed_metrics()
    assert [(m.name, m.phase) for m in metrics] == [
        ("error-rate", "Failed"),
        ("web-check", "Error"),
        ("maybe", "Inconclusive"),
    ]
    assert metrics[0].values == ["0.01", "0.31", "0.42"]
    assert metrics[0].message == "above 0.05"
    assert metrics[0].analysis_run == "web-new5c4-7-2"
    assert metrics[1].message == 'Get "http://x": connection refused'
    assert metrics[1].values == []


def test_version_and_template_digest_are_read() -> None:
    obj: dict[str, Any] = {
        "metadata": {"name": "web", "resourceVersion": "4711"},
        "spec": {
            "template": {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"image": "x:1"}]}}
        },
    }
    ro = Rollout.from_obj(obj)
    assert ro.resource_version == "4711"
    reordered = json.loads(json.dumps(obj))
    reordered["spec"]["template"]["metadata"]["labels"] = {"b": "2", "a": "1"}
    assert Rollout.from_obj(reordered).template_digest == ro.template_digest
    reordered["spec"]["template"]["spec"]["containers"][0]["image"] = "x:2"
    assert Rollout.from_obj(reordered).template_digest != ro.template_digest


def test_null_flags_in_status_read_as_false() -> None:
    ro = rollout({"abort": None, "controllerPause": None, "promoteFull": None})
    assert (ro.status.abort, ro.status.controller_pause, ro.status.promote_full) == (False, False, False)


def test_a_metric_that_asks_selfheal_is_not_evidence_against_the_canary() -> None:
    """A plugin-style metric fails when selfheal is unsure: that failure is selfheal's own word, not a symptom."""
    run = AnalysisRun.from_obj(
        {
            "metadata": {"name": "web-abc-2-1"},
            "spec": {
                "metrics": [
                    {"name": "gate", "provider": {"web": {"url": "http://sh.ns.svc:8081/api/v1/verdict?canary=abc"}}},
                    {"name": "errors", "provider": {"web": {"url": "http://metrics/api/v1/query?q=/api/v1/verdict"}}},
                    {"name": "latency", "provider": {"prometheus": {"query": "x"}}},
                ]
            },
            "status": {
                "phase": "Failed",
                "metricResults": [
                    {"name": name, "phase": "Failed", "measurements": [{"phase": "Failed", "value": "0"}]}
                    for name in ("gate", "errors", "latency")
                ],
            },
        }
    )
    assert run.verdict_metrics == {"gate"}
    assert [m.name for m in run.failed_metrics()] == ["errors", "latency"]
