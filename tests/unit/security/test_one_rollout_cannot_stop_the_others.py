"""A fault while looking at one Rollout is logged, and the policy's other Rollouts are still looked at."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from selfheal.domain.policy import PolicySpec
from selfheal.services.policies import PolicyRef
from selfheal.services.runtime import Runtime
from selfheal.services.triggers import sweep, watch_logs

NS = "shop"


def rollout(name: str, **status: Any) -> dict[str, Any]:
    return {
        "body": {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "labels": {"team": "pay"}},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
            },
            "status": {"currentPodHash": "new1", "stableRS": "old1", "currentStepIndex": 1, **status},
        }
    }


class FaultyCluster:
    """An in-memory cluster whose reads fail, for one Rollout, with a fault nobody foresaw."""

    def __init__(self, broken: str) -> None:
        self.broken = broken
        self.asked: list[str] = []

    async def get_replicaset(self, namespace: str, name: str) -> None:
        self.asked.append(name)
        if name.startswith(self.broken):
            raise ZeroDivisionError("a fault of our own")
        return None

    async def list_pods(self, namespace: str, selector: Any, pod_hash: str) -> list[Any]:
        return []

    async def list_analysis_runs(self, namespace: str, uid: str) -> list[Any]:
        return []

    async def list_events(self, namespace: str, names: Any) -> list[Any]:
        return []

    async def get_ticket(self, namespace: str, name: str) -> None:
        return None

    async def get_policy(self, namespace: str, name: str) -> None:
        return None

    async def patch_policy_status(self, namespace: str, name: str, body: Any) -> dict[str, Any]:
        return {}


@pytest.fixture
def policy() -> PolicyRef:
    spec = PolicySpec.model_validate(
        {"selector": {"matchLabels": {"team": "pay"}}, "triggers": {"logWatch": {"enabled": True}}}
    )
    return PolicyRef(NS, "pay", spec)


async def test_log_watch_goes_on_after_a_fault_in_one_rollout(
    policy: PolicyRef, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = FaultyCluster(broken="alpha")
    rt = Runtime(api_client=None, kube=cluster)  # type: ignore[arg-type]
    rollouts = [rollout("alpha"), {"body": {"kind": "Rollout", "metadata": "not a mapping"}}, rollout("beta")]
    with caplog.at_level(logging.ERROR):
        await watch_logs(rt, policy, rollouts, [policy])
    assert any(name.startswith("alpha") for name in cluster.asked)
    assert any(name.startswith("beta") for name in cluster.asked)  # looked at in the same tick
    assert "log watch of shop/alpha failed unexpectedly" in caplog.text
    assert "cannot be read" in caplog.text


async def test_catch_up_goes_on_after_a_fault_in_one_rollout(
    policy: PolicyRef, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = FaultyCluster(broken="alpha")
    rt = Runtime(api_client=None, kube=cluster)  # type: ignore[arg-type]
    paused = {"pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2025-01-01T00:00:00Z"}]}
    spec = policy.spec.model_copy(
        update={"triggers": policy.spec.triggers.model_copy(update={"indefinite_pause": True})}
    )
    ref = PolicyRef(NS, "pay", spec)
    with caplog.at_level(logging.ERROR):
        await sweep(rt, ref, [rollout("alpha", **paused), rollout("beta", **paused)], {}, [ref])
    assert "catch-up for shop/alpha failed unexpectedly" in caplog.text
    assert cluster.asked == ["alpha-new1", "beta-new1"]
