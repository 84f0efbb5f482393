"""A small world for the services: a canary Rollout with its pods and logs in a FakeKube, a policy, a runtime."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from selfheal.domain.policy import PolicySpec
from selfheal.services.policies import PolicyRef
from selfheal.services.runtime import Runtime
from selfheal.testing.fakes import FakeGitHub, FakeKube

LOGS = Path(__file__).resolve().parents[3] / "examples" / "logs"
NS = "shop"
ROLLOUT = "web"
UID = "rollout-uid-1"
CANARY = "new5c4"
STABLE = "old7d8"
T0 = datetime(2026, 11, 20, 14, 0, 0, tzinfo=UTC)
STEPS: list[dict[str, Any]] = [
    {"setWeight": 20},
    {"pause": {}},
    {"setWeight": 50},
    {"pause": {"duration": "30s"}},
]


def log(name: str) -> str:
    """A saved example log: ``stable``, ``canary-panic``, ``canary-random-colors``, ``canary-http-500``."""
    return (LOGS / f"{name}.log").read_text()


def rollout_obj(*, step: int = 1, status: dict[str, Any] | None = None, paused: bool = False) -> dict[str, Any]:
    """The canary ``web`` rolling out ``new5c4`` next to stable ``old7d8``, paused at the indefinite step 1."""
    obj: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": ROLLOUT,
            "namespace": NS,
            "uid": UID,
            "generation": 2,
            "labels": {"app": "web"},
            "annotations": {"rollout.argoproj.io/revision": "2"},
        },
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "shop/web:v2"}]},
            },
            "strategy": {"canary": {"steps": STEPS}},
        },
        "status": {
            "observedGeneration": "2",
            "phase": "Paused",
            "currentPodHash": CANARY,
            "stableRS": STABLE,
            "currentStepIndex": step,
            "controllerPause": True,
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-11-20T13:59:00Z"}],
        },
    }
    if paused:
        obj["spec"]["paused"] = True
    if status:
        obj["status"] = {**obj["status"], **status}
    return obj


def pod(name: str, pod_hash: str, *, restarts: int = 0, ready: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS, "labels": {"app": "web", "rollouts-pod-template-hash": pod_hash}},
        "spec": {"containers": [{"name": "app", "image": f"shop/web:{pod_hash}"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [
                {"name": "app", "image": f"shop/web:{pod_hash}", "ready": ready, "restartCount": restarts}
            ],
        },
    }


def policy(name: str = "web-policy", **spec: Any) -> PolicyRef:
    """A statistics-only policy selecting ``app=web``: abort when unhealthy, promote when healthy."""
    base: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "analysis": {"llm": {"provider": "none"}},
        "decision": {"onUnhealthy": "abort", "onHealthy": "promote", "confidenceThreshold": 70},
    }
    for key, value in spec.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return PolicyRef(NS, name, PolicySpec.model_validate(base))


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class World:
    kube: FakeKube
    github: FakeGitHub
    clock: Clock
    runtime: Runtime
    connected: list[tuple[str, str, str]] = field(default_factory=list)

    def canary(self, canary_log: str, *, stable_log: str = "stable", restarts: int = 0, **rollout: Any) -> None:
        """The Rollout paused at its indefinite step, two pods per side, the canary logging ``canary_log``."""
        self.kube.put_rollout(rollout_obj(**rollout))
        for pod_hash, text in ((CANARY, log(canary_log)), (STABLE, log(stable_log))):
            self.kube.replicasets[(NS, f"{ROLLOUT}-{pod_hash}")] = {
                "metadata": {
                    "name": f"{ROLLOUT}-{pod_hash}",
                    "creationTimestamp": "2026-11-20T13:58:00Z",
                    "annotations": {"rollout.argoproj.io/revision": "2" if pod_hash == CANARY else "1"},
                },
                "spec": {"template": {"spec": {"containers": [{"name": "app", "image": f"shop/web:{pod_hash}"}]}}},
            }
            for i in range(2):
                name = f"{ROLLOUT}-{pod_hash}-{i}"
                self.kube.pods.setdefault(NS, []).append(
                    pod(name, pod_hash, restarts=restarts if pod_hash == CANARY else 0)
                )
                self.kube.logs[(NS, name, "app", False)] = text

    def update_rollout(self, change: Callable[[dict[str, Any]], None]) -> None:
        obj = copy.deepcopy(self.kube.rollouts[(NS, ROLLOUT)])
        change(obj)
        self.kube.put_rollout(obj)

    def reasons(self) -> list[str]:
        return [e.reason for e in self.kube.posted]

    def restart(self) -> Runtime:
        """The operator restarts: what it kept in memory is gone, the cluster and GitHub are as they were."""
        self.runtime = Runtime(api_client=None, kube=self.kube, clock=self.clock, github=self.runtime.github)
        return self.runtime


def make_world() -> World:
    """A fresh FakeKube and FakeGitHub, a hand-moved clock, and the runtime built on them."""
    kube, github, clock = FakeKube(), FakeGitHub(), Clock()
    connected: list[tuple[str, str, str]] = []

    def connect(api_url: str, token: str, repository: str) -> FakeGitHub:
        connected.append((api_url, token, repository))
        return github

    runtime = Runtime(api_client=None, kube=kube, clock=clock, github=connect)
    return World(kube, github, clock, runtime, connected)
