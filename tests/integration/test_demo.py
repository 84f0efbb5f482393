"""`selfheal demo` end to end, as a newcomer runs it: a subprocess printing one JSON summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from selfheal.testing.assets import package_root


def demo(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> tuple[int, str, str]:
    python_path = os.pathsep.join(p for p in (str(package_root()), os.environ.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "selfheal.cli", "demo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": python_path, **(env or {})},
    )
    return proc.returncode, proc.stdout, proc.stderr


def summary_of(code: int, out: str, err: str) -> dict:
    try:
        return json.loads(out)
    except json.JSONDecodeError:
        pytest.fail(f"exit {code}, no JSON summary on stdout:\n{out[-3000:]}\n--- stderr ---\n{err[-3000:]}")


def test_panic_canary_is_aborted_and_ticketed() -> None:
    code, out, err = demo("--scenario", "panic", "--json")
    summary = summary_of(code, out, err)
    assert code == 0, (summary, err[-3000:])
    assert summary["ok"] is True and summary["scenario"] == "panic"
    assert summary["rollout"]["aborted"] is True and summary["rollout"]["phase"] == "Degraded"
    assert summary["rollout"]["promoted"] is False
    ticket = summary["ticket"]
    assert ticket and ticket["name"].startswith("canary-demo-") and ticket["fingerprint"]
    assert ticket["occurrences"] >= 1
    assert "CanaryUnhealthy" in [e["reason"] for e in summary["events"]]
    assert any("index out of range" in e["message"] for e in summary["events"])
    assert "selfheal" in summary["issue"]["labels"] and summary["issue"]["assignees"] == ["Copilot"]
    assert summary["timeline"] and all(isinstance(step["t"], float | int) for step in summary["timeline"])
    assert_the_fix_was_verified(summary)


def assert_the_fix_was_verified(summary: dict) -> None:
    """The rest of the story: the agent's pull request references the issue, is merged, and the fixed image
    rolls out; the ticket passes through each phase to Resolved, and the issue is closed."""
    [pull] = summary["pulls"]
    issue = summary["issue"]
    assert pull["author"] == "Copilot" and pull["merged"] and f"Fixes #{issue['number']}" in pull["body"]
    fix = summary["fix"]
    assert fix["resolved"] is True and fix["pull"] == pull["number"] and fix["image"].endswith(":green")
    assert fix["fixedPodHash"] not in (summary["rollout"]["canaryPodHash"], summary["rollout"]["previousStableRS"])
    assert fix["issueState"] == "closed" and summary["ticket"]["phase"] == "Resolved"
    said = [step["text"] for step in summary["timeline"]]
    order = ["opened draft pull request", "merges pull request", "the merged fix is built", "phase Resolved"]
    at = [next(i for i, text in enumerate(said) if part in text) for part in order]
    assert at == sorted(at), said
    phases = [e["reason"].removeprefix("Ticket") for e in summary["events"] if e["reason"].startswith("Ticket")]
    assert phases == [
        "IssueOpened",
        "FixProposed",
        "FixMerged",
        "Verifying",
        "Resolved",
    ]
    # each change of the ticket is shown as `kubectl get rtk` shows it
    views = [step["rtk"] for step in summary["timeline"] if step["kind"] == "ticket"]
    assert views[-1][0] == "$ kubectl get rtk" and views[-1][1].split() == [
        "NAME",
        "ROLLOUT",
        "REVISION",
        "PHASE",
        "ISSUE",
        "PR",
    ]
    assert views[-1][2].split()[3:] == ["Resolved", str(issue["number"]), str(pull["number"])]


def test_argo_aborts_on_selfheals_verdict_in_its_own_analysis() -> None:
    code, out, err = demo("--scenario", "inline", "--json")
    summary = summary_of(code, out, err)
    assert code == 0, (summary, err[-3000:])
    assert summary["ok"] is True and summary["scenario"] == "inline"
    rollout = summary["rollout"]
    assert rollout["aborted"] and rollout["abortedByArgoAnalysis"], rollout
    assert 'Step-based analysis phase error/failed: Metric "selfheal" assessed Failed' in rollout["message"]
    inline = [e for e in summary["events"] if "asked through its web metric" in e["message"]]
    assert any(
        e["reason"] == "CanaryUnhealthy" and "answered Argo's web metric unhealthy" in e["message"] for e in inline
    )
    assert summary["ticket"]["occurrences"] == 1
    assert_the_fix_was_verified(summary)


def test_random_colours_are_promoted_without_a_ticket() -> None:
    code, out, err = demo("--scenario", "colors", "--json")
    summary = summary_of(code, out, err)
    assert code == 0, (summary, err[-3000:])
    assert summary["ok"] is True and summary["scenario"] == "colors"
    rollout = summary["rollout"]
    assert rollout["promoted"] is True and rollout["aborted"] is False and rollout["phase"] == "Healthy"
    assert rollout["stableRS"] == rollout["canaryPodHash"] != rollout["previousStableRS"]
    assert summary["ticket"] is None and summary["tickets"] == [] and summary["issue"] is None
    assert "CanaryHealthy" in [e["reason"] for e in summary["events"]]


def test_missing_control_plane_binaries_are_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from selfheal.cli import main
    from selfheal.testing import controlplane

    def missing() -> Path:
        raise controlplane.ControlPlaneUnavailable("kube-apiserver and etcd not found: set KUBEBUILDER_ASSETS")

    monkeypatch.setattr(controlplane, "find_assets", missing)
    assert main(["demo", "--scenario", "http500"]) == 3
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "KUBEBUILDER_ASSETS" in err
