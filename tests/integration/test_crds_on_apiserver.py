"""Our CRDs on the real apiserver: examples accepted, bad policies refused with the field named."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.rest import ApiError
from tests.policy_cases import BAD_POLICIES

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
POLICIES = "/apis/selfheal.dev/v1alpha1/namespaces/{ns}/selfhealingpolicies"


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_is_accepted_by_the_apiserver(control_plane: ControlPlane, namespace: str, path: Path) -> None:
    for doc in documents(path):
        doc = copy.deepcopy(doc)
        doc["metadata"]["namespace"] = namespace
        created = control_plane.apply_object(doc)
        assert created["metadata"]["name"] == doc["metadata"]["name"]
        if doc["kind"] == "SelfHealingPolicy":
            # defaults from the schema are applied by the apiserver
            assert created["spec"]["decision"]["confidenceThreshold"] >= 0


@pytest.mark.parametrize("case", BAD_POLICIES, ids=lambda c: c[0])
def test_bad_policies_are_refused_naming_the_field(control_plane: ControlPlane, namespace: str, case) -> None:
    spec, field = case[1], case[2]
    body = {
        "apiVersion": "selfheal.dev/v1alpha1",
        "kind": "SelfHealingPolicy",
        "metadata": {"name": "bad"},
        "spec": spec,
    }
    with pytest.raises(ApiError) as err:
        control_plane.admin.create(POLICIES.format(ns=namespace), body)
    assert err.value.status in (400, 422), err.value
    assert field in str(err.value.body), err.value.body


def test_kubectl_apply_refuses_confidence_150_with_a_clear_message(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "selfheal.dev/v1alpha1",
                "kind": "SelfHealingPolicy",
                "metadata": {"name": "too-sure"},
                "spec": {"decision": {"confidenceThreshold": 150}},
            }
        )
    )
    result = subprocess.run(
        ["kubectl", "--kubeconfig", control_plane.kubeconfig, "-n", namespace, "apply", "-f", str(manifest)],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "spec.decision.confidenceThreshold" in result.stderr
    assert "100" in result.stderr


def test_chart_ships_the_same_crds() -> None:
    for crd in (ROOT / "crds").glob("*.yaml"):
        assert (ROOT / "charts/selfheal/crds" / crd.name).read_text() == crd.read_text(), crd.name
