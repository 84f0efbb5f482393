"""The judgement ledger in the cluster: each policy's ``status.canaries``, read once and written through.

The leader is the only writer of the map (see `handlers.runner`), so its copy in memory is the map: it is
read from the policy's status the first time a policy is used (after a start or a restart), and every
change is written at once as a JSON merge patch on that Rollout's key alone. Patches on distinct keys never
conflict, and the operator's other status writes (readiness, spend) touch other keys.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from selfheal.domain import ledger
from selfheal.domain.ledger import CanaryRecord
from selfheal.services.ports import KubePort

log = logging.getLogger(__name__)


class Ledger:
    """The canary records of every policy used so far, keyed by (namespace, policy) and Rollout."""

    def __init__(self, kube: KubePort) -> None:
        self.kube = kube
        self._maps: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}

    async def _map(self, namespace: str, policy: str) -> dict[str, dict[str, Any]]:
        key = (namespace, policy)
        found = self._maps.get(key)
        if found is None:
            obj = await self.kube.get_policy(namespace, policy)
            canaries = ((obj or {}).get("status") or {}).get("canaries") or {}
            found = {name: dict(value) for name, value in canaries.items() if isinstance(value, dict)}
            self._maps[key] = found
        return found

    def cached(self, namespace: str, policy: str, rollout: str) -> CanaryRecord | None:
        """The record as this process last read or wrote it, without a request; None when not known."""
        raw = self._maps.get((namespace, policy), {}).get(rollout)
        if raw is None:
            return None
        try:
            return CanaryRecord.model_validate(raw)
        except ValidationError:
            return None

    async def get(self, namespace: str, policy: str, rollout: str) -> CanaryRecord | None:
        """The record of the Rollout's canary; None when there is none (or it cannot be read: it is then
        started again, which at worst judges a situation twice, never acts on one it did not judge)."""
        raw = (await self._map(namespace, policy)).get(rollout)
        if raw is None:
            return None
        try:
            return CanaryRecord.model_validate(raw)
        except ValidationError as e:
            log.warning(
                "the ledger entry of %s/%s in policy %s is unreadable; started again: %s", namespace, rollout, policy, e
            )
            return None

    async def put(self, namespace: str, policy: str, rollout: str, record: CanaryRecord | None) -> None:
        """Write the Rollout's record (None: drop it); nothing is sent when nothing changed."""
        canaries = await self._map(namespace, policy)
        old, new = canaries.get(rollout), ledger.wire(record)
        if old == new:
            return
        change = None if new is None else ledger.merge_patch(old, new) if old is not None else new
        if new is not None and change is None:
            return
        await self.kube.patch_policy_status(namespace, policy, {"status": {"canaries": {rollout: change}}})
        if new is None:
            canaries.pop(rollout, None)
        else:
            canaries[rollout] = new

    async def prune(self, namespace: str, policy: str, live: set[str]) -> list[str]:
        """Drop the records of Rollouts the policy no longer governs; their names."""
        canaries = await self._map(namespace, policy)
        gone = ledger.stale(canaries, live)
        if gone:
            await self.kube.patch_policy_status(namespace, policy, {"status": {"canaries": dict.fromkeys(gone)}})
            for name in gone:
                canaries.pop(name, None)
        return gone
