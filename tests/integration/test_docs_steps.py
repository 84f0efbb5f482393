"""The steps the READMEs give, run as written against the real apiserver, in namespaces nobody used before.

Each ```sh block of README.md and charts/selfheal/README.md is a runnable step: every line is a `helm` or
`kubectl` command, run in order from the repository root with only the cluster, the release name and the
namespaces swapped for fresh ones. Alternatives and commands that need a real cluster (a running pod) are
written as plain indented blocks and are not run here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.operator import OperatorProcess, helm_binary

ROOT = Path(__file__).resolve().parents[2]
READMES = [ROOT / "README.md", ROOT / "charts" / "selfheal" / "README.md"]
POLICIES = "/apis/selfheal.dev/v1alpha1/namespaces/{ns}/selfhealingpolicies"
# Placeholders for what a reader has: their keys and tokens.
READER_ENV = {"OPENAI_API_KEY": "sk-reader-0123456789", "GITHUB_TOKEN": "ghp_reader0123456789"}


def sh_blocks(readme: Path) -> list[list[str]]:
    """The commands of each ```sh block (lines continued with a backslash joined), comments and blank lines
    dropped."""
    blocks = re.findall(r"^```sh\n(.*?)^```", readme.read_text(), flags=re.DOTALL | re.MULTILINE)
    return [
        [line for line in block.replace("\\\n", " ").splitlines() if line.strip() and not line.lstrip().startswith("#")]
        for block in blocks
    ]


class Reader:
    """Runs a README's commands as its reader would, against the test control plane."""

    def __init__(self, cp: ControlPlane, home: Path) -> None:
        suffix = uuid.uuid4().hex[:6]
        self.cp = cp
        self.swap = {"team-a": f"docs-{suffix}", "selfheal-system": f"docs-sys-{suffix}"}
        self.release = f"docs-{suffix}"
        self.installed: list[tuple[str, str]] = []
        self.env = {
            **os.environ,
            **READER_ENV,
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }

    def namespace(self, word: str) -> str:
        """``word`` with each namespace of the README swapped for a fresh one (also inside ``{team-a}``)."""
        for old, fresh in self.swap.items():
            word = re.sub(rf"(?<![\w-]){re.escape(old)}(?![\w-])", fresh, word)
        return word

    def expand(self, word: str) -> str:
        """``$VAR`` and ``${VAR}`` as the reader's shell expands them."""
        return re.sub(r"\$\{?(\w+)\}?", lambda m: self.env.get(m.group(1), ""), word)

    def run(self, line: str) -> subprocess.CompletedProcess[str]:
        words = [self.namespace(self.expand(w)) for w in shlex.split(line)]
        tool = words[0]
        assert tool in ("helm", "kubectl"), f"a README step that is neither helm nor kubectl: {line}"
        if tool == "helm":
            if words[1] in ("install", "upgrade"):
                words[2] = self.release
            if words[1] == "install":
                self.installed.append((self.release, words[words.index("--namespace") + 1]))
            words = [helm_binary(), *words[1:], "--kubeconfig", self.cp.kubeconfig]
        else:
            words = ["kubectl", "--kubeconfig", self.cp.kubeconfig, *words[1:]]
        result = subprocess.run(words, capture_output=True, text=True, cwd=ROOT, env=self.env, timeout=120)
        assert result.returncode == 0, f"`{line}` failed:\n{result.stdout}\n{result.stderr}"
        return result

    def uninstall(self) -> None:
        for release, namespace in self.installed:
            subprocess.run(
                [helm_binary(), "uninstall", release, "--namespace", namespace, "--kubeconfig", self.cp.kubeconfig],
                capture_output=True,
                env=self.env,
                timeout=120,
            )


@pytest.fixture
def reader(control_plane: ControlPlane, tmp_path: Path) -> Iterator[Reader]:
    r = Reader(control_plane, tmp_path)
    yield r
    r.uninstall()


def ready(cp: ControlPlane, namespace: str, name: str) -> dict[str, Any] | None:
    policy = cp.admin.get_or_none(f"{POLICIES.format(ns=namespace)}/{name}") or {}
    return next((c for c in (policy.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), None)


def test_each_readme_has_runnable_steps() -> None:
    for readme in READMES:
        assert sh_blocks(readme), f"{readme.relative_to(ROOT)} has no ```sh steps"


def may_get_secrets(cp: ControlPlane, reader: Reader, namespace: str) -> bool:
    """Whether the installed release's ServiceAccount may read Secrets in ``namespace`` (a SubjectAccessReview)."""
    system = reader.namespace("selfheal-system")
    review = cp.admin.create(
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": f"system:serviceaccount:{system}:{reader.release}-selfheal",
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{system}", "system:authenticated"],
                "resourceAttributes": {"verb": "get", "resource": "secrets", "namespace": namespace},
            },
        },
    )
    return bool(review["status"].get("allowed"))


@pytest.mark.parametrize(
    ("readme", "policy", "needs_secrets"),
    [(READMES[0], "checkout-minimal", False), (READMES[1], "shadow", True)],
    ids=["README", "chart-README"],
)
def test_the_readme_steps_apply_cleanly_and_the_policy_becomes_ready(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    reader: Reader,
    readme: Path,
    policy: str,
    needs_secrets: bool,
) -> None:
    outputs = [reader.run(line) for block in sh_blocks(readme) for line in block]
    namespace = reader.namespace("team-a")
    assert any("NOTES:" in out.stdout for out in outputs), "the install printed no next steps"
    release_deployment = (
        f"/apis/apps/v1/namespaces/{reader.namespace('selfheal-system')}/deployments/{reader.release}-selfheal"
    )
    assert control_plane.admin.get_or_none(release_deployment)
    # The installed operator may read the Secrets the policy names there (and, without them, need not).
    assert may_get_secrets(control_plane, reader, namespace) == needs_secrets
    assert not may_get_secrets(control_plane, reader, "kube-system")
    # The policy landed in the fresh namespace, and a running operator finds nothing missing.
    condition = control_plane.admin.wait_for(
        lambda: (c := ready(control_plane, namespace, policy)) and c["status"] == "True" and c,
        timeout=60,
        message=f"{policy} Ready in {namespace}",
    )
    assert condition["reason"]


def test_every_top_level_example_applies_into_any_namespace(control_plane: ControlPlane, tmp_path: Path) -> None:
    """`kubectl -n NS apply -f examples/` as a reader would; no example names a namespace of its own."""
    examples = sorted((ROOT / "examples").glob("*.yaml"))
    for path in examples:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                assert "namespace" not in doc["metadata"], (
                    f"{path.name} hard-codes namespace {doc['metadata']['namespace']}"
                )
    namespace = f"docs-ex-{uuid.uuid4().hex[:6]}"
    control_plane.ensure_namespace(namespace)
    result = subprocess.run(
        ["kubectl", "--kubeconfig", control_plane.kubeconfig, "-n", namespace, "apply", "-f", str(ROOT / "examples")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    created = result.stdout.count(" created")
    assert created == sum(1 for p in examples for d in yaml.safe_load_all(p.read_text()) if d), result.stdout
