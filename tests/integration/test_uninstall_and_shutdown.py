"""Uninstalling leaves nothing stuck, and the operator stops within the pod's grace period with a clean log.

The test runs its own control plane: it deletes the CRDs, which the session's other tests need.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from selfheal.testing.assets import chart_dir
from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.operator import OperatorProcess, helm_binary, render_chart

FAST = {"SELFHEAL_POLICY_TICK_SECONDS": "1", "SELFHEAL_TICKET_POLL_SECONDS": "1"}
GROUP = "/apis/selfheal.dev/v1alpha1"
POLICIES = GROUP + "/namespaces/{ns}/selfhealingpolicies"
TICKETS = GROUP + "/namespaces/{ns}/remediationtickets"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
LEGACY_FINALIZER = "selfheal.dev/finalizer"
# What must never appear in the operator's log on a clean stop.
UNCLEAN = re.compile(r"Traceback|AssertionError|did not exit in time|orphaned|\bERROR\b|\[ERROR", re.IGNORECASE)


@pytest.fixture
def own_control_plane() -> Iterator[ControlPlane]:
    with ControlPlane() as cp:
        yield cp


def helm(cp: ControlPlane, home: Path, *args: str) -> None:
    env = {**os.environ, **{f"HELM_{k}_HOME": str(home / k.lower()) for k in ("CACHE", "CONFIG", "DATA")}}
    result = subprocess.run(
        [helm_binary(), *args, "--kubeconfig", cp.kubeconfig], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def policy(name: str, finalizers: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "selfheal.dev/v1alpha1",
        "kind": "SelfHealingPolicy",
        "metadata": {"name": name, "finalizers": finalizers},
        "spec": {"selector": {"matchLabels": {"app": name}}, "analysis": {"llm": {"provider": "none"}}},
    }


def ticket(name: str, finalizers: list[str], phase: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "selfheal.dev/v1alpha1",
        "kind": "RemediationTicket",
        "metadata": {"name": name, "finalizers": finalizers},
        "spec": {
            "rollout": "web",
            "policy": "fresh",
            "podTemplateHash": "abc123",
            "fingerprint": "0123abcd",
            "verdict": {"verdict": "unhealthy", "confidence": 90, "analyzer": "statistical", "summary": "panics"},
        },
    }
    return obj


def finalizers(cp: ControlPlane, path: str) -> list[str]:
    return list((cp.admin.get(path).get("metadata") or {}).get("finalizers") or [])


def test_helm_uninstall_then_deleting_everything_hangs_on_nothing(
    own_control_plane: ControlPlane, tmp_path: Path
) -> None:
    cp = own_control_plane
    assert cp.admin is not None
    ns, release = f"apps-{uuid.uuid4().hex[:6]}", "selfheal"
    chart = {d["kind"]: d for d in render_chart(namespace="selfheal-system", release=release)}
    grace = int(chart["Deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"])
    identity = chart["ServiceAccount"]["metadata"]["name"]
    helm(cp, tmp_path, "install", release, str(chart_dir()), "--namespace", "selfheal-system", "--create-namespace")
    cp.ensure_namespace(ns)
    # Objects of this version, and objects an earlier version left with Kopf's finalizer on them.
    cp.admin.create(POLICIES.format(ns=ns), policy("fresh", []))
    cp.admin.create(POLICIES.format(ns=ns), policy("legacy", [LEGACY_FINALIZER]))
    cp.admin.create(TICKETS.format(ns=ns), ticket("web-abc123", []))
    cp.admin.create(TICKETS.format(ns=ns), ticket("web-old999", [LEGACY_FINALIZER]))

    # The operator as the release's own ServiceAccount, with the release's ClusterRole.
    kubeconfig = cp.service_account("selfheal-system", identity, cluster_role=identity)
    operator = OperatorProcess(kubeconfig, namespaces=[ns], env=FAST).start()
    try:
        paths = [f"{POLICIES.format(ns=ns)}/{n}" for n in ("fresh", "legacy")]
        paths += [f"{TICKETS.format(ns=ns)}/{n}" for n in ("web-abc123", "web-old999")]
        # The operator works on them: policy statuses written, the legacy finalizers taken off.
        cp.admin.wait_for(
            lambda: all((cp.admin.get(p).get("status") or {}).get("conditions") for p in paths[:2]),
            timeout=60,
            message="policy statuses",
        )
        cp.admin.wait_for(
            lambda: not any(finalizers(cp, p) for p in paths), timeout=60, message="legacy finalizers removed"
        )
        time.sleep(3)  # several policy ticks and ticket reconciles later, still no finalizer anywhere
        assert {p: finalizers(cp, p) for p in paths} == {p: [] for p in paths}

        # SIGTERM, as the kubelet sends at `helm uninstall`: out well within the grace period, a clean log.
        started = time.monotonic()
        code = operator.stop(timeout=grace + 5)
        took = time.monotonic() - started
        assert code == 0, operator.output()[-3000:]
        assert took < grace, f"stopped in {took:.1f}s, the pod has {grace}s"
        log = operator.output()
        assert not UNCLEAN.findall(log), "\n".join(line for line in log.splitlines() if UNCLEAN.search(line))
    finally:
        operator.kill()

    helm(cp, tmp_path, "uninstall", release, "--namespace", "selfheal-system")
    # No operator any more: every object, its namespace's content and the CRDs go without help.
    for path in paths:
        cp.admin.delete(path)
    cp.admin.wait_for(lambda: not any(cp.admin.get_or_none(p) for p in paths), timeout=20, message="objects gone")
    for plural in ("selfhealingpolicies", "remediationtickets"):
        cp.admin.delete(f"{CRDS}/{plural}.selfheal.dev")
    cp.admin.wait_for(
        lambda: (
            not any(
                cp.admin.get_or_none(f"{CRDS}/{p}.selfheal.dev") for p in ("selfhealingpolicies", "remediationtickets")
            )
        ),
        timeout=30,
        message="CRDs gone",
    )


def test_crds_go_even_with_objects_left_in_them(own_control_plane: ControlPlane) -> None:
    """The CRDs deleted first, objects still in them: the apiserver deletes the objects, nothing holds them."""
    cp = own_control_plane
    assert cp.admin is not None
    ns = f"apps-{uuid.uuid4().hex[:6]}"
    cp.ensure_namespace(ns)
    operator = OperatorProcess(cp.kubeconfig, namespaces=[ns], env=FAST).start()
    try:
        cp.admin.create(POLICIES.format(ns=ns), policy("fresh", []))
        cp.admin.create(TICKETS.format(ns=ns), ticket("web-abc123", []))
        cp.admin.wait_for(
            lambda: (cp.admin.get(f"{POLICIES.format(ns=ns)}/fresh").get("status") or {}).get("conditions"),
            timeout=60,
            message="policy status",
        )
        assert operator.stop(timeout=30) == 0
    finally:
        operator.kill()
    for plural in ("selfhealingpolicies", "remediationtickets"):
        cp.admin.delete(f"{CRDS}/{plural}.selfheal.dev")
    cp.admin.wait_for(
        lambda: (
            not any(
                cp.admin.get_or_none(f"{CRDS}/{p}.selfheal.dev") for p in ("selfhealingpolicies", "remediationtickets")
            )
        ),
        timeout=30,
        message="CRDs gone",
    )
