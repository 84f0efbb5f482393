"""Bounded concurrency for the operator's own work: one priority queue, one entry per key, a fixed number of workers."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field

from selfheal.domain.schedule import Priority

log = logging.getLogger(__name__)

Work = Callable[[], Awaitable[object]]


@dataclass(order=True)
class _Entry:
    priority: int
    rank: float
    seq: int
    key: Hashable = field(compare=False)
    work: Work = field(compare=False)
    live: bool = field(default=True, compare=False)


class Scheduler:
    """Runs submitted work ``workers`` at a time, the lowest (priority, rank) first, once :attr:`active` is set.

    Routine work never takes every worker: ``caps`` bounds how many jobs of a priority run at once (by default
    log-watch looks take at most half the workers), so a decision somebody waits for starts at once.

    A key (one canary, one ticket, one policy) is never queued twice nor run twice at once: submitting
    a queued key again keeps one entry, with the better priority and the newest work (the latest
    observation of the object); submitting a running key queues it once more for when the run ends.

    :attr:`active` is the one seam between the scheduler and replica coordination: workers take no
    job while it is clear (jobs already running finish), and queued jobs wait for it.
    """

    def __init__(self, workers: int, caps: Mapping[Priority, int] | None = None) -> None:
        self.size = max(1, workers)
        self.caps = dict(caps) if caps is not None else {Priority.LOG_WATCH: max(1, self.size // 2)}
        self._running_by: Counter[int] = Counter()
        self.active = asyncio.Event()
        self._heap: list[_Entry] = []
        self._queued: dict[Hashable, _Entry] = {}
        self._again: dict[Hashable, _Entry] = {}
        self._running: set[Hashable] = set()
        self._busy: set[asyncio.Task[None]] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._seq = itertools.count()
        self._stopping = False

    # -- what callers do -------------------------------------------------------------------------------

    def submit(self, key: Hashable, priority: Priority, work: Work, *, rank: float = 0.0) -> None:
        """Queue ``work`` under ``key`` (see the class docstring for a key already queued or running)."""
        if self._stopping:
            return
        entry = _Entry(int(priority), rank, next(self._seq), key, work)
        if key in self._running:
            self._again[key] = _better(self._again.get(key), entry)
            return
        current = self._queued.get(key)
        if current is None:
            self._push(entry)
        elif entry.priority < current.priority:
            current.live = False
            self._push(entry)
        elif entry.priority == current.priority:
            current.work = work  # the newest observation; the place in the queue is kept

    def busy(self, key: Hashable) -> bool:
        """Whether ``key`` is queued or running."""
        return key in self._queued or key in self._running

    def depth(self) -> dict[Priority, int]:
        """Queued jobs by priority."""
        counts = Counter(Priority(e.priority) for e in self._queued.values())
        return {p: counts.get(p, 0) for p in Priority}

    @property
    def running(self) -> int:
        return len(self._running)

    async def join(self) -> None:
        """Wait until nothing is queued or running."""
        await self._idle.wait()

    # -- life cycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers (they wait for :attr:`active`)."""
        if not self._workers:
            self._stopping = False
            self._workers = [asyncio.create_task(self._work(), name=f"selfheal-worker-{i}") for i in range(self.size)]

    async def stop(self, grace: float) -> None:
        """Take no more jobs, let the running ones finish for up to ``grace`` seconds, then cancel them."""
        self._stopping = True
        self._wake.set()
        idle = [t for t in self._workers if t not in self._busy]
        for task in idle:
            task.cancel()
        busy = [t for t in self._workers if t in self._busy]
        if busy:
            _, late = await asyncio.wait(busy, timeout=grace)
            for task in late:
                log.warning("a job was still running after %.0fs of shutdown; cancelled", grace)
                task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()
        self._heap.clear()
        self._queued.clear()
        self._again.clear()

    # -- inside ---------------------------------------------------------------------------------------

    def _push(self, entry: _Entry) -> None:
        heapq.heappush(self._heap, entry)
        self._queued[entry.key] = entry
        self._idle.clear()
        self._wake.set()

    def _pop(self) -> _Entry | None:
        """The most urgent entry, unless its priority already runs as many jobs as its cap allows (everything
        behind it is as routine: the worker waits for a job to end or a more urgent one to come)."""
        while self._heap:
            entry = self._heap[0]
            if not entry.live:
                heapq.heappop(self._heap)
                continue
            cap = self.caps.get(Priority(entry.priority))
            if cap is not None and self._running_by[entry.priority] >= cap:
                return None
            heapq.heappop(self._heap)
            del self._queued[entry.key]
            return entry
        return None

    async def _work(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        while not self._stopping:
            await self.active.wait()
            entry = self._pop()
            if entry is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            self._running.add(entry.key)
            self._running_by[entry.priority] += 1
            self._busy.add(me)
            try:
                await entry.work()
            except Exception:  # a job's own fault must not stop the worker; the job logs what it expects
                log.exception("job %s failed unexpectedly", entry.key)
            finally:
                self._busy.discard(me)
                self._running.discard(entry.key)
                self._running_by[entry.priority] -= 1
                self._wake.set()  # a worker held back by a cap may take the next job now
                again = self._again.pop(entry.key, None)
                if again is not None and not self._stopping:
                    self._push(again)
                if not self._queued and not self._running:
                    self._idle.set()


def _better(old: _Entry | None, new: _Entry) -> _Entry:
    """The entry to keep when a key is asked for twice: the better priority, the newest work."""
    if old is None or new.priority < old.priority:
        return new
    if new.priority == old.priority:
        old.work = new.work
    return old
