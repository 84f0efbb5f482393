"""Kopf glue for RemediationTicket: the ticket index the operator's rounds reconcile from, and the phase gauge."""

from __future__ import annotations

from typing import Any

import kopf

from selfheal import GROUP, VERSION
from selfheal.domain.views import TicketView

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
