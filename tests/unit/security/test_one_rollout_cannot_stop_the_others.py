"""A fault while looking at one Rollout, or a Rollout that cannot be read, is logged, and the policy's other
Rollouts are still looked at in the same round."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from selfheal.domain.argo import Rollout
from selfheal.domain.policy import PolicySpec
from selfheal.domain.views import RolloutView
from selfheal.handlers.rollouts import rollouts_index
from selfheal.services.indexes import PolicySeen
from selfheal.services.planner import Planner
from selfheal.services.policies import PolicyRef
from selfheal.services.runtime import Runtime

NS = "shop"
PAUSED = {"pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2025-01-01T00:00:00Z"}]}


def rollout(name: str, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "labels": {"team": "pay"}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
        },
        "status": {"currentPodHash": "new1", "stableRS": "old1", "currentStepIndex": 1, **status},
    }


class FaultyCluster:
    """An in-memory cluster whose reads fail, for one Rollout, with a fault nobody foresaw."""

    def __init__(self, broken: str, rollouts: list[dict[str, Any]]) -> None:
        self.broken = broken
        self.rollouts = {r["metadata"]["name"]: r for r in rollouts}
        self.asked: list[str] = []

    async def get_rollout(self, namespace: str, name: str) -> Rollout | None:
        return Rollout.from_obj(self.rollouts[name])

    async def get_rollout_obj(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.rollouts.get(name)

    async def get_replicaset(self, namespace: str, name: str) -> None:
        self.asked.append(name)
        if name.startswith(self.broken):
            raise ZeroDivisionError("a fault of our own")
        return None

    async def list_pods(self, namespace: str, selector: Any, pod_hash: str) -> list[Any]:
        return []

    async def list_analysis_runs(self, namespace: str, uid: str, *, pod_hash: str | None = None) -> list[Any]:
        return []

    async def list_events(self, namespace: str, names: Any) -> list[Any]:
        return []

    async def get_ticket(self, namespace: str, name: str) -> None:
        return None

    async def get_policy(self, namespace: str, name: str) -> None:
        return None

    async def patch_policy_status(self, namespace: str, name: str, body: Any) -> dict[str, Any]:
        return {}


def runtime(cluster: FaultyCluster, policy: PolicyRef) -> Runtime:
    rt = Runtime(api_client=None, kube=cluster)  # type: ignore[arg-type]
    rt.indexes.policies = {NS: [policy]}
    rt.indexes.policy_names = {NS: [PolicySeen(NS, policy.name, 1)]}
    rt.indexes.rollouts = {
        (NS, name): [RolloutView.of(Rollout.from_obj(obj))] for name, obj in cluster.rollouts.items()
    }
    return rt


async def one_round(rt: Runtime) -> None:
    rt.scheduler.start()
    rt.scheduler.active.set()
    try:
        Planner(rt).plan(rt.clock())
        await asyncio.wait_for(rt.scheduler.join(), 10)
    finally:
        await rt.scheduler.stop(1)


def policy(**triggers: Any) -> PolicyRef:
    spec = {"selector": {"matchLabels": {"team": "pay"}}, "triggers": triggers}
    return PolicyRef(NS, "pay", PolicySpec.model_validate(spec))


async def test_log_watch_goes_on_after_a_fault_in_one_rollout(caplog: pytest.LogCaptureFixture) -> None:
    cluster = FaultyCluster("alpha", [rollout("alpha"), rollout("beta")])
    with caplog.at_level(logging.ERROR):
        await one_round(runtime(cluster, policy(logWatch={"enabled": True})))
    assert any(name.startswith("alpha") for name in cluster.asked)
    assert any(name.startswith("beta") for name in cluster.asked)  # looked at in the same round
    assert "job ('look', 'shop', 'alpha') failed unexpectedly" in caplog.text
    assert "ZeroDivisionError" in caplog.text


async def test_catch_up_goes_on_after_a_fault_in_one_rollout(caplog: pytest.LogCaptureFixture) -> None:
    cluster = FaultyCluster("alpha", [rollout("alpha", **PAUSED), rollout("beta", **PAUSED)])
    with caplog.at_level(logging.ERROR):
        await one_round(runtime(cluster, policy(indefinitePause=True, logWatch={"enabled": False})))
    assert "job ('canary', 'shop', 'alpha') failed unexpectedly" in caplog.text
    assert sorted(cluster.asked) == ["alpha-new1", "beta-new1"]


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "Rollout", "metadata": "not a mapping"},
        {"kind": "Rollout", "metadata": {"name": "x"}, "status": {"currentStepIndex": "three"}},
        {"kind": "Rollout", "metadata": {"name": "x"}, "spec": {"strategy": {"canary": {"steps": "pause"}}}},
    ],
)
async def test_a_rollout_that_cannot_be_read_is_left_out_of_the_index_with_a_warning(
    body: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("test-index")
    with caplog.at_level(logging.WARNING, logger="test-index"):
        assert await rollouts_index(namespace=NS, name="x", body=body, logger=logger) is None
    assert "cannot be read" in caplog.text
