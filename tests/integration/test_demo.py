"""`selfheal demo` end to end, as a newcomer runs it: a subprocess printing one JSON summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from selfheal.testing.assets import package_root


def demo(*args: str, env: dict[str, str] | None = None, timeout: float = 150) -> tuple[int, str, str]:
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
    # The GitHub part is reported either way: an issue, or a plain note that there is none yet.
    assert summary["issue"] or summary["issue_note"].startswith("no GitHub issue yet")
    if summary["issue"]:
        assert "selfheal" in summary["issue"]["labels"]
    assert summary["timeline"] and all(isinstance(step["t"], float | int) for step in summary["timeline"])


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
