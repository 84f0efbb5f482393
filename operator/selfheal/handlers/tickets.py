"""Kopf glue for RemediationTicket: the ticket index the operator's rounds reconcile from, the phase gauge, and
the announcement of each phase a ticket enters."""

from __future__ import annotations

from typing import Any

import kopf

from selfheal import GROUP, VERSION
from selfheal.domain.views import TicketView
from selfheal.services import notify

PLURAL = "remediationtickets"


@kopf.index(GROUP, VERSION, PLURAL, id="tickets")
async def tickets_index(
    namespace: str | None, name: str, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, **_: Any
) -> dict[tuple[str | None, str], TicketView]:
    """Every ticket, compact: what the rounds need to know whether a reconcile is due."""
    version = str(meta.get("resourceVersion") or "")
    return {(namespace, name): TicketView.of(namespace or "", name, spec, status, version)}


@kopf.on.event(GROUP, VERSION, PLURAL, id="ticket-phase-gauge")
async def count_ticket(type: str, namespace: str | None, name: str, status: kopf.Status, memo: Any, **_: Any) -> None:
    """Every watch event of a ticket (the initial listing included) keeps the tickets-by-phase gauge exact."""
    memo.runtime.indexes.complete.set()  # Kopf calls no handler before every watched kind is listed
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
