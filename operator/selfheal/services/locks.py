"""Per-key asyncio locks that exist only while someone holds or waits for them, and the keys the services use."""

from __future__ import annotations

import asyncio
import weakref


class KeyedLocks:
    """``locks(key)`` is the one lock of ``key``; kept weakly, so a lock nobody holds or awaits is gone and the
    table stays as small as the work in progress, however many keys the operator ever used."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def __call__(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    def __len__(self) -> int:
        return len(self._locks)


def ticket_key(namespace: str, name: str) -> str:
    """The one lock of a RemediationTicket: whoever reads and writes its status holds it."""
    return f"ticket:{namespace}/{name}"


def issue_key(api_url: str, repository: str, signature: str) -> str:
    """The one lock of a failure's GitHub issue: finding or creating it, and editing its body."""
    return f"issue:{api_url}/{repository}#{signature}"
