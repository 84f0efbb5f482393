"""The operator starts for real: policies get a Ready condition that says what is wrong."""

from __future__ import annotations

import subprocess

from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.operator import OperatorProcess

POLICIES = "/apis/selfheal.dev/v1alpha1/namespaces/{ns}/selfhealingpolicies"


def policy(name: str, spec: dict) -> dict:
    return {
        "apiVersion": "selfheal.dev/v1alpha1",
        "kind": "SelfHealingPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def ready_condition(cp: ControlPlane, ns: str, name: str) -> dict | None:
    obj = cp.admin.get(f"{POLICIES.format(ns=ns)}/{name}")
    for cond in obj.get("status", {}).get("conditions", []):
        if cond["type"] == "Ready":
            return {
                **cond,
                "observedGeneration": obj["status"].get("observedGeneration"),
                "generation": obj["metadata"]["generation"],
            }
    return None


def test_valid_policy_becomes_ready(control_plane: ControlPlane, operator: OperatorProcess, namespace: str) -> None:
    control_plane.admin.create(
        POLICIES.format(ns=namespace), policy("minimal", {"selector": {"matchLabels": {"app": "web"}}})
    )
    cond = control_plane.admin.wait_for(
        lambda: ready_condition(control_plane, namespace, "minimal"), timeout=30, message="Ready condition"
    )
    assert cond["status"] == "True"
    assert cond["observedGeneration"] == cond["generation"]

    out = subprocess.run(
        ["kubectl", "--kubeconfig", control_plane.kubeconfig, "-n", namespace, "get", "shp"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    header, row = out.splitlines()[:2]
    assert header.split()[:4] == ["NAME", "READY", "REASON", "ROLLOUTS"]
    assert row.split()[:4] == ["minimal", "True", "Valid", "0"]


def test_missing_secret_is_named_then_healed(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    spec = {
        "analysis": {
            "llm": {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "baseURL": "http://127.0.0.1:9/v1",
                "apiKeySecretRef": {"name": "llm-credentials", "key": "api-key"},
            }
        },
        "remediation": {"github": {"repository": "acme/shop", "tokenSecretRef": {"name": "gh", "key": "token"}}},
    }
    control_plane.admin.create(POLICIES.format(ns=namespace), policy("needs-secrets", spec))
    cond = control_plane.admin.wait_for(
        lambda: ready_condition(control_plane, namespace, "needs-secrets"), timeout=30, message="Ready condition"
    )
    assert cond["status"] == "False"
    assert "llm-credentials" in cond["message"] and "api-key" in cond["message"]
    assert "gh" in cond["message"] and "token" in cond["message"]

    # The Secrets appear (the LLM one first without the right key): the message follows, then Ready.
    control_plane.admin.create(
        f"/api/v1/namespaces/{namespace}/secrets",
        {"metadata": {"name": "llm-credentials"}, "stringData": {"wrong": "x"}},
    )
    control_plane.admin.create(
        f"/api/v1/namespaces/{namespace}/secrets", {"metadata": {"name": "gh"}, "stringData": {"token": "t"}}
    )
    cond = control_plane.admin.wait_for(
        lambda: (c := ready_condition(control_plane, namespace, "needs-secrets")) and "gh" not in c["message"] and c,
        timeout=40,
        message="message without the GitHub Secret",
    )
    assert cond["status"] == "False" and "api-key" in cond["message"]
    control_plane.admin.patch(
        f"/api/v1/namespaces/{namespace}/secrets/llm-credentials", {"stringData": {"api-key": "sk-test"}}
    )
    control_plane.admin.wait_for(
        lambda: (ready_condition(control_plane, namespace, "needs-secrets") or {}).get("status") == "True",
        timeout=40,
        message="Ready=True once the Secrets exist",
    )


def test_two_policies_on_one_rollout_show_the_conflict_and_the_winner(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    control_plane.admin.create(
        f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/rollouts",
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "demo:blue"}]},
                },
                "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
            },
        },
    )
    for name, labels in (("b-by-tier", {"tier": "front"}), ("a-by-app", {"app": "web"})):
        control_plane.admin.create(POLICIES.format(ns=namespace), policy(name, {"selector": {"matchLabels": labels}}))

    def conflicts(name: str) -> list:
        status = control_plane.admin.get(f"{POLICIES.format(ns=namespace)}/{name}").get("status") or {}
        return status.get("conflicts") or []

    for name in ("a-by-app", "b-by-tier"):
        found = control_plane.admin.wait_for(lambda n=name: conflicts(n), timeout=30, message=f"conflict on {name}")
        assert found == [{"rollout": "web", "policies": ["a-by-app", "b-by-tier"], "chosen": "a-by-app"}]
    status = control_plane.admin.get(f"{POLICIES.format(ns=namespace)}/b-by-tier")["status"]
    assert status["matchedRollouts"] == ["web"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert "selected by a-by-app, b-by-tier (using a-by-app)" in ready["message"]


def test_github_token_and_repository_are_checked_and_named(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    from selfheal.testing.github_server import GitHubStandIn

    with GitHubStandIn(token="good-token", repos=["acme/shop"]) as gh:
        control_plane.admin.create(
            f"/api/v1/namespaces/{namespace}/secrets",
            {"metadata": {"name": "gh"}, "stringData": {"token": "stale-token"}},
        )
        github = {"repository": "acme/shop", "apiURL": gh.api_url, "tokenSecretRef": {"name": "gh"}}
        control_plane.admin.create(POLICIES.format(ns=namespace), policy("shop", {"remediation": {"github": github}}))
        control_plane.admin.create(
            POLICIES.format(ns=namespace),
            policy("elsewhere", {"remediation": {"github": {**github, "repository": "acme/unknown"}}}),
        )

        def reason(name: str) -> str | None:
            return (ready_condition(control_plane, namespace, name) or {}).get("reason")

        control_plane.admin.wait_for(lambda: reason("shop") == "BadCredentials", timeout=30, message="BadCredentials")
        assert "acme/shop" in ready_condition(control_plane, namespace, "shop")["message"]

        # A new token is tried at once: the bad one stays named on the other policy's repository.
        control_plane.admin.patch(f"/api/v1/namespaces/{namespace}/secrets/gh", {"stringData": {"token": "good-token"}})
        control_plane.admin.wait_for(lambda: reason("shop") == "Valid", timeout=30, message="Ready again")
        control_plane.admin.wait_for(
            lambda: reason("elsewhere") == "RepositoryNotFound", timeout=30, message="RepositoryNotFound"
        )
        assert "acme/unknown" in ready_condition(control_plane, namespace, "elsewhere")["message"]
