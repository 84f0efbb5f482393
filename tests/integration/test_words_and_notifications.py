"""What a platform team reads on its first failing canary: the operator's log, `kubectl get` columns, Events on
the ticket and the policy, and the notifications its webhook and Slack receive, once per phase, restarts or not."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from selfheal.testing import scenarios as argo_cli
from selfheal.testing.argosim import ArgoSimulator
from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.github_server import GitHubStandIn
from selfheal.testing.notify_server import SlackReceiver, WebhookReceiver
from selfheal.testing.operator import OperatorProcess, chart_cluster_rules
from tests.conftest import FAST_OPERATOR

APP = "canary-demo"
REPO = "acme/rollouts-demo"
TICKETS = "/apis/selfheal.dev/v1alpha1/namespaces/{ns}/remediationtickets"
POLICIES = "/apis/selfheal.dev/v1alpha1/namespaces/{ns}/selfhealingpolicies"
SIGNING_KEY = "whsec-5e1fhea1"


@pytest.fixture(scope="module")
def kubeconfig(request: pytest.FixtureRequest, control_plane: ControlPlane) -> Iterator[str]:
    """The chart's identity; the shared operator is paused meanwhile so the one started here is alone."""
    shared: OperatorProcess = request.getfixturevalue("operator")
    shared.stop()
    try:
        yield control_plane.service_account("selfheal-system", "selfheal", cluster_rules=chart_cluster_rules())
    finally:
        shared.start()


def columns(cp: ControlPlane, ns: str, *args: str) -> dict[str, str]:
    """The one row of `kubectl get`, by column name: each cell spans from its header to the next one."""
    out = subprocess.run(
        ["kubectl", "--kubeconfig", cp.kubeconfig, "-n", ns, "get", *args], capture_output=True, text=True, check=True
    ).stdout
    header, row = out.splitlines()[:2]
    starts = [(m.start(), m.group(0)) for m in re.finditer(r"\S+(?: \S+)*", header)]
    ends = [start for start, _ in starts[1:]] + [None]
    return {name: row[start:end].strip() for (start, name), end in zip(starts, ends, strict=True)}


def ticket(cp: ControlPlane, ns: str) -> dict[str, Any]:
    items = cp.admin.items(TICKETS.format(ns=ns))
    assert len(items) <= 1
    return items[0] if items else {}


def log_records(proc: OperatorProcess) -> list[dict[str, Any]]:
    records = []
    for line in proc.output().splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
    return records


def test_a_failing_canary_told_in_sentences_and_announced_once_per_phase(
    control_plane: ControlPlane, kubeconfig: str, argo: ArgoSimulator, namespace: str
) -> None:
    cp, ns = control_plane, namespace
    with (
        GitHubStandIn(token="gh-token", repos=[REPO]) as gh,
        WebhookReceiver(signing_key=SIGNING_KEY) as hook,
        SlackReceiver() as slack,
    ):
        cp.admin.create(
            f"/api/v1/namespaces/{ns}/secrets",
            {
                "metadata": {"name": "selfheal"},
                "stringData": {"token": "gh-token", "hook": hook.url, "signing": SIGNING_KEY, "slack": slack.url},
            },
        )
        cp.admin.create(
            POLICIES.format(ns=ns),
            {
                "apiVersion": "selfheal.dev/v1alpha1",
                "kind": "SelfHealingPolicy",
                "metadata": {"name": "heal"},
                "spec": {
                    "selector": {"matchLabels": {"app": APP}},
                    "remediation": {
                        "github": {
                            "repository": REPO,
                            "apiURL": gh.api_url,
                            "tokenSecretRef": {"name": "selfheal"},
                            "agent": {"type": "copilot"},
                        }
                    },
                    "notifications": {
                        "webhook": {
                            "urlSecretRef": {"name": "selfheal", "key": "hook"},
                            "signingSecretRef": {"name": "selfheal", "key": "signing"},
                        },
                        "slack": {"webhookURLSecretRef": {"name": "selfheal", "key": "slack"}},
                    },
                },
            },
        )
        operator = OperatorProcess(
            kubeconfig, namespaces=[ns], env=FAST_OPERATOR, extra_args=["--log-level=info", "--log-format=json"]
        )
        with operator:
            argo_cli.create(cp.admin, ns, argo_cli.analysis_template("panic-rate", "panic-rate", "result < 0.01"))
            steps = [{"setWeight": 40}, {"pause": {"duration": "3s"}}, {"pause": {"duration": "60s"}}]
            argo_cli.create(
                cp.admin,
                ns,
                argo_cli.demo_rollout(APP, "blue", steps=steps, background_analysis="panic-rate", starting_step=2),
            )
            argo_cli.wait_phase(cp.admin, ns, APP, "Healthy", timeout=30)
            argo_cli.set_image(cp.admin, ns, APP, "argoproj/rollouts-demo:panic")
            cp.admin.wait_for(
                lambda: [d.payload["phase"] for d in hook.taken()][-1:] == ["IssueOpened"],
                timeout=90,
                message="IssueOpened announced to the webhook",
            )

            # `kubectl get shp` says why it is ready and what it governs; -o wide says it in a sentence.
            shp = columns(cp, ns, "shp", "-o", "wide")
            assert (shp["READY"], shp["REASON"], shp["ROLLOUTS"]) == ("True", "Valid", "1")
            assert shp["MESSAGE"].startswith("policy is valid")
            # `kubectl get rtk -o wide`: the verdict, what failed, the action, the fingerprint, the count.
            rtk = columns(cp, ns, "rtk", "-o", "wide")
            spec = ticket(cp, ns)["spec"]
            assert rtk["VERDICT"] == "unhealthy" and rtk["LAST ACTION"] in ("abort", "already aborted")
            assert rtk["SEEN"] == "1"
            assert rtk["FINGERPRINT"] == spec["fingerprint"][:12]
            # What failed: the panic as its log line says it, or the failed metric when the logs were gone.
            assert "index out of range" in rtk["REASON"] or rtk["REASON"] == "metric panic-rate failed"
            assert "<" not in rtk["REASON"] and rtk["REASON"] == spec["headline"][: len(rtk["REASON"])]

            # Events on the ticket and the policy themselves.
            name = ticket(cp, ns)["metadata"]["name"]
            on_ticket = {e["reason"]: e["message"] for e in argo_cli.events(cp.admin, ns, name=name)}
            assert on_ticket["TicketIssueOpened"].startswith(f"Ticket {name} for Rollout {APP} has a GitHub issue")
            assert any(e["reason"] == "PolicyReady" for e in argo_cli.events(cp.admin, ns, name="heal"))
            # The ticket keeps only what the issue shows: no whole stack traces, no spec in Kopf's annotation.
            for template in spec["evidence"]["templates"]:
                assert all(len(example) <= 400 for example in template["examples"])
            annotations = ticket(cp, ns)["metadata"].get("annotations") or {}
            assert not any("evidence" in value for value in annotations.values())

            # The operator's own log: one line per decision, its facts as keys; Kopf's success lines quiet.
            records = log_records(operator)
            decided = [r for r in records if r.get("rollout") == APP and r.get("verdict")]
            assert decided and decided[0]["verdict"] == "unhealthy"
            assert decided[0]["action"] in ("abort", "skipped: already aborted")
            assert decided[0]["revision"] == "2" and decided[0]["trigger"] and decided[0]["confidence"] >= 70
            assert not any("succeeded." in str(r.get("message")) for r in records)
            told = operator.output()
            assert hook.token not in told and slack.token not in told and SIGNING_KEY not in told

        # A restart announces nothing again; the next phase is announced once.
        with OperatorProcess(
            kubeconfig, namespaces=[ns], env=FAST_OPERATOR, extra_args=["--log-level=info", "--log-format=json"]
        ):
            [issue] = gh.issues(REPO)
            pr = gh.open_pull(REPO, "Fix the index out of range", f"Fixes #{issue['number']}")
            cp.admin.wait_for(
                lambda: [d.payload["phase"] for d in hook.taken()][-1:] == ["FixProposed"],
                timeout=60,
                message="FixProposed announced",
            )
            # What was delivered is recorded on the ticket once both channels answered.
            record = cp.admin.wait_for(
                lambda: (n := (ticket(cp, ns).get("status") or {}).get("notification") or {}).get("delivered") and n,
                timeout=30,
                message="the delivery recorded",
            )
            assert record["phase"] == "FixProposed" and record["delivered"] == ["webhook", "slack"]
        phases = [d.payload["phase"] for d in hook.taken()]
        assert phases.count("IssueOpened") == 1 and phases.count("FixProposed") == 1, phases
        assert all(d.signed for d in hook.taken())
        assert [json.loads(d.body)["text"] for d in slack.taken()][-1].startswith(f"Ticket {name}")
        assert f"#{pr}" in json.dumps(slack.taken()[-1].payload)
