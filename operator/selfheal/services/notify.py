"""Announce each phase a ticket enters, once: an Event on the ticket, a log line, the policy's webhook and Slack.

What was announced is recorded on the ticket (``status.notification``), so a restart sends nothing twice.
Deliveries run in the background, one task per ticket, and never hold up the remediation.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from selfheal.adapters.notify import NotificationError, Notifier
from selfheal.domain.notify import (
    SLACK,
    WEBHOOK,
    PhaseChange,
    phase_change,
    slack_body,
    webhook_body,
    webhook_headers,
)
from selfheal.domain.policy import NotificationsSpec
from selfheal.domain.ticket import (
    API_VERSION,
    TICKET_KIND,
    NotificationStatus,
    RemediationTicket,
    TicketPhase,
    to_wire,
)
from selfheal.domain.timestamps import parse_time
from selfheal.domain.words import EventText, clip, notification_failed_event, phase_event
from selfheal.errors import ConfigError, SelfHealError
from selfheal.services import events

if TYPE_CHECKING:
    from selfheal.services.policies import PolicyRef
    from selfheal.services.runtime import Runtime

log = logging.getLogger(__name__)

# A ticket found with nothing announced that is older than this was made before announcements existed:
# its phase is recorded without telling anyone, so an upgrade does not replay every old ticket.
ADOPT_AFTER_SECONDS = 3600.0


@dataclass
class Announcements:
    """Deliveries in flight (one task per ticket), and each policy's last delivery failure."""

    tasks: dict[tuple[str, str], asyncio.Task[None]] = field(default_factory=dict)
    again: set[tuple[str, str]] = field(default_factory=set)
    failures: dict[tuple[str, str], str] = field(default_factory=dict)
    notifier: Notifier | None = None

    def client(self) -> Notifier:
        if self.notifier is None:
            self.notifier = Notifier()
        return self.notifier

    async def aclose(self) -> None:
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.notifier is not None:
            await self.notifier.aclose()
            self.notifier = None


def _phase(status: dict[str, Any]) -> str:
    return str(status.get("phase") or TicketPhase.OPEN.value)


def ticket_seen(runtime: Runtime, namespace: str, obj: dict[str, Any], policy: PolicyRef | None) -> None:
    """Every watch event of a ticket: when its phase is not the one last announced, announce it in the
    background. Returns at once."""
    status = obj.get("status") or {}
    if _phase(status) == (status.get("notification") or {}).get("phase"):
        return
    name = (obj.get("metadata") or {}).get("name", "")
    state = runtime.announcements
    key = (namespace, name)
    if key in state.tasks:
        state.again.add(key)  # the running task looks once more when it is done
        return
    task = asyncio.create_task(_announce_until_current(runtime, namespace, name, policy))
    state.tasks[key] = task
    task.add_done_callback(lambda _: state.tasks.pop(key, None))


async def _announce_until_current(runtime: Runtime, namespace: str, name: str, policy: PolicyRef | None) -> None:
    state = runtime.announcements
    key = (namespace, name)
    while True:
        state.again.discard(key)
        try:
            await announce(runtime, namespace, name, policy)
        except SelfHealError as e:  # the apiserver: the next watch event tries again
            log.warning("could not announce the phase of ticket %s/%s: %s", namespace, name, e)
            return
        if key not in state.again:
            return


async def announce(runtime: Runtime, namespace: str, name: str, policy: PolicyRef | None) -> None:
    """Announce the phase the ticket is in now, if it was not announced yet, and record that it was."""
    obj = await runtime.kube.get_ticket(namespace, name)
    if obj is None:
        return
    ticket = RemediationTicket.model_validate(obj)
    phase = (ticket.status.phase or TicketPhase.OPEN).value
    record = ticket.status.notification
    previous = record.phase if record is not None else ""
    if previous == phase:
        return
    now = runtime.clock()
    created = parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    if record is None and created is not None and (now - created).total_seconds() > ADOPT_AFTER_SECONDS:
        await _record(runtime, namespace, name, NotificationStatus(phase=phase, at=now), None)
        return
    event = phase_event(
        name,
        ticket.spec.rollout,
        phase,
        previous=previous,
        issue=ticket.status.issue.number if ticket.status.issue else None,
        pull_request=ticket.status.pull_request,
        revision=ticket.spec.revision,
    )
    await _event(runtime, ticket, event)
    log.info(
        "%s",
        event.message,
        extra={"namespace": namespace, "ticket": name, "rollout": ticket.spec.rollout, "phase": phase},
    )
    spec = policy.spec.notifications if policy is not None else NotificationsSpec()
    intent = NotificationStatus(phase=phase, at=now)
    # Recorded before anything is sent: a crash in between loses a notification, never repeats one.
    await _record(runtime, namespace, name, intent, record)
    if spec.wants(phase):
        outcome = await _deliver(runtime, namespace, spec, phase_change(ticket, previous, phase, now), intent)
        _remember(runtime, namespace, policy, outcome)
        if outcome.failed:
            await _event(runtime, ticket, notification_failed_event(phase, outcome.message))
        await _record(runtime, namespace, name, outcome, intent)


async def _deliver(
    runtime: Runtime, namespace: str, spec: NotificationsSpec, change: PhaseChange, record: NotificationStatus
) -> NotificationStatus:
    """Each configured channel once (with the adapter's few tries); what took it and what did not."""
    delivered: list[str] = []
    failed: list[str] = []
    problems: list[str] = []
    notifier = runtime.announcements.client()
    timeout = float(spec.timeout_seconds)
    channels: list[tuple[str, Any]] = []
    if spec.webhook is not None:
        channels.append((WEBHOOK, spec.webhook))
    if spec.slack is not None:
        channels.append((SLACK, spec.slack))
    for channel, target in channels:
        try:
            if channel == WEBHOOK:
                url_ref, signing_ref = target.url_secret_ref, target.signing_secret_ref
                url = await runtime.kube.read_secret_key(namespace, url_ref.name, url_ref.key)
                key = (
                    await runtime.kube.read_secret_key(namespace, signing_ref.name, signing_ref.key)
                    if signing_ref is not None
                    else None
                )
                body = webhook_body(change)
                await notifier.post(url.strip(), body, webhook_headers(change, body, key), seconds=timeout)
            else:
                ref = target.webhook_url_secret_ref
                url = await runtime.kube.read_secret_key(namespace, ref.name, ref.key)
                body = slack_body(change)
                await notifier.post(url.strip(), body, {"Content-Type": "application/json"}, seconds=timeout)
        except (NotificationError, ConfigError) as e:
            failed.append(channel)
            problems.append(f"{channel}: {e}")
            runtime.metrics.notifications.inc(channel=channel, outcome="failed")
            log.warning("ticket %s/%s: %s notification failed: %s", namespace, change.ticket, channel, e)
        else:
            delivered.append(channel)
            runtime.metrics.notifications.inc(channel=channel, outcome="delivered")
    return record.model_copy(
        update={"delivered": delivered, "failed": failed, "message": clip("; ".join(problems), 1024)}
    )


def _remember(runtime: Runtime, namespace: str, policy: PolicyRef | None, record: NotificationStatus) -> None:
    """The policy's NotificationsDelivered condition shows the last failure until a delivery succeeds."""
    if policy is None:
        return
    key = (namespace, policy.name)
    if record.failed:
        runtime.announcements.failures[key] = record.message
    elif record.delivered:
        runtime.announcements.failures.pop(key, None)


async def _record(
    runtime: Runtime, namespace: str, name: str, record: NotificationStatus, before: NotificationStatus | None
) -> None:
    """``record`` replaces what was recorded: a merge patch with the keys it no longer has set to null
    (a new object gets no nulls: the apiserver would keep them)."""
    body: dict[str, Any] = {k: v for k, v in to_wire(record).items() if v != []}
    for key in to_wire(before or NotificationStatus()):
        body.setdefault(key, None)
    await runtime.kube.patch_ticket_status(namespace, name, {"status": {"notification": body}})


async def _event(runtime: Runtime, ticket: RemediationTicket, event: EventText) -> None:
    """An Event on the ticket itself: `kubectl describe rtk` shows its history."""
    meta = ticket.metadata
    await events.post(runtime, events.about(API_VERSION, TICKET_KIND, meta.namespace, meta.name, meta.uid), event)


def delivery_failure(runtime: Runtime, namespace: str, policy: str) -> str | None:
    """The last notification failure of a policy, or None when its last delivery worked."""
    return runtime.announcements.failures.get((namespace, policy))
