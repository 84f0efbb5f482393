"""Leadership of the operator: only the replica holding the Lease runs, and it stops the moment it loses it.

`hold` takes the Lease before Kopf starts (so every handler, timer and task the operator starts is
exclusive at once), then renews it in a thread of its own; when a renewal has not succeeded within the
renew deadline the process exits, as controller-runtime does, and its successor takes over once the
Lease expires. A clean shutdown releases the Lease so a standby takes it at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from selfheal.adapters.kube import connect
from selfheal.adapters.lease import LeaseAdapter
from selfheal.domain import lease
from selfheal.domain.lease import LeaseRecord
from selfheal.errors import SelfHealError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseSettings:
    """Where the Lease lives and its timings (controller-runtime's defaults: 15 s, 10 s, 2 s)."""

    namespace: str
    name: str = "selfheal"
    duration_seconds: int = 15
    renew_deadline_seconds: float = 10.0
    retry_seconds: float = 2.0
    identity: str = field(
        default_factory=lambda: f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4()}"
    )


class Candidate:
    """One replica's view of the Lease: what it last observed and when that last changed (its own clock)."""

    def __init__(
        self, adapter: LeaseAdapter, settings: LeaseSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.adapter = adapter
        self.settings = settings
        self.clock = clock
        self._seen: tuple[str, datetime | None] | None = None
        self._seen_at = 0.0
        # Who held the Lease when last read ("" when nobody did).
        self.holder = ""

    async def try_hold(self) -> bool:
        """One attempt to take or renew the Lease; True when this replica holds it now."""
        current, version = await self.adapter.read()
        now = self.clock()
        self.holder = current.holder if current is not None else ""
        if current is not None and current.version != self._seen:
            self._seen, self._seen_at = current.version, now
        expired = current is not None and now - self._seen_at >= current.duration_seconds
        wanted = lease.claim(
            current, self.settings.identity, self.settings.duration_seconds, datetime.now(UTC), expired=expired
        )
        if wanted is None:
            return False
        try:
            await self.adapter.write(wanted, version)
        except SelfHealError as e:  # another candidate wrote first (409), or the apiserver is away
            log.debug("lease %s not taken: %s", self.settings.name, e)
            return False
        if current is None or current.holder != self.settings.identity:
            log.info(
                "leadership acquired: lease %s/%s held by %s",
                self.settings.namespace,
                self.settings.name,
                wanted.holder,
            )
        self._seen, self._seen_at = wanted.version, now
        self.holder = wanted.holder
        return True

    async def give_up(self) -> None:
        current, version = await self.adapter.read()
        released: LeaseRecord | None = lease.release(current, self.settings.identity)
        if released is not None:
            await self.adapter.write(released, version)
            log.info("leadership released: lease %s/%s", self.settings.namespace, self.settings.name)


class Leadership:
    """Take the Lease (blocking), keep it from a thread of its own, release it at the end."""

    def __init__(self, settings: LeaseSettings, *, on_lost: Callable[[], None]) -> None:
        self.settings = settings
        self.on_lost = on_lost
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="leadership", daemon=True)
        self._candidate: Candidate | None = None
        self._stopping = threading.Event()

    def acquire(self) -> None:
        """Wait until this replica holds the Lease, then keep renewing it in the background."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._acquire(), self._loop).result()
        asyncio.run_coroutine_threadsafe(self._keep(), self._loop)

    def release(self) -> None:
        """Give the Lease up (a standby takes it at once) and stop the thread."""
        self._stopping.set()
        if self._candidate is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._candidate.give_up(), self._loop).result(timeout=5)
            except Exception as e:  # the Lease then expires on its own
                log.warning("leadership not released (it expires within %ss): %s", self.settings.duration_seconds, e)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _acquire(self) -> None:
        api = await connect()
        self._candidate = Candidate(LeaseAdapter(api, self.settings.namespace, self.settings.name), self.settings)
        log.info(
            "standing by until lease %s/%s is free (identity %s)",
            self.settings.namespace,
            self.settings.name,
            self.settings.identity,
        )
        while True:
            if await self._attempt():
                return
            await asyncio.sleep(self.settings.retry_seconds)

    async def _attempt(self) -> bool:
        assert self._candidate is not None
        try:
            return await asyncio.wait_for(self._candidate.try_hold(), self.settings.retry_seconds * 2)
        except (SelfHealError, TimeoutError, OSError) as e:
            log.warning("lease %s: %s", self.settings.name, e)
            return False

    async def _keep(self) -> None:
        renewed = time.monotonic()
        while not self._stopping.is_set():
            await asyncio.sleep(self.settings.retry_seconds)
            if self._stopping.is_set():
                return
            if await self._attempt():
                renewed = time.monotonic()
                continue
            assert self._candidate is not None
            taken = self._candidate.holder not in ("", self.settings.identity)
            if taken or time.monotonic() - renewed >= self.settings.renew_deadline_seconds:
                why = (
                    f"taken by {self._candidate.holder}"
                    if taken
                    else f"not renewed for {self.settings.renew_deadline_seconds}s"
                )
                log.critical("leadership lost: lease %s %s; exiting", self.settings.name, why)
                self.on_lost()
                return
