"""Races between a judgement and its action: the LLM answer is held while a human (or another analysis) acts,
and a lagging controller keeps the Rollout in between states. The operator acts only on what it judged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from selfheal.testing import scenarios as argo_cli
from selfheal.testing.argosim import ArgoSimulator
from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.llm_server import OpenAIStandIn, verdict_content
from selfheal.testing.operator import OperatorProcess
from selfheal.testing.workloads import Behaviour, register_behaviour
from tests.conftest import FAST_OPERATOR
from tests.integration.test_selfheal_scenarios import APP, create_policy, deploy, llm_spec, selfheal_events

# The controller sees others' changes this late: long enough for the operator to read the Rollout
# in between, short enough for a test.
LAG = 2.0
# A timed pause first, so the canary serves enough traffic for a sure statistical verdict by the time
# its first indefinite pause (step 3/5) is judged; the next indefinite pause is step 5/5.
STEPS = [{"setWeight": 40}, {"pause": {"duration": "3s"}}, {"pause": {}}, {"setWeight": 80}, {"pause": {}}]
FIRST, NEXT = 2, 4
CHANGED = "selfheal did nothing (the Rollout changed since it was judged"
# The canary logs exactly as the stable does: a healthy new revision.
register_behaviour("blue-v2", Behaviour(colour="blue"))
register_behaviour("blue-v3", Behaviour(colour="blue"))


@pytest.fixture
def lagging(start_argo: Callable[..., ArgoSimulator]) -> ArgoSimulator:
    """The simulated controller seeing others' changes late, its canaries serving enough traffic for a sure verdict."""
    return start_argo(requests_per_second=100, informer_lag=LAG)


def first_answers(llm: OpenAIStandIn, verdict: str, count: int = 1) -> Callable[[dict], dict]:
    """``verdict`` (95 %) for the first ``count`` requests; an unsure answer for every later one, so a
    pause judged afterwards is left where it is."""

    def answer(body: dict) -> dict:
        index = next(i for i, request in enumerate(llm.requests) if request is body)
        if index < count:
            return verdict_content(verdict, 95, f"The canary is {verdict}.")
        return verdict_content("inconclusive", 50, "Not sure yet.")

    return answer


def paused_at(index: int) -> Callable[[dict], bool]:
    return lambda o: (
        (o.get("status") or {}).get("currentStepIndex") == index
        and argo_cli.rollout_phase(o)
        == (
            "Paused",
            "CanaryPauseStep",
        )
    )


def held_at_first_pause(
    cp: ControlPlane, ns: str, llm: OpenAIStandIn, verdict: str, *, analyses: int = 1
) -> dict[str, Any]:
    """A healthy canary rolled out to its first indefinite pause, with the operator's LLM call held open."""
    llm.hold()
    llm.respond_with(first_answers(llm, verdict, analyses))
    create_policy(
        cp,
        ns,
        {
            "triggers": {"logWatch": {"enabled": False}},
            "analysis": {"llm": llm_spec(llm, timeoutSeconds=90)},
            "decision": {"onHealthy": "promote"},
        },
    )
    deploy(cp, ns, "blue-v2", steps=STEPS)
    ro = argo_cli.wait_rollout(cp.admin, ns, APP, paused_at(FIRST), timeout=60, message="the first indefinite pause")
    cp.admin.wait_for(lambda: llm.held >= analyses, timeout=60, message="the operator asking the LLM")
    return ro


def judgement(cp: ControlPlane, ns: str, reason: str, containing: str = "", count: int = 1) -> list[str]:
    """The messages of the operator's ``reason`` Events once there are ``count`` of them."""

    def found() -> list[str] | None:
        messages = [e["message"] for e in selfheal_events(cp, ns, reason) if containing in e["message"]]
        return messages if len(messages) >= count else None

    return cp.admin.wait_for(found, timeout=60, message=f"{count} selfheal Event(s) {reason} {containing!r}")


def pause_steps_completed(cp: ControlPlane, ns: str) -> list[str]:
    """The indefinite pauses the controller has let go of, one Event each time."""
    return [
        e["message"]
        for e in argo_cli.events(cp.admin, ns, name=APP, reason="RolloutStepCompleted")
        if "(pause)" in e["message"]
    ]


def test_a_human_promotes_during_a_slow_llm_call(
    control_plane: ControlPlane, operator: OperatorProcess, lagging: ArgoSimulator, namespace: str, llm: OpenAIStandIn
) -> None:
    """The next pause is not promoted with the evidence judged at the previous one."""
    held_at_first_pause(control_plane, namespace, llm, "healthy")
    argo_cli.promote(control_plane.admin, namespace, APP)
    next_pause = argo_cli.wait_rollout(
        control_plane.admin, namespace, APP, paused_at(NEXT), timeout=30, message="the next pause"
    )
    llm.release()

    [message] = judgement(control_plane, namespace, "CanaryHealthy")
    assert f"{CHANGED}: it moved from step 3/5 to step 5/5" in message
    # The next pause gets a judgement of its own (an unsure one): it stays where the human left it.
    judgement(control_plane, namespace, "CanaryInconclusive")
    lagging.wait_passes(5, timeout=30)
    ro = argo_cli.get_rollout(control_plane.admin, namespace, APP)
    assert paused_at(NEXT)(ro)
    assert ro["status"]["pauseConditions"] == next_pause["status"]["pauseConditions"]


def test_a_human_pause_during_the_analysis_is_not_overridden(
    control_plane: ControlPlane, operator: OperatorProcess, lagging: ArgoSimulator, namespace: str, llm: OpenAIStandIn
) -> None:
    held_at_first_pause(control_plane, namespace, llm, "healthy")
    argo_cli.pause(control_plane.admin, namespace, APP)
    llm.release()

    [message] = judgement(control_plane, namespace, "CanaryHealthy")
    assert f"{CHANGED}: spec.paused was set" in message
    lagging.wait_passes(5, timeout=30)
    ro = argo_cli.get_rollout(control_plane.admin, namespace, APP)
    assert ro["spec"]["paused"] is True
    assert ro["status"]["currentStepIndex"] == FIRST
    assert [c["reason"] for c in ro["status"]["pauseConditions"]] == ["CanaryPauseStep"]
    assert pause_steps_completed(control_plane, namespace) == []


def test_a_new_revision_during_the_analysis_is_left_alone(
    control_plane: ControlPlane, operator: OperatorProcess, lagging: ArgoSimulator, namespace: str, llm: OpenAIStandIn
) -> None:
    """Even the eager abort of an unhealthy verdict does not touch a revision that was not judged."""
    judged = held_at_first_pause(control_plane, namespace, llm, "unhealthy")
    argo_cli.set_image(control_plane.admin, namespace, APP, "blue-v3")
    llm.release()

    [message] = judgement(control_plane, namespace, "CanaryUnhealthy")
    assert CHANGED in message
    assert "its pod template changed (a new revision)" in message or "not the judged" in message
    # The new revision rolls out to its own first pause, is judged there (unsure), and is never aborted.
    ro = argo_cli.wait_rollout(
        control_plane.admin,
        namespace,
        APP,
        lambda o: o["status"].get("currentPodHash") != judged["status"]["currentPodHash"] and paused_at(FIRST)(o),
        timeout=60,
        message="the new revision at its first pause",
    )
    judgement(control_plane, namespace, "CanaryInconclusive")
    assert not ro["status"].get("abort")
    assert not argo_cli.get_rollout(control_plane.admin, namespace, APP)["status"].get("abort")
    assert not [e for e in argo_cli.events(control_plane.admin, namespace, name=APP, reason="RolloutAborted")]


def test_a_rollout_the_controller_is_unpausing_is_not_promoted_again(
    control_plane: ControlPlane, operator: OperatorProcess, lagging: ArgoSimulator, namespace: str, llm: OpenAIStandIn
) -> None:
    held_at_first_pause(control_plane, namespace, llm, "healthy")
    argo_cli.promote(control_plane.admin, namespace, APP)
    # The controller has not seen the promote yet: the Rollout is unpausing when the answer comes.
    unpausing = argo_cli.get_rollout(control_plane.admin, namespace, APP)
    assert argo_cli.rollout_phase(unpausing) == ("Progressing", "waiting for rollout to unpause")
    llm.release()

    [message] = judgement(control_plane, namespace, "CanaryHealthy")
    assert CHANGED in message
    ro = argo_cli.wait_rollout(control_plane.admin, namespace, APP, paused_at(NEXT), timeout=30, message="next pause")
    judgement(control_plane, namespace, "CanaryInconclusive")
    lagging.wait_passes(5, timeout=30)
    # One promote, one step on: the pause was completed once and the next one still holds.
    assert pause_steps_completed(control_plane, namespace) == ["Rollout step 3/5 completed (pause)"]
    assert paused_at(NEXT)(argo_cli.get_rollout(control_plane.admin, namespace, APP))
    assert ro["status"]["stableRS"] != ro["status"]["currentPodHash"]


def test_two_analyses_of_the_same_pause_promote_it_once(
    control_plane: ControlPlane, operator: OperatorProcess, lagging: ArgoSimulator, namespace: str, llm: OpenAIStandIn
) -> None:
    """A second operator (two replicas without peering) judges the same pause at the same time: exactly
    one promote lands; the other is refused, by the apiserver or by the fresh read, and says so."""
    with OperatorProcess.with_chart_rbac(control_plane, namespaces=[namespace], env=FAST_OPERATOR):
        held_at_first_pause(control_plane, namespace, llm, "healthy", analyses=2)
        llm.release()
        messages = judgement(control_plane, namespace, "CanaryHealthy", count=2)
        assert sorted("selfheal promoted it" in m for m in messages) == [False, True]
        assert any(CHANGED in m for m in messages)
        argo_cli.wait_rollout(control_plane.admin, namespace, APP, paused_at(NEXT), timeout=30, message="next pause")
        judgement(control_plane, namespace, "CanaryInconclusive")
        lagging.wait_passes(5, timeout=30)
    assert pause_steps_completed(control_plane, namespace) == ["Rollout step 3/5 completed (pause)"]
    assert paused_at(NEXT)(argo_cli.get_rollout(control_plane.admin, namespace, APP))
