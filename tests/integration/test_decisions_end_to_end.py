"""Decisions end to end: a model that always says healthy, or answers too slowly, never promotes a canary
the statistics do not vouch for. Simulated Argo Rollouts, the real operator, an OpenAI stand-in."""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable

import pytest

from selfheal.testing import scenarios as argo_cli
from selfheal.testing.argosim import ArgoSimulator
from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.llm_server import OpenAIStandIn
from selfheal.testing.operator import OperatorProcess
from selfheal.testing.workloads import INJECTION_LINE, Behaviour, register_behaviour
from tests.integration.test_selfheal_scenarios import APP, PAUSE_STEPS, create_policy, deploy, llm_spec, selfheal_events

NEW_ERRORS = 60
ERROR_LINE = "ERROR order {n}: inventory reservation failed: upstream connect error or disconnect/reset"


def injected(rng: random.Random) -> list[str]:
    return [INJECTION_LINE] if rng.random() < 0.2 else []


def new_errors(total: int, *, also: Callable[[random.Random], list[str]] | None = None) -> Callable:
    """Extra lines for a canary: ``total`` ERROR lines in all, 20 a tick, from its start."""
    numbers = itertools.count(1)
    lock = threading.Lock()

    def extra(rng: random.Random) -> list[str]:
        with lock:
            lines = [ERROR_LINE.format(n=n) for n in itertools.islice(numbers, 20) if n <= total]
        return lines + (also(rng) if also else [])

    return extra


register_behaviour("http500", Behaviour(colour="blue", error_rate=0.85))
register_behaviour("http500-injected", Behaviour(colour="blue", error_rate=0.85, extra=injected))
register_behaviour("errors60", Behaviour(colour="blue", extra=new_errors(NEW_ERRORS)))
register_behaviour("errors60-injected", Behaviour(colour="blue", extra=new_errors(NEW_ERRORS, also=injected)))
register_behaviour("blue-v2", Behaviour(colour="blue"))


@pytest.fixture
def busy(start_argo: Callable[..., ArgoSimulator]) -> ArgoSimulator:
    """The simulated controller with canaries serving enough traffic for a sure verdict within seconds."""
    return start_argo(requests_per_second=100)


def verdict_at_the_pause(cp: ControlPlane, ns: str) -> dict:
    """The operator's first verdict Event on the indefinite pause."""
    return cp.admin.wait_for(
        lambda: next(
            (e for e in selfheal_events(cp, ns) if "at a pause that waits for a promotion" in e["message"]), None
        ),
        timeout=60,
        message="a verdict on the pause",
    )


@pytest.mark.parametrize("image", ["http500", "http500-injected", "errors60", "errors60-injected"])
def test_a_failing_canary_is_never_promoted_on_the_word_of_the_model(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    busy: ArgoSimulator,
    namespace: str,
    llm: OpenAIStandIn,
    image: str,
) -> None:
    """85 % HTTP 500s, or 60 new ERROR lines, with or without text in the logs asking for a promote: the
    model says healthy (99 %) every time, and the canary is not promoted."""
    llm.respond(verdict="healthy", confidence=99, summary="Looks perfect, promote.")
    create_policy(control_plane, namespace, {"analysis": {"llm": llm_spec(llm)}, "decision": {"onHealthy": "promote"}})
    deploy(control_plane, namespace, image, steps=PAUSE_STEPS)
    event = verdict_at_the_pause(control_plane, namespace)
    assert event["reason"] in ("CanaryUnhealthy", "CanaryInconclusive"), event["message"]
    assert "selfheal promoted it" not in event["message"]
    assert llm.requests, "the model was asked"
    # Whatever it was asked since (log watch, the pause judged again), it promoted nothing.
    busy.wait_passes(10, timeout=30)
    ro = argo_cli.get_rollout(control_plane.admin, namespace, APP)
    assert ro["status"]["stableRS"] != ro["status"]["currentPodHash"]
    assert (ro["status"].get("currentStepIndex") or 0) <= 1
    assert not selfheal_events(control_plane, namespace, "CanaryHealthy")


def test_a_model_dripping_its_answer_does_not_beat_the_timeout(
    control_plane: ControlPlane, operator: OperatorProcess, busy: ArgoSimulator, namespace: str, llm: OpenAIStandIn
) -> None:
    """A healthy canary a timely healthy answer would promote; the answer comes one byte a second."""
    llm.respond(verdict="healthy", confidence=99, summary="Looks perfect, promote.")
    llm.drip(1.0)
    create_policy(
        control_plane,
        namespace,
        {
            "triggers": {"logWatch": {"enabled": False}},
            "analysis": {"llm": llm_spec(llm, timeoutSeconds=3)},
            "decision": {"onHealthy": "promote", "onAnalyzerUnavailable": "none"},
        },
    )
    steps = [{"setWeight": 40}, {"pause": {"duration": "3s"}}, {"pause": {}}, {"setWeight": 80}, {"pause": {}}]
    deploy(control_plane, namespace, "blue-v2", steps=steps)
    event = verdict_at_the_pause(control_plane, namespace)
    assert "nalyzer unavailable (LLM at" in event["message"] and "no valid verdict within 3s" in event["message"]
    assert "onAnalyzerUnavailable=none" in event["message"] and "selfheal left it as it is" in event["message"]
    busy.wait_passes(10, timeout=30)
    ro = argo_cli.get_rollout(control_plane.admin, namespace, APP)
    assert ro["status"]["currentStepIndex"] == 2 and ro["status"]["stableRS"] != ro["status"]["currentPodHash"]

    # The same answer, sent at once, promotes it: the deadline, not the canary, held it back.
    llm.drip(0)
    ro = argo_cli.wait_rollout(
        control_plane.admin,
        namespace,
        APP,
        lambda o: (o["status"].get("currentStepIndex") or 0) > 2,
        timeout=60,
        message="the promote once the model answers in time",
    )
    assert any(
        "selfheal promoted it" in e["message"] for e in selfheal_events(control_plane, namespace, "CanaryHealthy")
    )
