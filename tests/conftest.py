"""Shared fixtures: the real control plane, the test kubelet and a fresh namespace per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.kubelet import TestKubelet
from selfheal.testing.operator import OperatorProcess


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """etcd + kube-apiserver with our CRDs and the reduced Argo Rollouts CRDs installed.

    There is no skip: without KUBEBUILDER_ASSETS the fixture errors and says where it looked.
    """
    with ControlPlane() as cp:
        yield cp


@pytest.fixture(scope="session")
def kubelet(control_plane: ControlPlane) -> Iterator[TestKubelet]:
    with TestKubelet.for_control_plane(control_plane) as kl:
        kl.register_node(control_plane)
        yield kl


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    control_plane.ensure_namespace(name)
    yield name
    assert control_plane.admin is not None
    control_plane.admin.delete(f"/api/v1/namespaces/{name}")


@pytest.fixture(scope="session")
def operator(control_plane: ControlPlane, kubelet: TestKubelet) -> Iterator[OperatorProcess]:
    """The real operator (`selfheal run --all-namespaces`) in a subprocess, with exactly the chart's RBAC."""
    with OperatorProcess.with_chart_rbac(control_plane) as proc:
        yield proc
    print(f"operator output kept in {proc.log_path}")
