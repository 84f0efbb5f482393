"""Benchmark: many canaries at once. The real operator (`selfheal run`, a subprocess) against the real
kube-apiserver, with Argo objects written the way Argo writes them; prints the decision latency, memory and
CPU for each (governed Rollouts, failing at once) pair, and the time a full log-watch pass takes.

Each Rollout has a stable and a canary pod logging 300 lines (served by the test kubelet through the
apiserver's pods/log path) and a Successful AnalysisRun. The trigger: a canary starts panicking and the
Rollout reaches its indefinite `pause: {}` step; the latency runs from that status change to the abort
patch, as a watch on the Rollouts sees both.

Run: KUBEBUILDER_ASSETS=... python bench/bench_scale.py [--scenarios 100x1,100x10,...] [--soak SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from selfheal.testing.assets import package_root
from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.kubelet import NODE_NAME, TestKubelet
from selfheal.testing.operator import OperatorProcess
from selfheal.testing.workloads import COLOURS, go_log_time, panic_trace

ARGO = "/apis/argoproj.io/v1alpha1/namespaces/{ns}"
POLICY = "/apis/selfheal.dev/v1alpha1/namespaces/{ns}/selfhealingpolicies"
LINES = 300
STABLE, CANARY = "6f8b4c7d9", "5d9c8b7a6"
STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "1h"}}]
DEFAULT_SCENARIOS = "100x1,100x10,100x100,300x300,300x100,1000x100"


# --- what the operator is measured by, read from /proc ----------------------------------------------


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def _field(path: str, name: str) -> int:
    """A ``kB`` figure from /proc/<pid>/status or smaps_rollup, in bytes (0 when the process is gone)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, clock ticks of 1/100 s


@dataclass
class Sample:
    at: float
    rss: int  # the operator's own process
    workers_pss: int  # its child processes (the log-work pool), proportional share
    cpu: float  # seconds, the operator and its children


def sample(pid: int) -> Sample:
    kids = _descendants(pid)
    return Sample(
        time.monotonic(),
        _field(f"/proc/{pid}/status", "VmRSS"),
        sum(_field(f"/proc/{k}/smaps_rollup", "Pss") for k in kids),
        _cpu(pid) + sum(_cpu(k) for k in kids),
    )


class Sampler(threading.Thread):
    """Samples the operator every ``every`` seconds, and when each canary pod's log was first read."""

    def __init__(self, pid: int, kubelet: TestKubelet, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.kubelet, self.every = pid, kubelet, every
        self.samples: list[Sample] = []
        self.first_read: dict[str, float] = {}
        self._seen = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append(sample(self.pid))
            requests = self.kubelet.requests
            for path in requests[self._seen : len(requests)]:
                parts = path.split("?")[0].strip("/").split("/")  # containerLogs/<namespace>/<pod>/<container>
                if len(parts) == 4:
                    self.first_read.setdefault(f"{parts[1]}/{parts[2]}", time.monotonic())
            self._seen = len(requests)
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def window(self, start: float, end: float | None = None) -> list[Sample]:
        return [s for s in self.samples if s.at >= start and (end is None or s.at <= end)]


# --- the Argo objects, written as Argo writes them ----------------------------------------------------


def healthy(rng: random.Random, at: datetime) -> str:
    ip = f"10.244.{rng.randint(0, 3)}.{rng.randint(2, 250)}:{rng.randint(32768, 60999)}"
    return f"{go_log_time(at)} {ip} GET /color 200 {rng.choice(COLOURS)} {rng.uniform(0.1, 4):.2f}ms"


def build(admin: Any, kubelet: TestKubelet, ns: str, i: int) -> None:
    name, rng, now = f"r{i:04d}", random.Random(i), datetime.now(UTC)
    argo = ARGO.format(ns=ns)
    ro = admin.create(
        f"{argo}/rollouts",
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": name, "labels": {"bench": "scale"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": "demo:v2"}]},
                },
                "strategy": {"canary": {"steps": STEPS}},
            },
        },
    )
    admin.patch(
        f"{argo}/rollouts/{name}/status",
        {
            "status": {
                "phase": "Progressing",
                "currentPodHash": CANARY,
                "stableRS": STABLE,
                "currentStepIndex": 0,
                "observedGeneration": str(ro["metadata"].get("generation", 1)),
            }
        },
    )
    owner = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": name, "uid": ro["metadata"]["uid"]}
    for pod_hash, revision in ((STABLE, "1"), (CANARY, "2")):
        labels = {"app": name, "rollouts-pod-template-hash": pod_hash}
        rs = admin.create(
            f"/apis/apps/v1/namespaces/{ns}/replicasets",
            {
                "metadata": {
                    "name": f"{name}-{pod_hash}",
                    "labels": labels,
                    "annotations": {"rollout.argoproj.io/revision": revision},
                    "ownerReferences": [{**owner, "controller": True}],
                },
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "app", "image": f"demo:v{revision}"}]},
                    },
                },
            },
        )
        pod = f"{name}-{pod_hash}-0"
        admin.create(
            f"/api/v1/namespaces/{ns}/pods",
            {
                "metadata": {
                    "name": pod,
                    "labels": labels,
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "ReplicaSet",
                            "name": rs["metadata"]["name"],
                            "uid": rs["metadata"]["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": {"nodeName": NODE_NAME, "containers": [{"name": "app", "image": f"demo:v{revision}"}]},
            },
        )
        admin.patch(
            f"/api/v1/namespaces/{ns}/pods/{pod}/status",
            {
                "status": {
                    "phase": "Running",
                    "startTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "containerStatuses": [
                        {
                            "name": "app",
                            "image": f"demo:v{revision}",
                            "imageID": "",
                            "ready": True,
                            "restartCount": 0,
                            "started": True,
                            "state": {"running": {"startedAt": now.strftime("%Y-%m-%dT%H:%M:%SZ")}},
                        }
                    ],
                }
            },
        )
        kubelet.append(ns, pod, "app", *(healthy(rng, now) for _ in range(LINES)))
    admin.create(
        f"{argo}/analysisruns",
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisRun",
            "metadata": {
                "name": f"{name}-{CANARY}-2",
                "labels": {"rollouts-pod-template-hash": CANARY, "rollout-type": "Step"},
                "ownerReferences": [{**owner, "controller": True, "blockOwnerDeletion": True}],
            },
            "spec": {"metrics": [{"name": "success-rate", "provider": {"prometheus": {"query": "up"}}}]},
            "status": {"phase": "Successful", "metricResults": [{"name": "success-rate", "phase": "Successful"}]},
        },
    )


def policy() -> dict[str, Any]:
    return {
        "apiVersion": "selfheal.dev/v1alpha1",
        "kind": "SelfHealingPolicy",
        "metadata": {"name": "fleet"},
        "spec": {
            "selector": {"matchLabels": {"bench": "scale"}},
            "triggers": {"indefinitePause": True, "analysisFailed": True, "logWatch": {"enabled": True}},
            "analysis": {"llm": {"provider": "none"}},
            "decision": {"onUnhealthy": "abort", "onHealthy": "none"},
            # A fleet's budget: every failing canary is analyzed (the default, 30 an hour, would stop at 30).
            "budget": {"analysesPerHour": 3600},
        },
    }


# --- one scenario --------------------------------------------------------------------------------------


class AbortWatch(threading.Thread):
    """Watches the namespace's Rollouts and records when each is first seen aborted."""

    def __init__(self, cp: ControlPlane, ns: str, resource_version: str) -> None:
        super().__init__(daemon=True)
        self.url = f"{cp.url}{ARGO.format(ns=ns)}/rollouts"
        self.client = httpx.Client(verify=cp.ca_file, headers={"Authorization": f"Bearer {cp.admin_token}"})
        self.rv = resource_version
        self.aborted: dict[str, float] = {}

    def run(self) -> None:
        params = {"watch": "1", "resourceVersion": self.rv, "timeoutSeconds": "900"}
        try:
            with self.client.stream("GET", self.url, params=params, timeout=None) as response:
                for line in response.iter_lines():
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if (obj.get("status") or {}).get("abort"):
                        self.aborted.setdefault(obj["metadata"]["name"], time.monotonic())
        except (httpx.HTTPError, ValueError):
            pass

    def close(self) -> None:
        self.client.close()


@dataclass
class Result:
    governed: int
    failing: int
    build_s: float = 0.0
    first_status_s: float = 0.0
    status_s: float = 0.0
    pass_s: float | None = None
    idle_rss: int = 0
    idle_workers: int = 0
    latencies: list[float] = field(default_factory=list)
    missed: int = 0
    peak_rss: int = 0
    peak_workers: int = 0
    burst_cpu: float = 0.0
    idle_cpu_per_min: float = 0.0
    soak: tuple[float, float, float, float] | None = None  # seconds, first and last RSS (MiB), MiB per hour
    stop_s: float = 0.0
    clean_log: bool = True


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


def slope_mib_per_hour(samples: list[Sample]) -> float:
    xs = [s.at for s in samples]
    ys = [s.rss / 2**20 for s in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs) or 1.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den * 3600


def run_scenario(
    cp: ControlPlane, kubelet: TestKubelet, governed: int, failing: int, args: argparse.Namespace
) -> Result:
    assert cp.admin is not None
    admin, res = cp.admin, Result(governed, failing)
    ns = f"scale-{governed}-{failing}-{uuid.uuid4().hex[:4]}"
    cp.ensure_namespace(ns)
    started = time.monotonic()
    with ThreadPoolExecutor(args.writers) as pool:
        list(pool.map(lambda i: build(admin, kubelet, ns, i), range(governed)))
    res.build_s = time.monotonic() - started
    admin.create(POLICY.format(ns=ns), policy())

    env = {"SELFHEAL_POLICY_TICK_SECONDS": str(args.tick)}
    if args.as_image:
        env["PYTHONPATH"] = os.pathsep.join([args.as_image, str(package_root())])
    operator = OperatorProcess(
        cp.kubeconfig, namespaces=[ns], env=env, extra_args=[f"--log-level={args.log_level}"]
    ).start()
    assert operator.proc is not None
    sampler = Sampler(operator.proc.pid, kubelet)
    sampler.start()
    try:
        t0 = time.monotonic()
        admin.wait_for(
            lambda: (admin.get(f"{POLICY.format(ns=ns)}/fleet").get("status") or {}).get("matchedCount") == governed,
            timeout=300,
            interval=0.2,
            message="matchedCount",
        )
        res.first_status_s = time.monotonic() - t0
        canaries = {f"{ns}/r{i:04d}-{CANARY}-0" for i in range(governed)}
        deadline = t0 + args.settle
        while time.monotonic() < deadline or (res.pass_s is None and time.monotonic() < t0 + args.pass_cap):
            if res.pass_s is None and canaries <= set(sampler.first_read):
                res.pass_s = max(sampler.first_read[c] for c in canaries) - t0
            time.sleep(0.5)
        # One more Rollout while the operator runs: how soon the policy's status counts it.
        added = time.monotonic()
        build(admin, kubelet, ns, governed)
        admin.wait_for(
            lambda: (
                (admin.get(f"{POLICY.format(ns=ns)}/fleet").get("status") or {}).get("matchedCount") == governed + 1
            ),
            timeout=120,
            interval=0.2,
            message="matchedCount after a new Rollout",
        )
        res.status_s = time.monotonic() - added
        idle = sampler.window(time.monotonic() - 10)
        res.idle_rss = max(s.rss for s in idle)
        res.idle_workers = max(s.workers_pss for s in idle)
        res.idle_cpu_per_min = (idle[-1].cpu - idle[0].cpu) / max(1e-9, idle[-1].at - idle[0].at) * 60

        if failing:
            rv = admin.get(f"{ARGO.format(ns=ns)}/rollouts")["metadata"]["resourceVersion"]
            watch = AbortWatch(cp, ns, rv)
            watch.start()
            time.sleep(0.5)
            chosen = [f"r{i:04d}" for i in random.Random(governed).sample(range(governed), failing)]
            triggered: dict[str, float] = {}

            def trigger(name: str) -> None:
                rng, now = random.Random(name), datetime.now(UTC)
                kubelet.append(
                    ns, f"{name}-{CANARY}-0", "app", *(line for _ in range(5) for line in panic_trace(rng, now))
                )
                admin.patch(
                    f"{ARGO.format(ns=ns)}/rollouts/{name}/status",
                    {
                        "status": {
                            "phase": "Paused",
                            "message": "CanaryPauseStep",
                            "currentStepIndex": 1,
                            "controllerPause": True,
                            "pauseConditions": [
                                {"reason": "CanaryPauseStep", "startTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
                            ],
                        }
                    },
                )
                triggered[name] = time.monotonic()

            burst = time.monotonic()
            with ThreadPoolExecutor(args.writers) as pool:
                list(pool.map(trigger, chosen))
            end = time.monotonic() + args.burst_cap
            while time.monotonic() < end and not set(chosen) <= set(watch.aborted):
                time.sleep(0.1)
            window = [*sampler.window(burst - sampler.every), sample(operator.proc.pid)]
            res.latencies = [watch.aborted[n] - triggered[n] for n in chosen if n in watch.aborted]
            if len(res.latencies) < failing:
                missed = sorted(set(chosen) - set(watch.aborted))
                print(f"  not aborted: {', '.join(missed[:10])}; log {operator.log_path}", file=sys.stderr)
                for name in missed[:3]:
                    said = admin.items(f"/api/v1/namespaces/{ns}/events", fieldSelector=f"involvedObject.name={name}")
                    for e in said:
                        print(f"    {name}: {e.get('reason')}: {str(e.get('message'))[:300]}", file=sys.stderr)
            res.missed = failing - len(res.latencies)
            res.peak_rss = max(s.rss for s in window)
            res.peak_workers = max(s.workers_pss for s in window)
            res.burst_cpu = window[-1].cpu - window[0].cpu
            watch.close()

        if args.soak and governed == max(g for g, _ in args.pairs):
            begin = time.monotonic()
            while time.monotonic() < begin + args.soak:
                time.sleep(1)
            soaked = [s for s in sampler.window(begin) if round((s.at - begin) * 4) % 20 == 0] or sampler.window(begin)
            n = max(1, len(soaked) // 10)
            first = statistics.fmean(s.rss for s in soaked[:n]) / 2**20
            last = statistics.fmean(s.rss for s in soaked[-n:]) / 2**20
            res.soak = (args.soak, first, last, slope_mib_per_hour(soaked))
    finally:
        sampler.stop()
        stopping = time.monotonic()
        operator.stop(timeout=60)
        res.stop_s = time.monotonic() - stopping
        out = operator.output()
        res.clean_log = not any(bad in out for bad in ("Traceback", "did not exit in time", "AssertionError"))
        if not res.clean_log:
            print(f"  operator log with errors kept in {operator.log_path}", file=sys.stderr)
    return res


def _image_site() -> str:
    """A folder whose sitecustomize hides the test-only Kubernetes clients from the operator, as in the image
    (Kopf imports the synchronous ``kubernetes`` client and ``pykube`` when they are installed)."""
    folder = tempfile.mkdtemp(prefix="bench-scale-site-")
    Path(folder, "sitecustomize.py").write_text(
        "import sys\nsys.modules['kubernetes'] = None\nsys.modules['pykube'] = None\n"
    )
    return folder


def mib(n: int) -> str:
    return f"{n / 2**20:.0f}"


def report(results: list[Result]) -> None:
    print(
        "\n| governed | failing at once | abort latency p50 / p95 / p99 / max (s) | missed | RSS idle / peak (MiB) | workers PSS idle / peak (MiB) | CPU s in the burst | idle CPU s/min | policy status after a new Rollout | full log-watch pass | stop |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        lat = r.latencies
        latency = " / ".join(f"{pct(lat, q):.2f}" for q in (0.5, 0.95, 0.99)) + f" / {max(lat):.2f}" if lat else "-"
        print(
            f"| {r.governed} | {r.failing} | {latency} | {r.missed} | {mib(r.idle_rss)} / {mib(r.peak_rss)} | "
            f"{mib(r.idle_workers)} / {mib(r.peak_workers)} | {r.burst_cpu:.1f} | {r.idle_cpu_per_min:.1f} | "
            f"{r.status_s:.1f} s | {f'{r.pass_s:.0f} s' if r.pass_s is not None else 'not within the cap'} | "
            f"{r.stop_s:.1f} s{'' if r.clean_log else ' (errors in log)'} |"
        )
    for r in results:
        if r.soak:
            seconds, first, last, slope = r.soak
            print(
                f"\nRSS over {seconds:.0f} s with {r.governed} governed (log watch on): {first:.1f} MiB at the start, "
                f"{last:.1f} MiB at the end, trend {slope:+.1f} MiB/hour"
            )
    print(
        "\nfirst policy status from the operator's start (process start included): "
        + ", ".join(f"{r.first_status_s:.1f} s with {r.governed}" for r in results)
    )
    print(f"\nbuilding the objects: {', '.join(f'{r.governed} in {r.build_s:.0f} s' for r in results)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default=DEFAULT_SCENARIOS, help="GOVERNEDxFAILING pairs, comma-separated")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds of idle operation before the trigger")
    parser.add_argument("--pass-cap", type=float, default=75.0, help="how long to wait for a full log-watch pass")
    parser.add_argument("--burst-cap", type=float, default=120.0, help="how long to wait for every abort")
    parser.add_argument("--soak", type=float, default=90.0, help="seconds of RSS trend with the most Rollouts")
    parser.add_argument("--tick", type=float, default=10.0, help="SELFHEAL_POLICY_TICK_SECONDS")
    parser.add_argument("--writers", type=int, default=8, help="threads writing the objects")
    parser.add_argument("--log-level", default="info", help="the operator's log level")
    parser.add_argument(
        "--with-test-clients",
        action="store_true",
        help="let the operator import the test-only clients Kopf picks up when installed (kubernetes, pykube)",
    )
    args = parser.parse_args()
    args.as_image = None if args.with_test_clients else _image_site()
    args.pairs = [tuple(int(x) for x in pair.split("x")) for pair in args.scenarios.split(",")]
    results = []
    with ControlPlane() as cp, TestKubelet.for_control_plane(cp) as kubelet:
        kubelet.register_node(cp)
        for governed, failing in args.pairs:
            print(f"{governed} governed, {failing} failing at once ...", file=sys.stderr, flush=True)
            results.append(run_scenario(cp, kubelet, governed, failing, args))
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
