"""The Helm chart on the real apiserver: it lints, installs, grants exactly what the operator uses, uninstalls.

Every release here gets its own name and namespace: the ClusterRole and ClusterRoleBinding are cluster-scoped
(named after the release), and the session's ``operator`` fixture already owns ``selfheal-system/selfheal``.
There is no controller-manager and no kubelet behind the Deployment, so nothing waits for pods to be ready.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

import selfheal
from selfheal.cli import build_parser
from selfheal.testing.controlplane import ControlPlane, free_port
from selfheal.testing.operator import chart_cluster_rules, helm_binary, render_chart
from selfheal.testing.rest import ApiError

CHART = Path(__file__).resolve().parents[2] / "charts" / "selfheal"  # the chart as the repository has it
# The Lease duration the replicas of the leader-election test run with (the chart's default is 15 s).
TEST_LEASE_SECONDS = 3
RBAC = "/apis/rbac.authorization.k8s.io/v1"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
OUR_CRDS = ("selfhealingpolicies.selfheal.dev", "remediationtickets.selfheal.dev")
ROLLOUTS = "/apis/argoproj.io/v1alpha1/namespaces/{ns}/rollouts"
TICKETS = "/apis/selfheal.dev/v1alpha1/namespaces/{ns}/remediationtickets"
LIVENESS_PORT = 8080
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"


# --- helm ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def helm_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Helm's cache, config and data in a scratch folder, never in the user's home."""
    home = tmp_path_factory.mktemp("helm-home")
    return {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }


def helm(
    env: dict[str, str], *args: str, cp: ControlPlane | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    command = [helm_binary(), *args]
    if cp is not None:
        command += ["--kubeconfig", cp.kubeconfig]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    if check:
        assert result.returncode == 0, (
            f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


class Release:
    """One ``helm install`` of the chart into its own namespace; uninstalled at the end if still there."""

    def __init__(self, cp: ControlPlane, env: dict[str, str], namespace: str, *values: str) -> None:
        self.cp, self.env, self.namespace, self.values = cp, env, namespace, values
        self.name = f"sh-{uuid.uuid4().hex[:6]}"
        self.fullname = f"{self.name}-selfheal"
        self.installed = False

    def install(self) -> subprocess.CompletedProcess[str]:
        args = ["install", self.name, str(CHART), "--namespace", self.namespace, "--create-namespace"]
        for value in self.values:
            args += ["--set", value]
        result = helm(self.env, *args, cp=self.cp)
        self.installed = True
        return result

    def uninstall(self) -> None:
        helm(self.env, "uninstall", self.name, "--namespace", self.namespace, cp=self.cp)
        self.installed = False

    def manifest(self) -> list[dict[str, Any]]:
        out = helm(self.env, "get", "manifest", self.name, "--namespace", self.namespace, cp=self.cp).stdout
        return [d for d in yaml.safe_load_all(out) if d]

    # the installed objects, as the apiserver has them (None when absent)
    def service_account(self) -> dict[str, Any] | None:
        return self.cp.admin.get_or_none(f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{self.fullname}")

    def deployment(self) -> dict[str, Any] | None:
        return self.cp.admin.get_or_none(f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{self.fullname}")

    def cluster_role(self) -> dict[str, Any] | None:
        return self.cp.admin.get_or_none(f"{RBAC}/clusterroles/{self.fullname}")

    def cluster_role_binding(self) -> dict[str, Any] | None:
        return self.cp.admin.get_or_none(f"{RBAC}/clusterrolebindings/{self.fullname}")

    def role_binding(self, namespace: str) -> dict[str, Any] | None:
        return self.cp.admin.get_or_none(f"{RBAC}/namespaces/{namespace}/rolebindings/{self.fullname}")

    def secrets_role(self) -> dict[str, Any] | None:
        return self.cp.admin.get_or_none(f"{RBAC}/clusterroles/{self.fullname}-secrets")

    def secrets_bindings(self) -> list[str]:
        """Where the Secret-reading role is bound: namespaces, or "*" for a ClusterRoleBinding."""
        role = f"{self.fullname}-secrets"
        where = [
            b["metadata"]["namespace"]
            for b in self.cp.admin.items(f"{RBAC}/rolebindings")
            if b["roleRef"]["name"] == role
        ]
        if any(b["roleRef"]["name"] == role for b in self.cp.admin.items(f"{RBAC}/clusterrolebindings")):
            where.append("*")
        return sorted(where)

    def sa_user(self) -> tuple[str, list[str]]:
        """The username and groups the apiserver gives the release's ServiceAccount."""
        return (
            f"system:serviceaccount:{self.namespace}:{self.fullname}",
            ["system:serviceaccounts", f"system:serviceaccounts:{self.namespace}", "system:authenticated"],
        )


@pytest.fixture
def release_factory(control_plane: ControlPlane, helm_env: dict[str, str]) -> Iterator[Any]:
    releases: list[Release] = []

    def make(namespace: str, *values: str) -> Release:
        release = Release(control_plane, helm_env, namespace, *values)
        releases.append(release)
        return release

    yield make
    for release in releases:
        if release.installed:
            helm(helm_env, "uninstall", release.name, "--namespace", release.namespace, cp=control_plane, check=False)


def container_of(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["selfheal"]
    return containers[0]


def parsed_args(deployment: dict[str, Any]) -> argparse.Namespace:
    """The container's args as the image's ENTRYPOINT (``selfheal``) hands them to the CLI."""
    container = container_of(deployment)
    assert "command" not in container, "the chart must not override the image's ENTRYPOINT"
    return build_parser().parse_args(container["args"])


def resource_attributes(
    verb: str, resource: str, group: str, namespace: str | None, subresource: str
) -> k8s.V1ResourceAttributes:
    return k8s.V1ResourceAttributes(
        verb=verb, group=group, resource=resource, subresource=subresource or None, namespace=namespace
    )


def subject_access(
    cp: ControlPlane,
    user: str,
    groups: list[str],
    verb: str,
    resource: str,
    *,
    group: str = "",
    namespace: str | None = None,
    subresource: str = "",
) -> bool:
    """A real SubjectAccessReview, sent by the official client as cluster admin: may ``user`` do ``verb``?"""
    review = k8s.V1SubjectAccessReview(
        spec=k8s.V1SubjectAccessReviewSpec(
            user=user,
            groups=groups,
            resource_attributes=resource_attributes(verb, resource, group, namespace, subresource),
        )
    )
    with k8s_config.new_client_from_config(config_file=cp.kubeconfig) as api:
        answer = k8s.AuthorizationV1Api(api).create_subject_access_review(review)
    return bool(answer.status.allowed)


def assert_secure(deployment: dict[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    container = container_of(deployment)
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert "privileged" not in security or security["privileged"] is False
    # a read-only root needs a writable /tmp (Python, aiohttp and kopf write temporary files there)
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def assert_liveness_matches(deployment: dict[str, Any], args: argparse.Namespace) -> None:
    container = container_of(deployment)
    assert args.liveness == f"http://0.0.0.0:{LIVENESS_PORT}/healthz"
    assert {"name": "health", "containerPort": LIVENESS_PORT} in [
        {k: p[k] for k in ("name", "containerPort")} for p in container["ports"]
    ]
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz" and probe["port"] == "health"


# --- lint --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        (),
        ("watchNamespaces={a,b}",),
        ("rbac.secretNamespaces={a,b}",),
        ("rbac.clusterWideSecrets=true",),
        ("replicaCount=2",),
        (
            "watchNamespaces={a,b}",
            "replicaCount=2",
            "rbac.create=false",
            "serviceAccount.create=false",
            "serviceAccount.name=existing",
        ),
    ],
    ids=["defaults", "namespaced", "secret-namespaces", "cluster-wide-secrets", "ha", "no-rbac-no-sa"],
)
def test_helm_lint_passes(helm_env: dict[str, str], values: tuple[str, ...]) -> None:
    args = ["lint", "--strict", str(CHART)]
    for value in values:
        args += ["--set", value]
    result = helm(helm_env, *args)
    assert "0 chart(s) failed" in result.stdout
    assert "[ERROR]" not in result.stdout and "[WARNING]" not in result.stdout


def test_chart_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == selfheal.__version__
    deployment = next(d for d in render_chart() if d["kind"] == "Deployment")
    assert container_of(deployment)["image"].endswith(f":{selfheal.__version__}")


# --- install / uninstall ---------------------------------------------------------------------------


def test_cluster_wide_install_and_uninstall(control_plane: ControlPlane, namespace: str, release_factory) -> None:
    cp = control_plane
    crds_before = {name: cp.admin.get(f"{CRDS}/{name}") for name in OUR_CRDS}
    release = release_factory(namespace)
    release.install()

    # The CRDs were already there (installed by the fixture): helm skipped them, left them untouched and
    # does not own them, so `helm uninstall` can never delete the users' policies and tickets.
    for name, before in crds_before.items():
        after = cp.admin.get(f"{CRDS}/{name}")
        assert after["spec"] == before["spec"], name
        assert after["metadata"]["generation"] == before["metadata"]["generation"], name
        assert "helm.sh/resource-policy" not in (after["metadata"].get("annotations") or {})
        assert (after["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") != "Helm"
    assert not [d for d in release.manifest() if d["kind"] == "CustomResourceDefinition"]

    sa = release.service_account()
    assert sa is not None
    assert sa["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"

    role, secrets_role = release.cluster_role(), release.secrets_role()
    assert role is not None and secrets_role is not None
    assert role["rules"] + secrets_role["rules"] == chart_cluster_rules()
    assert release.secrets_bindings() == []  # every namespace watched: Secrets read nowhere unless asked
    binding = release.cluster_role_binding()
    assert binding is not None
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": release.fullname,
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": release.fullname, "namespace": namespace}]
    assert release.role_binding(namespace) is None

    deployment = release.deployment()
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == release.fullname
    args = parsed_args(deployment)
    assert args.command == "run"
    assert args.all_namespaces is True and args.namespaces == []
    assert args.standalone is True, "one replica runs standalone (no peering object needed)"
    assert (args.log_level, args.log_format) == ("info", "json")
    assert_liveness_matches(deployment, args)
    assert_secure(deployment)

    # The installed ServiceAccount really holds the permissions, cluster-wide.
    user, groups = release.sa_user()
    assert subject_access(cp, user, groups, "watch", "rollouts", group="argoproj.io", namespace="anywhere")
    assert subject_access(cp, user, groups, "list", "rollouts", group="argoproj.io")
    assert not subject_access(cp, user, groups, "list", "secrets", namespace="anywhere")
    for ns in ("kube-system", "default", namespace, "anywhere"):
        assert not subject_access(cp, user, groups, "get", "secrets", namespace=ns), ns

    release.uninstall()
    assert release.service_account() is None
    assert release.deployment() is None
    assert release.cluster_role() is None
    assert release.cluster_role_binding() is None
    for name in OUR_CRDS:  # CRDs outlive the release
        assert cp.admin.get_or_none(f"{CRDS}/{name}") is not None


@pytest.mark.parametrize(
    ("values", "readable", "unreadable"),
    [
        (("rbac.secretNamespaces={team-x,team-y}",), ("team-x", "team-y"), ("kube-system", "default", "team-z")),
        (("rbac.clusterWideSecrets=true",), ("kube-system", "default", "team-z"), ()),
    ],
    ids=["named-namespaces", "cluster-wide-opt-in"],
)
def test_cluster_wide_operator_reads_secrets_only_where_it_is_told(
    control_plane: ControlPlane, namespace: str, release_factory, values, readable, unreadable
) -> None:
    cp = control_plane
    for ns in ("team-x", "team-y", "team-z"):
        cp.ensure_namespace(ns)
    release = release_factory(namespace, *values)
    release.install()
    user, groups = release.sa_user()
    for ns in readable:
        assert subject_access(cp, user, groups, "get", "secrets", namespace=ns), ns
    for ns in unreadable:
        assert not subject_access(cp, user, groups, "get", "secrets", namespace=ns), ns
    for ns in (*readable, "kube-system"):  # one by one, by name: never listed or watched
        assert not subject_access(cp, user, groups, "list", "secrets", namespace=ns)
        assert not subject_access(cp, user, groups, "watch", "secrets", namespace=ns)
    assert subject_access(cp, user, groups, "list", "rollouts", group="argoproj.io")  # still watches everything
    release.uninstall()
    assert release.secrets_bindings() == [] and release.secrets_role() is None


def test_helm_install_into_a_fresh_namespace(control_plane: ControlPlane, release_factory) -> None:
    """`--create-namespace` creates the release namespace; the namespaced objects land there."""
    fresh = f"sh-ns-{uuid.uuid4().hex[:6]}"
    release = release_factory(fresh)
    release.install()
    assert control_plane.admin.get_or_none(f"/api/v1/namespaces/{fresh}") is not None
    assert release.service_account() is not None and release.deployment() is not None
    release.uninstall()
    assert release.service_account() is None and release.deployment() is None


def test_watch_namespaces_binds_roles_per_namespace(
    control_plane: ControlPlane, namespace: str, release_factory
) -> None:
    cp = control_plane
    team_a, team_b, other = f"{namespace}-a", f"{namespace}-b", f"{namespace}-c"
    for ns in (team_a, team_b, other):
        cp.ensure_namespace(ns)
    release = release_factory(namespace, f"watchNamespaces={{{team_a},{team_b}}}")
    release.install()

    assert release.cluster_role() is not None  # the rules, bound only inside the watched namespaces
    assert release.cluster_role_binding() is None
    # The only cluster-wide grant: Kopf's read-only observation of namespaces and CRDs.
    bindings = [
        b
        for b in cp.admin.items(f"{RBAC}/clusterrolebindings")
        if any(
            sub.get("name") == release.fullname and sub.get("namespace") == namespace for sub in b.get("subjects") or []
        )
    ]
    assert [b["metadata"]["name"] for b in bindings] == [f"{release.fullname}-discovery"]
    discovery = cp.admin.get(f"{RBAC}/clusterroles/{bindings[0]['roleRef']['name']}")
    assert flatten(discovery["rules"]) == {
        ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
        ("", "namespaces", "list"),
        ("", "namespaces", "watch"),
    }
    for ns in (team_a, team_b):
        binding = release.role_binding(ns)
        assert binding is not None, ns
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": release.fullname,
        }
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": release.fullname, "namespace": namespace}]
    assert release.role_binding(other) is None
    assert release.role_binding(namespace) is None

    deployment = release.deployment()
    assert deployment is not None
    args = parsed_args(deployment)
    assert args.namespaces == [team_a, team_b]
    assert args.all_namespaces is False
    assert args.standalone is True
    assert_liveness_matches(deployment, args)
    assert_secure(deployment)

    user, groups = release.sa_user()
    for ns in (team_a, team_b):
        assert subject_access(cp, user, groups, "watch", "rollouts", group="argoproj.io", namespace=ns)
        assert subject_access(
            cp, user, groups, "patch", "rollouts", group="argoproj.io", namespace=ns, subresource="status"
        )
        assert subject_access(cp, user, groups, "create", "remediationtickets", group="selfheal.dev", namespace=ns)
    assert not subject_access(cp, user, groups, "watch", "rollouts", group="argoproj.io", namespace=other)
    assert not subject_access(cp, user, groups, "get", "secrets", namespace=other)
    assert not subject_access(cp, user, groups, "get", "secrets", namespace="kube-system")
    for ns in (team_a, team_b):  # Secrets are read where policies live, nowhere else
        assert subject_access(cp, user, groups, "get", "secrets", namespace=ns)
        assert not subject_access(cp, user, groups, "list", "secrets", namespace=ns)
    assert release.secrets_bindings() == sorted([team_a, team_b])
    assert not subject_access(cp, user, groups, "list", "rollouts", group="argoproj.io")  # not cluster-wide
    assert subject_access(cp, user, groups, "watch", "namespaces")

    release.uninstall()
    assert release.secrets_bindings() == [] and release.secrets_role() is None
    for ns in (team_a, team_b):
        assert release.role_binding(ns) is None
    assert release.cluster_role() is None
    assert cp.admin.get_or_none(f"{RBAC}/clusterroles/{release.fullname}-discovery") is None
    assert cp.admin.get_or_none(f"{RBAC}/clusterrolebindings/{release.fullname}-discovery") is None
    assert release.service_account() is None and release.deployment() is None


@pytest.mark.parametrize("scope", ["cluster-wide", "namespaced"])
def test_two_replicas_elect_a_leader_through_a_lease(
    control_plane: ControlPlane, namespace: str, release_factory, scope: str
) -> None:
    cp = control_plane
    values = ["replicaCount=2"]
    if scope == "namespaced":
        cp.ensure_namespace(f"{namespace}-a")
        values.append(f"watchNamespaces={{{namespace}-a}}")
    release = release_factory(namespace, *values)
    release.install()

    deployment = release.deployment()
    assert deployment is not None and deployment["spec"]["replicas"] == 2
    args = parsed_args(deployment)
    assert args.standalone is False and args.leader_election is True, "two replicas must not both run standalone"
    assert (args.lease_namespace, args.lease_name, args.lease_duration) == (namespace, release.fullname, 15)

    user, groups = release.sa_user()
    # The Lease lives in the release's namespace, and only there may the replicas write Leases.
    for verb in ("get", "create", "update"):
        assert subject_access(cp, user, groups, verb, "leases", group="coordination.k8s.io", namespace=namespace)
    assert not subject_access(cp, user, groups, "delete", "leases", group="coordination.k8s.io", namespace=namespace)
    assert not subject_access(cp, user, groups, "update", "leases", group="coordination.k8s.io", namespace="default")

    release.uninstall()
    assert release.deployment() is None
    assert cp.admin.get_or_none(f"{RBAC}/namespaces/{namespace}/roles/{release.fullname}-leader-election") is None


def test_metrics_are_served_and_annotated_for_prometheus() -> None:
    deployment = next(d for d in render_chart() if d["kind"] == "Deployment")
    assert parsed_args(deployment).metrics_port == 9090
    assert {"name": "metrics", "containerPort": 9090} in container_of(deployment)["ports"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9090",
        "prometheus.io/path": "/metrics",
    }
    other = next(d for d in render_chart("metrics.port=9102") if d["kind"] == "Deployment")
    assert parsed_args(other).metrics_port == 9102
    assert other["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == "9102"


def test_metrics_can_be_disabled() -> None:
    deployment = next(d for d in render_chart("metrics.enabled=false") if d["kind"] == "Deployment")
    assert parsed_args(deployment).metrics_port == 0
    assert "metrics" not in [p["name"] for p in container_of(deployment)["ports"]]
    assert "annotations" not in deployment["spec"]["template"]["metadata"]


def test_one_replica_renders_no_leader_election() -> None:
    assert not [d for d in render_chart() if d["kind"] in ("Role", "RoleBinding") and "leader" in d["metadata"]["name"]]
    assert not [d for d in render_chart() if d["apiVersion"].startswith("kopf.dev")]
    assert parsed_args(next(d for d in render_chart() if d["kind"] == "Deployment")).leader_election is False


def _holder(cp: ControlPlane, namespace: str, name: str) -> str:
    found = cp.admin.get_or_none(f"{LEASES.format(ns=namespace)}/{name}") or {}
    return str((found.get("spec") or {}).get("holderIdentity") or "")


def test_two_replicas_elect_exactly_one_active(control_plane: ControlPlane, namespace: str, release_factory) -> None:
    """Two replicas with the chart's args and RBAC: one runs, the other stands by without starting Kopf;
    killed (SIGKILL), the active one is replaced within the Lease duration; stopped cleanly, at once."""
    cp = control_plane
    watched = f"{namespace}-a"
    cp.ensure_namespace(watched)
    release = release_factory(namespace, "replicaCount=2", f"watchNamespaces={{{watched}}}")
    release.install()
    deployment = release.deployment()
    assert deployment is not None
    args = container_of(deployment)["args"]
    kubeconfig = cp.service_account(namespace, release.fullname)  # a token of the release's own ServiceAccount

    env = {
        **os.environ,
        "KUBECONFIG": kubeconfig,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(Path(selfheal.__file__).parents[1]), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)
    replicas: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    livenesses: list[str] = []

    def start(i: int) -> None:
        port = free_port()
        livenesses.append(f"http://127.0.0.1:{port}/healthz")
        replica_args = [
            f"--liveness={livenesses[-1]}"
            if a.startswith("--liveness")
            else f"--metrics-port={free_port()}"
            if a.startswith("--metrics-port")
            else f"--lease-duration={TEST_LEASE_SECONDS}"
            if a.startswith("--lease-duration")
            else f"--verdict-port={free_port()}"
            if a.startswith("--verdict-port")
            else a
            for a in args
        ]
        log = Path(tempfile.mkstemp(prefix=f"selfheal-replica{i}-", suffix=".log")[1])
        logs.append(log)
        with open(log, "ab") as out:
            replicas.append(
                subprocess.Popen(
                    [sys.executable, "-m", "selfheal.cli", *replica_args],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            )

    def leader() -> int | None:
        holder = _holder(cp, namespace, release.fullname)
        found = [i for i, log in enumerate(logs) if holder and holder in log.read_text()]
        return found[0] if len(found) == 1 else None

    def kopf_started(i: int) -> bool:
        text = logs[i].read_text()
        return "Activity 'selfheal-startup'" in text or "Initial authentication" in text

    try:
        start(0)
        cp.admin.wait_for(lambda: leader() == 0, timeout=30, message="the first replica leads")
        start(1)
        cp.admin.wait_for(lambda: "standing by" in logs[1].read_text(), timeout=30, message="the second stands by")
        time.sleep(TEST_LEASE_SECONDS * 2)  # two Lease durations: the standby must not take over a renewed Lease
        assert leader() == 0 and replicas[1].poll() is None
        assert not kopf_started(1), "the standby started Kopf: its handlers and tasks would run too"
        with urllib.request.urlopen(livenesses[1], timeout=5) as answer:  # alive while it stands by
            assert answer.status == 200

        # The active replica dies: the standby takes over once the Lease expires.
        killed = time.monotonic()
        os.killpg(replicas[0].pid, signal.SIGKILL)
        replicas[0].wait(timeout=10)
        cp.admin.wait_for(lambda: leader() == 1, timeout=TEST_LEASE_SECONDS * 5, message="the standby takes over")
        handover = time.monotonic() - killed
        print(f"hand-over after SIGKILL: {handover:.1f}s (lease {TEST_LEASE_SECONDS}s)")
        assert TEST_LEASE_SECONDS * 0.9 <= handover <= TEST_LEASE_SECONDS * 3
        cp.admin.wait_for(lambda: kopf_started(1), timeout=30, message="the new leader starts Kopf")

        # A replacement stands by; the leader stopped cleanly gives the Lease up and it takes over at once.
        start(2)
        cp.admin.wait_for(lambda: "standing by" in logs[2].read_text(), timeout=30, message="the third stands by")
        stopped = time.monotonic()
        os.killpg(replicas[1].pid, signal.SIGTERM)
        cp.admin.wait_for(lambda: leader() == 2, timeout=TEST_LEASE_SECONDS * 5, message="a clean hand-over")
        print(f"hand-over after SIGTERM: {time.monotonic() - stopped:.1f}s")
        assert replicas[1].wait(timeout=30) == 0
        assert "leadership released" in logs[1].read_text()
    finally:
        for proc in replicas:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in replicas:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


# --- RBAC: exactly what the operator uses, nothing dangerous -------------------------------------------

# (apiGroup, resource, verb) the operator needs, and why. The chart's ClusterRole must be exactly this.
EXPECTED_GRANTS = {
    # Rollouts: watched and indexed (kopf.index / kopf.on.event), read, and changed only by the merge
    # patches `kubectl argo rollouts` sends (pause / promote on the object, abort / retry on status).
    *{("argoproj.io", "rollouts", v) for v in ("get", "list", "watch", "patch")},
    *{("argoproj.io", "rollouts/status", v) for v in ("get", "patch")},
    # AnalysisRuns: watched, indexed and read for the failed metrics.
    *{("argoproj.io", "analysisruns", v) for v in ("get", "list", "watch")},
    # The canary ReplicaSet's creation time bounds the log window.
    *{("apps", "replicasets", v) for v in ("get", "list", "watch")},
    # Evidence: pods of each side, their logs, their events.
    *{("", "pods", v) for v in ("get", "list", "watch")},
    ("", "pods/log", "get"),
    # Events: read as evidence; posted (and their counts patched) by the operator and by Kopf.
    *{("", "events", v) for v in ("get", "list", "watch", "create", "patch")},
    # Only the Secrets a policy names, read one by one.
    ("", "secrets", "get"),
    # Our own resources (Kopf's progress annotations and finalizers are patches).
    *{("selfheal.dev", "selfhealingpolicies", v) for v in ("get", "list", "watch", "patch")},
    *{("selfheal.dev", "selfhealingpolicies/status", v) for v in ("get", "patch")},
    *{("selfheal.dev", "remediationtickets", v) for v in ("get", "list", "watch", "create", "patch")},
    *{("selfheal.dev", "remediationtickets/status", v) for v in ("get", "patch")},
    # Kopf: CRD and namespace observation.
    *{("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")},
    *{("", "namespaces", v) for v in ("list", "watch")},
}


def flatten(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    grants = set()
    for rule in rules:
        assert not rule.get("resourceNames"), rule  # a name-restricted rule would need its own review
        assert not rule.get("nonResourceURLs"), rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    grants.add((group, resource, verb))
    return grants


def test_cluster_role_has_no_wildcards_and_grants_exactly_what_the_operator_uses() -> None:
    grants = flatten(chart_cluster_rules())
    assert not [g for g in grants if "*" in g], "no wildcard groups, resources or verbs"
    assert grants - EXPECTED_GRANTS == set(), "the chart grants more than the operator uses"
    assert EXPECTED_GRANTS - grants == set(), "the chart misses a permission the operator uses"


@pytest.fixture(scope="module")
def chart_identity(control_plane: ControlPlane) -> tuple[str, str]:
    """A ServiceAccount bound to exactly the chart's ClusterRole rules; ``(kubeconfig, namespace)``."""
    ns = f"rbac-{uuid.uuid4().hex[:6]}"
    kubeconfig = control_plane.service_account(ns, "selfheal", cluster_rules=chart_cluster_rules())
    return kubeconfig, ns


def self_access(
    api: k8s.ApiClient,
    verb: str,
    resource: str,
    *,
    group: str = "",
    namespace: str | None = None,
    subresource: str = "",
) -> bool:
    """A SelfSubjectAccessReview: may the identity of ``api`` do ``verb`` on ``resource``?"""
    review = k8s.V1SelfSubjectAccessReview(
        spec=k8s.V1SelfSubjectAccessReviewSpec(
            resource_attributes=resource_attributes(verb, resource, group, namespace, subresource)
        )
    )
    return bool(k8s.AuthorizationV1Api(api).create_self_subject_access_review(review).status.allowed)


# (verb, group, resource, subresource)
ALLOWED = [
    ("get", "argoproj.io", "rollouts", ""),
    ("list", "argoproj.io", "rollouts", ""),
    ("watch", "argoproj.io", "rollouts", ""),
    ("patch", "argoproj.io", "rollouts", ""),
    ("patch", "argoproj.io", "rollouts", "status"),
    ("list", "argoproj.io", "analysisruns", ""),
    ("watch", "argoproj.io", "analysisruns", ""),
    ("get", "argoproj.io", "analysisruns", ""),
    ("get", "apps", "replicasets", ""),
    ("list", "", "pods", ""),
    ("watch", "", "pods", ""),
    ("get", "", "pods", "log"),
    ("create", "", "events", ""),
    ("patch", "", "events", ""),
    ("list", "", "events", ""),
    ("get", "", "secrets", ""),
    ("list", "selfheal.dev", "selfhealingpolicies", ""),
    ("watch", "selfheal.dev", "selfhealingpolicies", ""),
    ("patch", "selfheal.dev", "selfhealingpolicies", ""),
    ("patch", "selfheal.dev", "selfhealingpolicies", "status"),
    ("create", "selfheal.dev", "remediationtickets", ""),
    ("get", "selfheal.dev", "remediationtickets", ""),
    ("list", "selfheal.dev", "remediationtickets", ""),
    ("watch", "selfheal.dev", "remediationtickets", ""),
    ("patch", "selfheal.dev", "remediationtickets", ""),
    ("patch", "selfheal.dev", "remediationtickets", "status"),
]

DENIED = [
    ("list", "", "secrets", ""),
    ("watch", "", "secrets", ""),
    ("create", "", "secrets", ""),
    ("update", "", "secrets", ""),
    ("patch", "", "secrets", ""),
    ("delete", "", "secrets", ""),
    ("delete", "argoproj.io", "rollouts", ""),
    ("update", "argoproj.io", "rollouts", ""),
    ("create", "argoproj.io", "rollouts", ""),
    ("deletecollection", "argoproj.io", "rollouts", ""),
    ("update", "argoproj.io", "rollouts", "status"),
    ("create", "argoproj.io", "analysisruns", ""),
    ("delete", "argoproj.io", "analysisruns", ""),
    ("patch", "argoproj.io", "analysisruns", ""),
    ("create", "", "pods", ""),
    ("delete", "", "pods", ""),
    ("patch", "", "pods", ""),
    ("create", "", "pods", "exec"),
    ("create", "", "pods", "eviction"),
    ("create", "", "pods", "portforward"),
    ("patch", "apps", "replicasets", ""),
    ("delete", "apps", "replicasets", ""),
    ("patch", "apps", "deployments", ""),
    ("get", "", "configmaps", ""),
    ("create", "", "serviceaccounts", "token"),
    ("delete", "selfheal.dev", "remediationtickets", ""),
    ("delete", "selfheal.dev", "selfhealingpolicies", ""),
    ("create", "selfheal.dev", "selfhealingpolicies", ""),
    ("delete", "", "events", ""),
    ("create", "apiextensions.k8s.io", "customresourcedefinitions", ""),
    ("patch", "apiextensions.k8s.io", "customresourcedefinitions", ""),
    ("create", "rbac.authorization.k8s.io", "rolebindings", ""),
    ("bind", "rbac.authorization.k8s.io", "clusterroles", ""),
    ("escalate", "rbac.authorization.k8s.io", "clusterroles", ""),
    ("impersonate", "", "serviceaccounts", ""),
    ("delete", "", "namespaces", ""),
]


def _id(case: tuple[str, str, str, str]) -> str:
    verb, group, resource, sub = case
    return f"{verb}-{resource}{'/' + sub if sub else ''}{'.' + group if group else ''}"


@pytest.mark.parametrize("case", ALLOWED, ids=_id)
def test_chart_rbac_allows_what_the_operator_uses(control_plane: ControlPlane, chart_identity, case) -> None:
    kubeconfig, _ = chart_identity
    verb, group, resource, sub = case
    with k8s_config.new_client_from_config(config_file=kubeconfig) as api:
        assert self_access(api, verb, resource, group=group, subresource=sub, namespace="some-app")


@pytest.mark.parametrize("case", DENIED, ids=_id)
def test_chart_rbac_denies_dangerous_verbs(control_plane: ControlPlane, chart_identity, case) -> None:
    kubeconfig, _ = chart_identity
    verb, group, resource, sub = case
    with k8s_config.new_client_from_config(config_file=kubeconfig) as api:
        assert not self_access(api, verb, resource, group=group, subresource=sub, namespace="some-app")


def rollout(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "argoproj/rollouts-demo:blue"}]},
            },
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
        },
    }


def test_chart_rbac_real_calls(control_plane: ControlPlane, chart_identity, namespace: str) -> None:
    """The same answers from real requests, as the chart's identity: allowed calls succeed, dangerous ones 403."""
    cp = control_plane
    kubeconfig, _ = chart_identity
    ns = namespace
    cp.admin.create(
        f"/api/v1/namespaces/{ns}/secrets",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "llm"}, "stringData": {"api-key": "k"}},
    )
    cp.admin.create(ROLLOUTS.format(ns=ns), rollout("web"))
    cp.admin.create(
        f"/api/v1/namespaces/{ns}/pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web-1", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "argoproj/rollouts-demo:blue"}]},
        },
    )

    def forbidden(call: Any) -> None:
        with pytest.raises(ApiError) as err:
            call()
        assert err.value.status == 403, err.value

    with cp.client(kubeconfig) as sa:
        # allowed
        assert sa.get(f"/api/v1/namespaces/{ns}/secrets/llm")["data"]["api-key"]
        assert [r["metadata"]["name"] for r in sa.items(ROLLOUTS.format(ns=ns))] == ["web"]
        assert sa.items("/apis/argoproj.io/v1alpha1/rollouts")  # cluster-wide list
        sa.patch(f"{ROLLOUTS.format(ns=ns)}/web", {"spec": {"paused": True}})
        sa.patch(f"{ROLLOUTS.format(ns=ns)}/web/status", {"status": {"abort": True}})
        assert sa.items(f"/api/v1/namespaces/{ns}/pods", labelSelector="app=web")
        assert sa.items(f"/apis/argoproj.io/v1alpha1/namespaces/{ns}/analysisruns") == []
        sa.create(
            f"/api/v1/namespaces/{ns}/events",
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": "web.selfheal"},
                "involvedObject": {
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "Rollout",
                    "name": "web",
                    "namespace": ns,
                },
                "reason": "Analyzed",
                "message": "test",
                "type": "Normal",
            },
        )
        sa.patch(f"/api/v1/namespaces/{ns}/events/web.selfheal", {"message": "again"})
        created = sa.create(TICKETS.format(ns=ns), minimal_ticket("web-abc123"))
        assert created["metadata"]["name"] == "web-abc123"
        sa.patch(f"{TICKETS.format(ns=ns)}/web-abc123/status", {"status": {"phase": "Open"}})
        assert [t["metadata"]["name"] for t in sa.items(TICKETS.format(ns=ns))] == ["web-abc123"]

        # denied
        forbidden(lambda: sa.items(f"/api/v1/namespaces/{ns}/secrets"))
        forbidden(lambda: sa.items("/api/v1/secrets"))
        forbidden(lambda: sa.delete(f"{ROLLOUTS.format(ns=ns)}/web", missing_ok=False))
        forbidden(lambda: sa.put(f"{ROLLOUTS.format(ns=ns)}/web", cp.admin.get(f"{ROLLOUTS.format(ns=ns)}/web")))
        forbidden(lambda: sa.create(ROLLOUTS.format(ns=ns), rollout("evil")))
        forbidden(lambda: sa.delete(f"/api/v1/namespaces/{ns}/pods/web-1", missing_ok=False))
        forbidden(
            lambda: sa.create(
                f"/api/v1/namespaces/{ns}/pods",
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "evil"},
                    "spec": {"containers": [{"name": "x", "image": "busybox"}]},
                },
            )
        )
        forbidden(lambda: sa.delete(f"{TICKETS.format(ns=ns)}/web-abc123", missing_ok=False))
    # the allowed patches really landed
    obj = cp.admin.get(f"{ROLLOUTS.format(ns=ns)}/web")
    assert obj["spec"]["paused"] is True and obj["status"]["abort"] is True


def minimal_ticket(name: str) -> dict[str, Any]:
    """A RemediationTicket with just the fields our CRD requires."""
    return {
        "apiVersion": "selfheal.dev/v1alpha1",
        "kind": "RemediationTicket",
        "metadata": {"name": name},
        "spec": {
            "rollout": "web",
            "policy": "demo",
            "podTemplateHash": "abc123",
            "fingerprint": "0123abcd",
            "verdict": {
                "verdict": "unhealthy",
                "confidence": 90,
                "analyzer": "statistical",
                "summary": "canary panics",
            },
        },
    }


# --- examples/demo on the real apiserver ---------------------------------------------------------------
# tests/integration/test_crds_on_apiserver.py applies examples/*.yaml only (no subfolders); the demo app
# lives in examples/demo/, so it is applied here, in the order its README gives.

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
DEMO_FILES = [
    "services-canary-demo.yaml",
    "analysistemplate-error-rate.yaml",
    "rollout-canary-demo.yaml",
    "policy-canary-demo.yaml",
    "traffic-generator.yaml",
]


def test_demo_folder_is_fully_covered() -> None:
    assert sorted(p.name for p in DEMO.glob("*.yaml")) == sorted(DEMO_FILES)


def _contains(stored: Any, written: Any) -> bool:
    """Everything written survives in what the apiserver stored (it may add defaults, never prune)."""
    if isinstance(written, dict):
        return isinstance(stored, dict) and all(k in stored and _contains(stored[k], v) for k, v in written.items())
    if isinstance(written, list):
        return (
            isinstance(stored, list)
            and len(stored) == len(written)
            and all(_contains(s, w) for s, w in zip(stored, written, strict=False))
        )
    return stored == written or (isinstance(written, int) and str(stored) == str(written))


@pytest.mark.parametrize("name", DEMO_FILES)
def test_demo_manifests_are_accepted_unpruned(control_plane: ControlPlane, namespace: str, name: str) -> None:
    for doc in yaml.safe_load_all((DEMO / name).read_text()):
        if not doc:
            continue
        assert "namespace" not in doc["metadata"], "the demo is applied with `kubectl apply -n <ns>`"
        doc["metadata"]["namespace"] = namespace
        created = control_plane.apply_object(doc)
        assert created["metadata"]["name"] == doc["metadata"]["name"]
        assert _contains(created["spec"], doc["spec"]), f"{doc['kind']} {doc['metadata']['name']} was pruned"


def test_demo_with_kubectl_server_side_dry_run(control_plane: ControlPlane, namespace: str) -> None:
    """`kubectl apply -n NS -f examples/demo/`, as the demo README says (server-side dry run)."""
    result = subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            control_plane.kubeconfig,
            "-n",
            namespace,
            "apply",
            "--dry-run=server",
            "-f",
            str(DEMO),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for kind_name in (
        "rollout.argoproj.io/canary-demo",
        "analysistemplate.argoproj.io/error-rate",
        "selfhealingpolicy.selfheal.dev/canary-demo",
        "service/canary-demo-preview",
    ):
        assert kind_name in result.stdout, result.stdout
