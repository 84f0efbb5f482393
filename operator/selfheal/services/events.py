"""Posting one Event about one object (a Rollout, a ticket, a policy); losing one never stops the work."""

from __future__ import annotations

import logging
from typing import Any

from selfheal.domain.words import EventText
from selfheal.errors import SelfHealError

log = logging.getLogger(__name__)


def about(api_version: str, kind: str, namespace: str, name: str, uid: str) -> dict[str, Any]:
    """The object an Event is about."""
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": namespace, "uid": uid}}


async def post(runtime: Any, involved: dict[str, Any], event: EventText) -> None:
    """An Event explains; when the apiserver refuses it, a warning in the log says what was lost."""
    try:
        await runtime.kube.create_event(
            involved, reason=event.reason, message=event.message, type=event.type, now=runtime.clock()
        )
    except SelfHealError as e:
        meta = involved["metadata"]
        log.warning(
            "could not post Event %s on %s %s/%s: %s",
            event.reason,
            involved["kind"],
            meta["namespace"],
            meta["name"],
            e,
        )
