"""ArgoSimulator: a simulated Argo Rollouts controller (plus RS controller and kubelet) running in a test thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from selfheal.testing.argosim import runs as argosim_runs
from selfheal.testing.argosim.analysis import AnalysisController
from selfheal.testing.argosim.bluegreen import BlueGreenReconcile
from selfheal.testing.argosim.canary import CanaryReconcile
from selfheal.testing.argosim.informer import RolloutInformer
from selfheal.testing.argosim.kube import NODE_RULES, NodeSimulator
from selfheal.testing.argosim.rollout import RolloutReconcile
from selfheal.testing.argosim.util import Recorder
from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.rest import ApiError
from selfheal.testing.workloads import DEFAULT_REQUESTS_PER_SECOND, Workloads

log = logging.getLogger(__name__)

SERVICE_ACCOUNT = ("argo-rollouts", "argo-rollouts")
NODE_SERVICE_ACCOUNT = ("kube-system", "selfheal-sim-node")

# The rules of the real controller's ClusterRole that matter here (contract §8.1).
ARGO_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["argoproj.io"],
        "resources": ["rollouts", "rollouts/status", "rollouts/finalizers"],
        "verbs": ["get", "list", "watch", "update", "patch"],
    },
    {
        "apiGroups": ["argoproj.io"],
        "resources": ["analysisruns", "analysisruns/finalizers", "experiments", "experiments/finalizers"],
        "verbs": ["create", "get", "list", "watch", "update", "patch", "delete"],
    },
    {
        "apiGroups": ["argoproj.io"],
        "resources": ["analysistemplates", "clusteranalysistemplates"],
        "verbs": ["get", "list", "watch"],
    },
    {
        "apiGroups": ["apps"],
        "resources": ["replicasets"],
        "verbs": ["create", "get", "list", "watch", "update", "patch", "delete"],
    },
    {
        "apiGroups": ["", "apps"],
        "resources": ["deployments", "podtemplates"],
        "verbs": ["get", "list", "watch", "update"],
    },
    {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch", "patch", "create", "delete"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create", "get", "update"]},
    {"apiGroups": [""], "resources": ["secrets", "configmaps"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "update", "watch"]},
    {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "update", "patch"]},
    {
        "apiGroups": ["batch"],
        "resources": ["jobs"],
        "verbs": ["create", "get", "list", "watch", "update", "patch", "delete"],
    },
]


STRATEGIES: dict[str, type[RolloutReconcile]] = {"canary": CanaryReconcile, "blueGreen": BlueGreenReconcile}


class ArgoSimulator:
    """Reconciles canary and blue-green Rollouts and their AnalysisRuns the way Argo Rollouts v1.9 does.

    Argo's part runs as ServiceAccount ``argo-rollouts/argo-rollouts`` bound to :data:`ARGO_RULES`; the
    ReplicaSet controller and kubelet part (pods, pod status, container logs) runs as its own
    ServiceAccount. ``with ArgoSimulator(cp, kubelet, namespaces=[ns]) as sim:`` starts the thread;
    :meth:`reconcile_once` runs one pass synchronously. Errors never stop the loop: they are logged and
    kept in :attr:`errors` (404 and 409 races are expected and only logged).

    ``informer_lag`` (seconds) makes the controller see others' changes to a Rollout that much later,
    as a busy controller's informer does (see `RolloutInformer`): tests use it to open the windows in
    which the Rollout in the apiserver and the controller's idea of it differ.
    """

    def __init__(
        self,
        cp: ControlPlane,
        kubelet: Any,
        *,
        namespaces: list[str] | None = None,
        interval: float = 0.2,
        requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND,
        seed: int | None = None,
        informer_lag: float = 0.0,
    ) -> None:
        self.cp = cp
        self.namespaces = list(namespaces) if namespaces else None
        self.interval = interval
        self.kubeconfig = cp.service_account(*SERVICE_ACCOUNT, cluster_rules=ARGO_RULES)
        self.client = cp.client(self.kubeconfig)
        self.node_client = cp.client(cp.service_account(*NODE_SERVICE_ACCOUNT, cluster_rules=NODE_RULES))
        self.workloads = Workloads(kubelet, requests_per_second=requests_per_second, seed=seed)
        self.recorder = Recorder(self.client, "rollouts-controller")
        self.analysis = AnalysisController(self.client, self.recorder, self.workloads)
        self.node = NodeSimulator(self.node_client, kubelet, self.workloads)
        self.informer = RolloutInformer(informer_lag)
        self.errors: list[BaseException] = []
        self.passes = 0
        self._seen: set[str] = set()
        self._skipped: set[str] = set()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- life cycle --------------------------------------------------------------------------------

    def start(self) -> ArgoSimulator:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="argo-rollouts-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self.client.close()
        self.node_client.close()

    def __enter__(self) -> ArgoSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._guard(self.reconcile_once)
            self._stop.wait(self.interval)

    # -- one pass ----------------------------------------------------------------------------------

    def reconcile_once(self) -> None:
        """Kubelet and RS controller, then the analysis controller, then the Rollout controller."""
        with self._lock:
            for error in self.node.reconcile(self.namespaces):
                self._record(error)
            scopes: list[str | None] = list(self.namespaces) if self.namespaces else [None]
            for namespace in scopes:
                self._guard(self._reconcile_scope, namespace)
            self.passes += 1

    def wait_passes(self, count: int = 2, timeout: float = 10.0) -> None:
        """Block until the background thread has completed ``count`` more passes."""
        target = self.passes + count
        self.client.wait_for(
            lambda: self.passes >= target, timeout=timeout, interval=0.02, message=f"{count} simulator passes"
        )

    def _reconcile_scope(self, namespace: str | None) -> None:
        base = "/apis/argoproj.io/v1alpha1" + (f"/namespaces/{namespace}" if namespace else "")
        rs_path = f"/apis/apps/v1/namespaces/{namespace}/replicasets" if namespace else "/apis/apps/v1/replicasets"
        for run in self.client.items(f"{base}/analysisruns"):
            self._guard(self.analysis.reconcile, run)
        rollouts = self.informer.view(self.client.items(f"{base}/rollouts"))
        if not rollouts:
            return
        replicasets = self.client.items(rs_path)
        runs = self.client.items(f"{base}/analysisruns")
        for rollout in rollouts:
            ns = rollout["metadata"]["namespace"]
            uid = rollout["metadata"]["uid"]
            strategy = rollout["spec"].get("strategy") or {}
            reconcile = next((cls for key, cls in STRATEGIES.items() if key in strategy), None)
            if reconcile is None or rollout["spec"].get("workloadRef"):
                if uid not in self._skipped:
                    self._skipped.add(uid)
                    log.warning(
                        "rollout %s/%s: only canary and blue-green rollouts with an inline template are simulated",
                        ns,
                        rollout["metadata"]["name"],
                    )
                continue
            if uid not in self._seen:
                self._seen.add(uid)
                self._guard(
                    self.rollout_event,
                    rollout,
                    "RolloutAddedToInformer",
                    f"Rollout resource added to informer: {ns}/{rollout['metadata']['name']}",
                )
            self._guard(
                lambda r=rollout, n=ns, cls=reconcile: cls(
                    self,
                    r,
                    [x for x in replicasets if x["metadata"]["namespace"] == n],
                    [x for x in runs if x["metadata"]["namespace"] == n],
                ).run()
            )

    # -- hooks used by RolloutReconcile ------------------------------------------------------------

    def rollout_event(self, rollout: dict, reason: str, message: str, *, warning: bool = False) -> None:
        self.recorder.event(rollout, reason, message, warning=warning)

    def reconcile_rollout_analysis(self, ctx: RolloutReconcile) -> None:
        if isinstance(ctx, BlueGreenReconcile):
            argosim_runs.reconcile_blue_green(ctx)
        elif isinstance(ctx, CanaryReconcile):
            argosim_runs.reconcile(ctx)

    def run_created(self, run: dict) -> dict:
        """Let the analysis controller take a new run to Running before the Rollout links it."""
        self._guard(self.analysis.reconcile, run)
        meta = run["metadata"]
        try:
            return self.client.get(
                f"/apis/argoproj.io/v1alpha1/namespaces/{meta['namespace']}/analysisruns/{meta['name']}"
            )
        except ApiError:
            return run

    def analysis_link(self, ctx: RolloutReconcile, kind: str) -> dict | None:
        if ctx.current_runs is not None:
            return ctx.current_runs.get(kind)
        return argosim_runs.linked_run(ctx, kind)

    # -- errors ------------------------------------------------------------------------------------

    def _guard(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as e:
            self._record(e)

    def _record(self, error: BaseException) -> None:
        if isinstance(error, ApiError) and error.status in (404, 409):
            log.debug("simulator race: %s", error)
            return
        log.error("simulator error: %r", error, exc_info=error)
        self.errors.append(error)

    @property
    def events(self) -> list[dict]:
        """Events this controller recorded (rollouts-controller component)."""
        return list(self.recorder.sent)
