"""A real etcd + kube-apiserver on loopback for tests, with real RBAC and our CRDs installed."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml

from selfheal.testing.assets import ARGO_CRDS, checkout_root, selfheal_crds
from selfheal.testing.rest import ApiError, KubeREST, iter_documents


class ControlPlaneUnavailable(RuntimeError):
    """The binaries are missing or the control plane did not become ready."""


def find_assets() -> Path:
    """``KUBEBUILDER_ASSETS``, else ``../shared/envtest/bin`` beside the checkout or the working directory."""
    candidates = []
    if os.environ.get("KUBEBUILDER_ASSETS"):
        candidates.append(Path(os.environ["KUBEBUILDER_ASSETS"]))
    root = checkout_root()
    if root is not None:
        candidates.append(root.parent / "shared/envtest/bin")
    candidates.append(Path.cwd().parent / "shared/envtest/bin")
    for path in candidates:
        if (path / "kube-apiserver").exists() and (path / "etcd").exists():
            return path
    raise ControlPlaneUnavailable(
        "kube-apiserver and etcd not found: set KUBEBUILDER_ASSETS to a folder holding them "
        f"(looked in {', '.join(str(c) for c in candidates)})"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it when the test process dies, however it dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    os.setsid()


def _write_sa_keys(directory: Path) -> tuple[Path, Path]:
    key, pub = directory / "sa.key", directory / "sa.pub"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)], check=True, capture_output=True)
    return key, pub


class ControlPlane:
    """etcd and kube-apiserver in a temporary directory; ``with ControlPlane() as cp: ...``.

    ``cp.admin`` is a :class:`KubeREST` with cluster-admin rights; ``cp.kubeconfig`` is a file for
    kubectl, kubernetes-asyncio and the operator; ``cp.service_account(...)`` gives a kubeconfig whose
    identity has exactly the rules it was bound to, so RBAC is real.
    """

    def __init__(self, assets: Path | str | None = None, *, install_crds: bool = True) -> None:
        self.assets = Path(assets) if assets else find_assets()
        self.install_crds = install_crds
        self.workdir = Path(tempfile.mkdtemp(prefix="selfheal-cp-"))
        self.admin_token = uuid.uuid4().hex
        self.etcd_port = free_port()
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self._procs: list[subprocess.Popen[bytes]] = []
        self.admin: KubeREST | None = None

    # -- life cycle -------------------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def ca_file(self) -> str:
        return str(self.workdir / "certs" / "apiserver.crt")

    @property
    def kubeconfig(self) -> str:
        return str(self.workdir / "admin.kubeconfig")

    def start(self, timeout: float = 60.0) -> None:
        atexit.register(self.stop)
        try:
            self._start_etcd()
            self._start_apiserver()
            self._wait_ready(timeout)
            self.admin = KubeREST(self.url, self.admin_token, self.ca_file)
            self._write_kubeconfig(self.kubeconfig, "admin", self.admin_token)
            if self.install_crds:
                self.apply_file(ARGO_CRDS)
                for path in selfheal_crds():
                    self.apply_file(path)
                self.wait_crds_established()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.admin is not None:
            self.admin.close()
            self.admin = None
        for proc in reversed(self._procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self._procs):
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self._procs.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        log.close()
        self._procs.append(proc)
        return proc

    def _start_etcd(self) -> None:
        peer = free_port()
        self._spawn(
            "etcd",
            [
                str(self.assets / "etcd"),
                "--data-dir",
                str(self.workdir / "etcd"),
                "--listen-client-urls",
                f"http://127.0.0.1:{self.etcd_port}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{self.etcd_port}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-cluster",
                f"default=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",
            ],
        )

    def _start_apiserver(self) -> None:
        certs = self.workdir / "certs"
        certs.mkdir()
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f'{self.admin_token},selfheal-admin,uid-admin,"system:masters"\n')
        key, pub = _write_sa_keys(self.workdir)
        self._spawn(
            "kube-apiserver",
            [
                str(self.assets / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                f"--cert-dir={certs}",
                f"--secure-port={self.port}",
                "--bind-address=127.0.0.1",
                "--insecure-port=0",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={pub}",
                f"--service-account-signing-key-file={key}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--kubelet-preferred-address-types=InternalIP",
                "--allow-privileged=true",
                "--disable-admission-plugins=ServiceAccount",
                "--event-ttl=1h",
            ],
        )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        last = "no answer"
        while time.monotonic() < deadline:
            for proc in self._procs:
                if proc.poll() is not None:
                    raise ControlPlaneUnavailable(
                        f"{_program(proc)} exited with {proc.returncode}: {self._tail_logs()}"
                    )
            try:
                r = httpx.get(f"{self.url}/readyz", headers=headers, verify=False, timeout=2)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[-300:]}"
            except httpx.HTTPError as e:
                last = repr(e)
            time.sleep(0.25)
        raise ControlPlaneUnavailable(f"kube-apiserver not ready after {timeout}s ({last}): {self._tail_logs()}")

    def _tail_logs(self) -> str:
        out = []
        for name in ("etcd", "kube-apiserver"):
            path = self.workdir / f"{name}.log"
            if path.exists():
                out.append(f"--- {name} ---\n" + path.read_text(errors="replace")[-2000:])
        return "\n".join(out)

    # -- credentials ------------------------------------------------------------------------------

    def _write_kubeconfig(self, path: str, user: str, token: str, namespace: str = "default") -> str:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "envtest", "cluster": {"server": self.url, "certificate-authority": self.ca_file}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": {"cluster": "envtest", "user": user, "namespace": namespace}}],
            "current-context": user,
        }
        Path(path).write_text(yaml.safe_dump(config))
        return path

    def service_account(
        self,
        namespace: str,
        name: str,
        *,
        cluster_rules: list[dict[str, Any]] | None = None,
        rules: list[dict[str, Any]] | None = None,
        cluster_role: str | None = None,
    ) -> str:
        """Create a ServiceAccount bound to the given rules (or an existing ClusterRole) and return a
        kubeconfig path authenticating as it through a real TokenRequest token."""
        assert self.admin is not None
        self.ensure_namespace(namespace)
        self.admin.apply(
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
        )
        subject = [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
        rbac = "/apis/rbac.authorization.k8s.io/v1"
        if cluster_rules is not None:
            cluster_role = f"{namespace}-{name}"
            self.admin.apply(f"{rbac}/clusterroles", {"metadata": {"name": cluster_role}, "rules": cluster_rules})
        if cluster_role:
            self.admin.apply(
                f"{rbac}/clusterrolebindings",
                {
                    "metadata": {"name": f"{namespace}-{name}"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
                    "subjects": subject,
                },
            )
        if rules is not None:
            self.admin.apply(f"{rbac}/namespaces/{namespace}/roles", {"metadata": {"name": name}, "rules": rules})
            self.admin.apply(
                f"{rbac}/namespaces/{namespace}/rolebindings",
                {
                    "metadata": {"name": name},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                    "subjects": subject,
                },
            )
        token = self.admin.create(
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 86400},
            },
        )["status"]["token"]
        return self._write_kubeconfig(
            str(self.workdir / f"{namespace}-{name}.kubeconfig"), f"{namespace}-{name}", token, namespace
        )

    def token_of(self, kubeconfig: str) -> str:
        return yaml.safe_load(Path(kubeconfig).read_text())["users"][0]["user"]["token"]

    def client(self, kubeconfig: str | None = None) -> KubeREST:
        """A REST client as the admin, or as the identity of ``kubeconfig``."""
        token = self.token_of(kubeconfig) if kubeconfig else self.admin_token
        return KubeREST(self.url, token, self.ca_file)

    # -- objects ----------------------------------------------------------------------------------

    def ensure_namespace(self, namespace: str) -> None:
        assert self.admin is not None
        try:
            self.admin.create(
                "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            )
        except ApiError as e:
            if e.status != 409:
                raise

    def apply_file(self, path: Path | str) -> list[dict[str, Any]]:
        return [self.apply_object(doc) for doc in iter_documents(Path(path).read_text())]

    def apply_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        from selfheal.testing.rest import resource_path

        assert self.admin is not None
        plural = _plural(obj["kind"])
        namespace = obj["metadata"].get("namespace") if plural not in _CLUSTER_SCOPED else None
        return self.admin.apply(resource_path(obj["apiVersion"], plural, namespace), obj)

    def wait_crds_established(self, timeout: float = 30.0) -> None:
        admin = self.admin
        assert admin is not None

        def all_established() -> bool:
            crds = admin.items("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
            return all(
                any(
                    c["type"] == "Established" and c["status"] == "True"
                    for c in (crd.get("status") or {}).get("conditions") or []
                )
                for crd in crds
            )

        admin.wait_for(all_established, timeout=timeout, message="CRDs established")
        # Discovery lags a little behind Established; wait until every CRD's resource is served.
        for crd in admin.items("/apis/apiextensions.k8s.io/v1/customresourcedefinitions"):
            group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
            for version in crd["spec"]["versions"]:
                path = f"/apis/{group}/{version['name']}"
                admin.wait_for(
                    functools.partial(_serves, admin, path, plural),
                    timeout=timeout,
                    message=f"{plural}.{group}/{version['name']} served",
                )


def _program(proc: subprocess.Popen[bytes]) -> str:
    """The name a process was started as (its first argument)."""
    args = proc.args
    first = args[0] if isinstance(args, list | tuple) else args
    return str(first)


def _serves(admin: KubeREST, group_version_path: str, plural: str) -> bool:
    """Whether discovery at ``group_version_path`` lists the resource ``plural``."""
    listing = admin.get_or_none(group_version_path) or {}
    return any(x["name"] == plural for x in listing.get("resources", []))


_CLUSTER_SCOPED = {"namespaces", "nodes", "customresourcedefinitions", "clusterroles", "clusterrolebindings"}
_IRREGULAR = {"Ingress": "ingresses", "PodSecurityPolicy": "podsecuritypolicies"}


def _plural(kind: str) -> str:
    if kind in _IRREGULAR:
        return _IRREGULAR[kind]
    lower = kind.lower()
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    if lower.endswith("s"):
        return lower + "es"
    return lower + "s"
