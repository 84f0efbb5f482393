"""Every test in this folder runs against the real apiserver; fixtures for the operator's stand-ins."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from selfheal.testing.argosim import ArgoSimulator
from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.kubelet import TestKubelet
from selfheal.testing.llm_server import OpenAIStandIn


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def llm() -> Iterator[OpenAIStandIn]:
    """An OpenAI-compatible stand-in answering healthy until scripted otherwise."""
    with OpenAIStandIn() as server:
        yield server


@pytest.fixture
def start_argo(
    control_plane: ControlPlane, kubelet: TestKubelet, namespace: str
) -> Iterator[Callable[..., ArgoSimulator]]:
    """Starts the simulated controller on the test's namespace with options of the test's choosing
    (traffic, informer lag); it is stopped after the test and must have met no error."""
    started: list[ArgoSimulator] = []

    def start(**options: Any) -> ArgoSimulator:
        sim = ArgoSimulator(control_plane, kubelet, namespaces=[namespace], **options).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.close()
    assert not [e for sim in started for e in sim.errors if not isinstance(e, TimeoutError)]
