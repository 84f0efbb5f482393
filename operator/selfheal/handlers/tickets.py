"""Kopf glue for RemediationTicket: reconcile each ticket on creation and then every poll interval; count and
announce them."""

from __future__ import annotations

from typing import Any

import kopf

from selfheal import GROUP, VERSION
from selfheal.config import CONFIG
from selfheal.errors import TransientError
from selfheal.services import notify
from selfheal.services import remediation as service

PLURAL = "remediationtickets"


# Kopf hands indices over as keyword arguments that its callback protocols do not declare.
@kopf.on.create(GROUP, VERSION, PLURAL, id="ticket-created")
@kopf.timer(GROUP, VERSION, PLURAL, id="ticket-reconcile", interval=CONFIG.ticket_poll_seconds)  # type: ignore[arg-type]
async def reconcile_ticket(
    namespace: str, name: str, spec: kopf.Spec, memo: kopf.Memo, policies: kopf.Index, **_: Any
) -> None:
    policy = next((p for p in policies.get(namespace, []) if p.name == spec.get("policy")), None)
    try:
        retry = await service.reconcile_ticket(memo.runtime, namespace, name, policy)
    except TransientError as e:  # RateLimitedError too: wait what GitHub or the apiserver asked for
        raise kopf.TemporaryError(str(e), delay=e.delay) from e
    if retry is not None:
        raise kopf.TemporaryError(
            f"GitHub refused; trying again in {retry:.0f}s (see the ticket's conditions)", delay=retry
        )


@kopf.on.event(GROUP, VERSION, PLURAL, id="ticket-phase-gauge")
def count_ticket(type: str, namespace: str | None, name: str, status: kopf.Status, memo: Any, **_: Any) -> None:
    """Every watch event of a ticket (the initial listing included) keeps the tickets-by-phase gauge exact."""
    phase = None if type == "DELETED" else status.get("phase") or "Open"
    memo.runtime.metrics.tickets.track(namespace or "", name, phase)


# Kopf hands indices over as keyword arguments that its callback protocols do not declare.
@kopf.on.event(GROUP, VERSION, PLURAL, id="ticket-announce")  # type: ignore[arg-type]
async def announce_phase(
    type: str, namespace: str | None, body: kopf.Body, spec: kopf.Spec, memo: Any, policies: kopf.Index, **_: Any
) -> None:
    """A ticket in a phase not announced yet: an Event on it and the policy's notifications, in the background."""
    if type == "DELETED" or namespace is None:
        return
    policy = next((p for p in policies.get(namespace, []) if p.name == spec.get("policy")), None)
    notify.ticket_seen(memo.runtime, namespace, dict(body), policy)
