"""Run the real operator (`selfheal run`) as a separate process against a test control plane."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from selfheal.testing.assets import chart_dir, package_root
from selfheal.testing.controlplane import ControlPlane, find_assets, free_port


def helm_binary() -> str:
    found = shutil.which("helm")
    if found:
        return found
    candidate = find_assets() / "helm"
    if candidate.exists():
        return str(candidate)
    raise FileNotFoundError("helm not found on PATH nor in KUBEBUILDER_ASSETS")


def render_chart(*values: str, namespace: str = "selfheal-system", release: str = "selfheal") -> list[dict[str, Any]]:
    """The chart's manifests as `helm template` renders them (``values`` are ``--set`` strings)."""
    args = [helm_binary(), "template", release, str(chart_dir()), "--namespace", namespace]
    for value in values:
        args += ["--set", value]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def chart_cluster_rules() -> list[dict[str, Any]]:
    """The rules of the chart's ClusterRoles, the operator's and its Secret reading: what the operator is
    allowed to do where it governs."""
    roles = [
        d for d in render_chart() if d["kind"] == "ClusterRole" and not d["metadata"]["name"].endswith("-discovery")
    ]
    return [rule for role in roles for rule in role["rules"]]


class OperatorProcess:
    """``selfheal run`` in a subprocess, as the identity of ``kubeconfig``; output kept in a file.

    With ``verdicts`` it also serves the verdict endpoint (``--verdict-port``) on a free port, at
    :attr:`verdict_url`; with ``verdict_token`` only to bearers of that token."""

    def __init__(
        self,
        kubeconfig: str,
        *,
        namespaces: Sequence[str] = (),
        env: dict[str, str] | None = None,
        extra_args: Sequence[str] = (),
        verdicts: bool = False,
        verdict_token: str = "",
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespaces = list(namespaces)
        self.env = env or {}
        self.extra_args = list(extra_args)
        self.verdict_port = free_port() if verdicts else 0
        if self.verdict_port:
            self.extra_args.append(f"--verdict-port={self.verdict_port}")
            if verdict_token:
                self.env = {**self.env, "SELFHEAL_VERDICT_TOKEN": verdict_token}
        self.log_path = Path(tempfile.mkstemp(prefix="selfheal-operator-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def with_chart_rbac(cls, cp: ControlPlane, **kwargs: Any) -> OperatorProcess:
        """The operator authenticated as a ServiceAccount bound to exactly the chart's ClusterRole."""
        kubeconfig = cp.service_account("selfheal-system", "selfheal", cluster_rules=chart_cluster_rules())
        return cls(kubeconfig, **kwargs)

    def start(self) -> OperatorProcess:
        scope = [f"--namespace={ns}" for ns in self.namespaces] or ["--all-namespaces"]
        # One replica runs standalone; replicas that elect a leader say so in ``extra_args``.
        mode = [] if "--leader-election" in self.extra_args else ["--standalone"]
        # The operator runs the very copy of selfheal the caller imported (installed or a checkout's).
        python_path = os.pathsep.join(p for p in (str(package_root()), os.environ.get("PYTHONPATH", "")) if p)
        env = {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": python_path,
            **self.env,
        }
        env.pop("KUBERNETES_SERVICE_HOST", None)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "selfheal.cli",
                    "run",
                    *mode,
                    "--log-level=debug",
                    *scope,
                    *self.extra_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        if self.verdict_port:
            self.wait_for_output("serving verdicts on", timeout=60)
        return self

    @property
    def verdict_url(self) -> str:
        """Where the verdict endpoint answers, as an AnalysisTemplate's web metric names it."""
        if not self.verdict_port:
            raise RuntimeError("this operator serves no verdicts (OperatorProcess(verdicts=True))")
        return f"http://127.0.0.1:{self.verdict_port}/api/v1/verdict"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"operator exited with {self.proc.returncode}:\n{self.output()[-4000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"operator did not print {text!r} within {timeout}s:\n{self.output()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL: no clean-up handlers, as when a pod is OOM-killed or a node dies."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
