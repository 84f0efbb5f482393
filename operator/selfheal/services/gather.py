"""Evidence gathering: bounded pod states, log tails, events and failed metrics of a canary and its stable side."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from selfheal.domain.argo import (
    AnalysisRun,
    Rollout,
    canary_hash,
    current_step_description,
    stable_hash,
)
from selfheal.domain.evidence import (
    ContainerState,
    EventRecord,
    Evidence,
    FailedMetric,
    PodEvidence,
    PodLog,
    Side,
)
from selfheal.domain.timestamps import parse_time
from selfheal.errors import ConfigError, PermanentError, TransientError
from selfheal.services.ports import KubePort

log = logging.getLogger(__name__)

# Concurrent log reads per gathering.
MAX_CONCURRENT_LOG_READS = 8
# Unsuccessful AnalysisRuns of the canary hash looked at when none is given.
MAX_FAILED_RUNS = 3
# Added to "since the canary started" so that clock skew between us and the nodes loses no lines.
SINCE_MARGIN_SECONDS = 30


class LogsSpec(Protocol):
    """The log bounds of a policy (``LogBounds`` in ``domain/policy.py``), read only."""

    @property
    def tail_lines(self) -> int: ...
    @property
    def limit_bytes(self) -> int: ...
    @property
    def since_canary_start(self) -> bool: ...
    @property
    def pods_per_side(self) -> int: ...
    @property
    def previous_container(self) -> bool: ...
    @property
    def containers(self) -> Sequence[str]: ...


def container_states(pod: Mapping[str, Any]) -> list[ContainerState]:
    """One ContainerState per container of the pod spec, filled from ``status.containerStatuses``."""
    spec = pod.get("spec") or {}
    statuses = {s.get("name"): s for s in (pod.get("status") or {}).get("containerStatuses") or []}
    out = []
    for container in spec.get("containers") or []:
        name = container.get("name", "")
        status = statuses.get(name) or {}
        state = status.get("state") or {}
        last = (status.get("lastState") or {}).get("terminated") or {}
        terminated = state.get("terminated") or {}
        finished = last or terminated
        out.append(
            ContainerState(
                name=name,
                image=status.get("image") or container.get("image", ""),
                ready=bool(status.get("ready")),
                restart_count=int(status.get("restartCount") or 0),
                waiting_reason=(state.get("waiting") or {}).get("reason") or "",
                last_terminated_reason=finished.get("reason") or "",
                last_exit_code=finished.get("exitCode"),
            )
        )
    return out


def pod_is_ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def choose_pods(pods: Sequence[Mapping[str, Any]], limit: int) -> list[Mapping[str, Any]]:
    """At most ``limit`` pods, restarted or unready ones first, then most restarts, then by name."""

    def key(pod: Mapping[str, Any]) -> tuple[int, int, int, str]:
        restarts = sum(c.restart_count for c in container_states(pod))
        troubled = restarts > 0 or not pod_is_ready(pod)
        deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
        return (0 if troubled else 1, 1 if deleting else 0, -restarts, (pod.get("metadata") or {}).get("name", ""))

    return sorted(pods, key=key)[: max(0, limit)]


async def _canary_start(kube: KubePort, ro: Rollout, pod_hash: str) -> datetime | None:
    """When the canary ReplicaSet ``<rollout>-<hash>`` was created."""
    rs = await kube.get_replicaset(ro.namespace, ro.replicaset_name(pod_hash))
    if rs is None:
        return None
    return parse_time((rs.get("metadata") or {}).get("creationTimestamp"))


async def _read(
    kube: KubePort,
    gate: asyncio.Semaphore,
    namespace: str,
    pod: str,
    container: str,
    logs: LogsSpec,
    since_seconds: int | None,
    previous: bool,
) -> PodLog:
    async with gate:
        try:
            text = await kube.read_log(
                namespace,
                pod,
                container,
                tail_lines=logs.tail_lines,
                limit_bytes=logs.limit_bytes,
                since_seconds=since_seconds,
                previous=previous,
            )
        except (PermanentError, TransientError) as e:
            # One unreadable log (a node gone NotReady, a pod being deleted) must not cost the other
            # evidence, but it is recorded: the verdict names it and never calls the canary healthy
            # on what it could not read. A missing permission (ConfigError) is not swallowed: it
            # says what to grant.
            log.warning("log of %s/%s container %s unreadable: %s", namespace, pod, container, e)
            reason = str(e).strip() or type(e).__name__
            return PodLog(pod=pod, container=container, previous=previous, error=reason[:300])
    truncated = len(text.encode()) >= logs.limit_bytes or text.count("\n") >= logs.tail_lines
    return PodLog(pod=pod, container=container, previous=previous, text=text, truncated=truncated)


async def _pod_evidence(
    kube: KubePort,
    gate: asyncio.Semaphore,
    namespace: str,
    pod: Mapping[str, Any],
    side: Side,
    logs: LogsSpec,
    since_seconds: int | None,
) -> PodEvidence:
    name = (pod.get("metadata") or {}).get("name", "")
    states = container_states(pod)
    wanted = [c for c in states if not logs.containers or c.name in logs.containers]
    reads = []
    for container in wanted:
        reads.append(_read(kube, gate, namespace, name, container.name, logs, since_seconds, previous=False))
        if logs.previous_container and container.restart_count > 0:
            reads.append(_read(kube, gate, namespace, name, container.name, logs, since_seconds, previous=True))
    pod_logs = await asyncio.gather(*reads)
    return PodEvidence(
        name=name,
        side=side,
        phase=(pod.get("status") or {}).get("phase") or "",
        ready=pod_is_ready(pod),
        containers=states,
        logs=list(pod_logs),
    )


async def _failed_metrics(
    kube: KubePort, ro: Rollout, pod_hash: str, analysis_run: AnalysisRun | None, runs: Sequence[AnalysisRun] | None
) -> tuple[list[FailedMetric], str]:
    """The failed metrics of the run given, else of the last unsuccessful runs of the revision: from the
    watch when it knows them (no request), else listed by the revision's label (a few, not the namespace)."""
    if analysis_run is not None:
        return analysis_run.failed_metrics(), analysis_run.message
    if not pod_hash:
        return [], ""
    if runs is None:
        runs = await kube.list_analysis_runs(ro.namespace, ro.uid, pod_hash=pod_hash)
    failed = [run for run in runs if run.pod_hash == pod_hash and run.unsuccessful][-MAX_FAILED_RUNS:]
    metrics = [metric for run in reversed(failed) for metric in run.failed_metrics()]
    return metrics, failed[-1].message if failed else ""


async def _events(kube: KubePort, namespace: str, names: set[str]) -> list[EventRecord]:
    try:
        return await kube.list_events(namespace, names)
    except ConfigError as e:
        # Events enrich the evidence; without the permission the analysis goes on without them.
        log.warning("events not gathered: %s", e)
        return []


async def gather_evidence(
    kube: KubePort,
    ro: Rollout,
    logs: LogsSpec,
    *,
    trigger: str,
    now: datetime,
    analysis_run: AnalysisRun | None = None,
    runs: Sequence[AnalysisRun] | None = None,
) -> Evidence:
    """Collect the evidence about the Rollout's canary, reading at most pods_per_side x containers x 2 logs.

    ``runs``: the Rollout's unsuccessful AnalysisRuns as the operator's watch knows them (None: listed).
    """
    namespace = ro.namespace
    new_hash = canary_hash(ro) or ro.status.current_pod_hash
    old_hash = stable_hash(ro)
    canary_since = await _canary_start(kube, ro, new_hash) if new_hash else None
    since_seconds = None
    if logs.since_canary_start and canary_since is not None:
        since_seconds = max(0, math.ceil((now - canary_since).total_seconds())) + SINCE_MARGIN_SECONDS

    sides: list[tuple[Side, str]] = []
    if new_hash:
        sides.append((Side.CANARY, new_hash))
    if old_hash and old_hash != new_hash:
        sides.append((Side.STABLE, old_hash))
    listed = await asyncio.gather(*(kube.list_pods(namespace, ro.selector, h) for _, h in sides))

    gate = asyncio.Semaphore(MAX_CONCURRENT_LOG_READS)
    work = [
        _pod_evidence(kube, gate, namespace, pod, side, logs, since_seconds)
        for (side, _), pods in zip(sides, listed, strict=True)
        for pod in choose_pods(pods, logs.pods_per_side)
    ]
    pods = list(await asyncio.gather(*work))
    names = {p.name for p in pods} | {ro.name}
    events, (metrics, analysis_message) = await asyncio.gather(
        _events(kube, namespace, names),
        _failed_metrics(kube, ro, new_hash, analysis_run, runs),
    )
    return Evidence(
        namespace=namespace,
        rollout=ro.name,
        canary_hash=new_hash,
        stable_hash=old_hash or "",
        revision=ro.revision,
        step=current_step_description(ro),
        images=list(ro.images),
        trigger=trigger,
        canary_since=canary_since,
        pods=pods,
        events=events,
        failed_metrics=metrics,
        analysis_message=analysis_message,
    )
