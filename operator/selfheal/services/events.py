"""Posting one Event about one object (a Rollout, a ticket, a policy); losing one never stops the work."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from selfheal.domain.words import EventText
from selfheal.errors import SelfHealError, TransientError

log = logging.getLogger(__name__)


def about(api_version: str, kind: str, namespace: str, name: str, uid: str) -> dict[str, Any]:
    """The object an Event is about."""
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": namespace, "uid": uid}}


async def post(runtime: Any, involved: dict[str, Any], event: EventText, now: datetime | None = None) -> bool:
    """An Event explains; when the apiserver refuses it, a warning in the log says what was lost. False when
    the apiserver could not take it now (it is worth posting again later)."""
    meta = involved["metadata"]
    try:
        await runtime.kube.create_event(
            involved, reason=event.reason, message=event.message, type=event.type, now=now or runtime.clock()
        )
    except TransientError as e:
        log.warning("could not post Event %s on %s %s/%s yet: %s", event.reason, involved["kind"], *_at(meta), e)
        return False
    except SelfHealError as e:  # one refused for good must not stop the work
        log.warning("could not post Event %s on %s %s/%s: %s", event.reason, involved["kind"], *_at(meta), e)
    return True


def _at(meta: dict[str, Any]) -> tuple[str, str]:
    return meta["namespace"], meta["name"]
