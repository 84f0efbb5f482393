"""The process pool for CPU-bound log work (redaction, templating, diffing), sized to the cores the operator may use."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from selfheal.errors import TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")

# What a worker imports before its first job: the pure core and the redaction and diff code.
PRELOAD = ["selfheal.services.judge"]
# A worker is replaced after this many jobs, so that whatever one job left behind does not accumulate.
JOBS_PER_WORKER = 2000
# The delay suggested to a caller whose job was lost with a worker that died.
BROKEN_POOL_DELAY = 1.0


def available_cores(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup v2 CPU limit (a pod's limits.cpu)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def _ready() -> int:
    return os.getpid()


def _worker_started() -> None:
    """A worker leaves signals to the operator: a SIGTERM or Ctrl-C sent to the whole process group must not
    kill it under a running job; the operator stops its pool itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class CpuPool:
    """Runs pure functions in ``size`` worker processes (threads cannot run Python code in parallel); with
    ``size`` 0 it runs them in a thread, which keeps the event loop free but uses one core.

    The workers are forked from a server process that imported :data:`PRELOAD` once, so they share its
    pages; a worker that dies loses only the job it held (the caller gets a TransientError) and the pool
    is built again.
    """

    def __init__(self, size: int) -> None:
        self.size = max(0, size)
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False
        # Set once every worker is up: until then the work runs in a thread (starting the workers takes
        # seconds on a busy node, and nothing waits for them).
        self._warm = False
        self._warming: asyncio.Task[list[int]] | None = None

    def start(self) -> None:
        self._closed = False
        self._warm = False
        if self.size and self._pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            self._pool = ProcessPoolExecutor(
                self.size, mp_context=context, initializer=_worker_started, max_tasks_per_child=JOBS_PER_WORKER
            )

    async def warm_up(self) -> list[int]:
        """Start every worker now rather than on the first analysis; their process ids."""
        pool = self._pool
        if pool is None:
            return []
        loop = asyncio.get_running_loop()
        try:
            pids = list(await asyncio.gather(*(loop.run_in_executor(pool, _ready) for _ in range(self.size))))
        except BrokenProcessPool:  # the next job builds it again
            return []
        self._warm = pool is self._pool
        return pids

    def pids(self) -> list[int]:
        """The worker processes running now (for the memory figures)."""
        processes = getattr(self._pool, "_processes", None) or {}
        return sorted(processes)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        call = functools.partial(fn, *args, **kwargs)
        pool = self._pool
        if pool is None or not self._warm:
            return await asyncio.to_thread(call)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool, call)
        except BrokenProcessPool as e:
            if self._closed:  # stopping: the pool is not built again
                raise TransientError("the operator is stopping", delay=BROKEN_POOL_DELAY) from e
            if pool is self._pool:  # the first of its jobs to learn it builds the pool again
                log.warning("a log-analysis worker process died; starting the pool again")
                self.close()
                self.start()
                self._warming = asyncio.get_running_loop().create_task(self.warm_up())
            raise TransientError("the worker process analysing the logs died", delay=BROKEN_POOL_DELAY) from e

    def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=False, cancel_futures=True)

    async def aclose(self) -> None:
        """Close the pool and wait (off the loop) until its worker processes have exited: none outlives the
        operator."""
        pool = self._pool
        self.close()
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, True)
