"""What the operator builds once at startup and shares: clients, clock, caches, in-flight guards, the ledger,
the job queue, the worker processes and the indexes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from selfheal import __version__
from selfheal.adapters.github import GitHubClient
from selfheal.adapters.kube import KubeAdapter, connect
from selfheal.adapters.metrics import MetricsServer, OperatorMetrics, start_metrics_server, stop_metrics_server
from selfheal.config import CONFIG, OperatorConfig
from selfheal.domain.evidence import Evidence, Side
from selfheal.services.indexes import Indexes
from selfheal.services.ledger import Ledger
from selfheal.services.locks import KeyedLocks
from selfheal.services.notify import Announcements
from selfheal.services.ports import GitHubConnector, GitHubPort, KubePort
from selfheal.services.scheduler import Scheduler
from selfheal.services.workers import CpuPool, available_cores

log = logging.getLogger(__name__)

MAX_SNAPSHOTS = 256
MAX_HANDLED_RUNS = 10_000


def utcnow() -> datetime:
    return datetime.now(UTC)


def connect_github(
    api_url: str, token: str, repository: str, *, observe: Callable[..., None] | None = None
) -> GitHubPort:
    """The GitHub client the operator uses: conditional requests, and it holds off when rate limited;
    ``observe`` is told how long each request took (the latency metric)."""
    return GitHubClient(api_url, token, repository, conditional=True, hold_off=True, observe=observe)


@dataclass
class Usage:
    """Analyses and tokens one policy spent, for its budget and its status."""

    hour_start: datetime | None = None
    this_hour: int = 0
    analyses_total: int = 0
    day: str = ""
    tokens_today: int = 0
    tokens_total: int = 0
    last_analysis: datetime | None = None
    loaded: bool = False

    def roll(self, now: datetime) -> None:
        if self.hour_start is None or (now - self.hour_start).total_seconds() >= 3600:
            self.hour_start, self.this_hour = now.replace(minute=0, second=0, microsecond=0), 0
        if self.day != now.date().isoformat():
            self.day, self.tokens_today = now.date().isoformat(), 0

    def count_analysis(self, now: datetime) -> None:
        self.roll(now)
        self.this_hour += 1
        self.analyses_total += 1
        self.last_analysis = now

    def count_tokens(self, tokens: int, now: datetime) -> None:
        self.roll(now)
        self.tokens_today += tokens
        self.tokens_total += tokens


@dataclass
class Runtime:
    """Kept in Kopf's memo; closed at cleanup."""

    api_client: Any
    kube: KubePort
    config: OperatorConfig = CONFIG
    clock: Callable[[], datetime] = utcnow
    github: GitHubConnector = connect_github
    # What the operator counts, served at /metrics when `selfheal run --metrics-port` asks for it.
    metrics: OperatorMetrics = field(default_factory=lambda: OperatorMetrics.create(__version__))
    metrics_server: MetricsServer | None = None
    # What the watches know (Kopf's indexes, bound at start-up).
    indexes: Indexes = field(default_factory=Indexes)
    # The operator's own work, a bounded number of jobs at a time, most urgent first.
    scheduler: Scheduler = field(default_factory=lambda: Scheduler(CONFIG.concurrency))
    # Where the CPU-bound log work runs (a thread unless start-up sized a process pool).
    cpu: CpuPool = field(default_factory=lambda: CpuPool(0))
    background: list[asyncio.Task[None]] = field(default_factory=list)
    # Canaries being analyzed right now: (namespace, rollout, pod hash).
    in_flight: set[tuple[str, ...]] = field(default_factory=set)
    # Clients built on first use and reused: keyed by (kind, endpoint, credential digest, ...).
    clients: dict[tuple[str, ...], Any] = field(default_factory=dict)
    # The last GitHub access check per (api URL, repository): the client asked and its answer.
    github_access: dict[tuple[str, str], tuple[Any, Any]] = field(default_factory=dict)
    # Per policy (namespace, name): analyses and tokens spent.
    usage: dict[tuple[str, str], Usage] = field(default_factory=dict)
    # When each (namespace, policy, rollout) canary's logs were last looked at.
    last_look: dict[tuple[str, str, str], datetime] = field(default_factory=dict)
    # The latest evidence per (namespace, rollout, canary hash), kept while the canary lives: a
    # basic canary's pods are gone right after an abort, its logs with them.
    snapshots: OrderedDict[tuple[str, str, str], Evidence] = field(default_factory=OrderedDict)
    # Failed AnalysisRuns already analyzed: (namespace, name, uid).
    handled_runs: set[tuple[str, str, str]] = field(default_factory=set)
    # One lock per key (a ticket, an issue), pruned as soon as nobody holds or awaits it.
    locks: KeyedLocks = field(default_factory=KeyedLocks)
    # Ticket phases being announced, and each policy's last notification failure.
    announcements: Announcements = field(default_factory=Announcements)
    # What was judged and done about each live canary, kept in the governing policy's status.
    ledger: Ledger = field(init=False)

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.kube)

    def lock(self, key: str) -> asyncio.Lock:
        return self.locks(key)

    def usage_of(self, namespace: str, policy: str) -> Usage:
        return self.usage.setdefault((namespace, policy), Usage())

    def keep_snapshot(self, evidence: Evidence) -> None:
        """Keep the canary side only: the stable pods outlive an abort, their logs can be read again."""
        key = (evidence.namespace, evidence.rollout, evidence.canary_hash)
        self.snapshots[key] = evidence.model_copy(update={"pods": evidence.side(Side.CANARY)})
        self.snapshots.move_to_end(key)
        while len(self.snapshots) > MAX_SNAPSHOTS:
            self.snapshots.popitem(last=False)

    def forget_revisions(self, namespace: str, rollout: str, keep: set[str]) -> None:
        """Drop what is remembered about a Rollout's revisions other than ``keep`` (all when empty):
        memory stays bounded by the live canaries, however long the operator runs."""
        for key in [k for k in self.snapshots if k[0] == namespace and k[1] == rollout and k[2] not in keep]:
            del self.snapshots[key]
        if len(self.handled_runs) > MAX_HANDLED_RUNS:  # failed runs are checked against tickets anyway
            self.handled_runs.clear()

    async def serve_metrics(self, port: int, host: str = "0.0.0.0") -> MetricsServer:
        """Start the metrics endpoint (once); stopped by ``aclose``."""
        if self.metrics_server is None:
            self.metrics_server = await start_metrics_server(self.metrics.registry, host, port)
        return self.metrics_server

    async def start(self, *rounds: Coroutine[Any, Any, None]) -> None:
        """Start the job workers and the worker processes (warmed up in the background: start-up does not wait
        for them), and run ``rounds`` (the periodic planning) beside them."""
        self.cpu.start()
        self.scheduler.start()
        self.background += [asyncio.create_task(r, name="selfheal-rounds") for r in rounds]
        self.background.append(asyncio.create_task(self._warm_up(), name="selfheal-cpu-warm-up"))

    async def _warm_up(self) -> None:
        await self.cpu.warm_up()

    async def stop(self) -> None:
        """Stop planning and taking jobs; running jobs get ``shutdown_grace_seconds`` to finish."""
        for task in self.background:
            task.cancel()
        for task in self.background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.background.clear()
        await self.scheduler.stop(self.config.shutdown_grace_seconds)
        await self.cpu.aclose()

    async def aclose(self) -> None:
        await self.stop()
        await self.announcements.aclose()
        if self.metrics_server is not None:
            server, self.metrics_server = self.metrics_server, None
            await stop_metrics_server(server)
        for client in self.clients.values():
            closer = getattr(client, "aclose", None)
            if closer is not None:
                await closer()
        self.clients.clear()
        await self.api_client.close()


async def build_runtime() -> Runtime:
    api_client = await connect()
    metrics = OperatorMetrics.create(__version__)
    github = partial(connect_github, observe=metrics.github_request_seconds.observe)
    cpu_workers = CONFIG.cpu_workers if CONFIG.cpu_workers is not None else available_cores()
    indexes = Indexes()
    return Runtime(
        api_client=api_client,
        kube=KubeAdapter(api_client, known_tickets=indexes.ticket_names),
        indexes=indexes,
        metrics=metrics,
        github=github,
        cpu=CpuPool(cpu_workers),
    )
