"""Announcing ticket phases: once per phase change whatever restarts, signed to the webhook, compact to
Slack, failures told on the ticket, the policy and the metrics, and the URLs never told anywhere."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from selfheal.domain.notify import DELIVERY_HEADER, SIGNATURE_HEADER
from selfheal.services import notify, remediation
from selfheal.services.policies import PolicyRef
from selfheal.testing.notify_server import SlackReceiver, WebhookReceiver
from tests.unit.services.test_remediation import GITHUB, TICKET, failing_canary
from tests.unit.services.world import NS, World, policy

SIGNING_KEY = "whsec-9f8e7d6c5b4a"


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(signing_key=SIGNING_KEY) as server:
        yield server


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    with SlackReceiver() as server:
        yield server


def notifying(world: World, hook: WebhookReceiver, slack: SlackReceiver, **notifications: Any) -> PolicyRef:
    world.kube.secrets[(NS, "hooks")] = {"webhook": hook.url, "signing": SIGNING_KEY, "slack": slack.url}
    return policy(
        remediation=GITHUB,
        notifications={
            "webhook": {
                "urlSecretRef": {"name": "hooks", "key": "webhook"},
                "signingSecretRef": {"name": "hooks", "key": "signing"},
            },
            "slack": {"webhookURLSecretRef": {"name": "hooks", "key": "slack"}},
            **notifications,
        },
    )


def recorded(world: World) -> dict[str, Any]:
    return world.kube.tickets[(NS, TICKET)]["status"].get("notification") or {}


def metric(world: World, channel: str, outcome: str) -> float:
    value = world.runtime.metrics.registry.get_sample_value(
        "selfheal_notifications_total", {"channel": channel, "outcome": outcome}
    )
    return value or 0.0


async def test_each_phase_is_announced_once_signed_and_compact(
    world: World, hook: WebhookReceiver, slack: SlackReceiver
) -> None:
    ref = notifying(world, hook, slack)
    await failing_canary(world)
    await notify.announce(world.runtime, NS, TICKET, ref)
    await notify.announce(world.runtime, NS, TICKET, ref)  # the same phase seen again: nothing more
    [opened] = hook.taken()
    assert opened.signed and opened.payload["phase"] == "Open" and opened.payload["previous_phase"] == ""
    assert opened.payload["rollout"] == "web" and opened.payload["ticket"] == TICKET
    assert opened.payload["message"].startswith(f"Ticket {TICKET} for Rollout web is open")
    assert opened.headers[DELIVERY_HEADER] and opened.headers[SIGNATURE_HEADER].startswith("sha256=")
    [first] = slack.taken()
    assert "web" in first.payload["text"] and first.payload["blocks"]

    await remediation.reconcile_ticket(world.runtime, NS, TICKET, ref)  # the GitHub issue: IssueOpened
    await notify.announce(world.runtime, NS, TICKET, ref)
    assert [d.payload["phase"] for d in hook.taken()] == ["Open", "IssueOpened"]
    issued = hook.taken()[1].payload
    assert issued["previous_phase"] == "Open" and issued["issue_number"] and issued["issue_url"]
    assert f"#{issued['issue_number']}" in json.dumps(slack.taken()[1].payload)
    assert recorded(world)["phase"] == "IssueOpened" and recorded(world)["delivered"] == ["webhook", "slack"]
    assert metric(world, "webhook", "delivered") == 2 and metric(world, "slack", "delivered") == 2

    # The operator restarts: the cluster remembers what was announced, nothing is sent again.
    world.restart()
    await notify.announce(world.runtime, NS, TICKET, ref)
    assert len(hook.taken()) == 2 and len(slack.taken()) == 2

    # Each phase also reads as an Event on the ticket itself.
    on_ticket = [e for e in world.kube.posted if e.object_name == TICKET]
    assert [e.reason for e in on_ticket] == ["TicketOpen", "TicketIssueOpened"]
    assert on_ticket[1].message.startswith(f"Ticket {TICKET} for Rollout web has a GitHub issue (issue #")


async def test_only_the_phases_asked_for_are_sent_but_every_phase_is_an_event(
    world: World, hook: WebhookReceiver, slack: SlackReceiver
) -> None:
    ref = notifying(world, hook, slack, phases=["IssueOpened"])
    await failing_canary(world)
    await notify.announce(world.runtime, NS, TICKET, ref)
    assert hook.taken() == [] and slack.taken() == [] and recorded(world)["phase"] == "Open"
    await remediation.reconcile_ticket(world.runtime, NS, TICKET, ref)
    await notify.announce(world.runtime, NS, TICKET, ref)
    assert [d.payload["phase"] for d in hook.taken()] == ["IssueOpened"]
    assert [e.reason for e in world.kube.posted if e.object_name == TICKET] == ["TicketOpen", "TicketIssueOpened"]


async def test_a_refusing_receiver_is_tried_a_few_times_then_reported_and_never_resent(
    world: World, hook: WebhookReceiver, slack: SlackReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    ref = notifying(world, hook, slack)
    hook.fail(503, times=None)
    slack.fail(404, times=None, text="no_service")
    await failing_canary(world)
    with caplog.at_level(logging.INFO):
        await notify.announce(world.runtime, NS, TICKET, ref)
    assert len(hook.deliveries) == 3  # bounded retries of a 5xx
    assert len(slack.deliveries) == 1  # a 4xx is not retried
    record = recorded(world)
    assert record["phase"] == "Open" and record["failed"] == ["webhook", "slack"] and not record.get("delivered")
    assert "HTTP 503" in record["message"] and "no_service" in record["message"]
    assert metric(world, "webhook", "failed") == 1 and metric(world, "slack", "failed") == 1
    assert notify.delivery_failure(world.runtime, NS, ref.name) == record["message"]
    [failed] = [e for e in world.kube.posted if e.reason == "NotificationFailed"]
    assert failed.type == "Warning" and failed.object_name == TICKET

    # The URLs are credentials: their secret path shows nowhere.
    told = json.dumps(record) + " ".join(e.message for e in world.kube.posted) + caplog.text
    assert hook.token not in told and slack.token not in told and SIGNING_KEY not in told

    hook.clear()
    await notify.announce(world.runtime, NS, TICKET, ref)  # the phase was announced (and failed): not again
    assert len(hook.deliveries) == 3


async def test_a_redirect_is_refused_and_a_missing_secret_is_named(
    world: World, hook: WebhookReceiver, slack: SlackReceiver
) -> None:
    ref = notifying(world, hook, slack)
    with WebhookReceiver() as elsewhere:
        hook.redirect(elsewhere.url)
        del world.kube.secrets[(NS, "hooks")]["slack"]
        await failing_canary(world)
        await notify.announce(world.runtime, NS, TICKET, ref)
        assert elsewhere.deliveries == []
    message = recorded(world)["message"]
    assert "redirect" in message and "not followed" in message
    assert "has no key 'slack'" in message and slack.deliveries == []


async def test_a_bad_signature_key_is_refused_by_the_receiver(
    world: World, hook: WebhookReceiver, slack: SlackReceiver
) -> None:
    ref = notifying(world, hook, slack)
    world.kube.secrets[(NS, "hooks")]["signing"] = "not-the-key"
    await failing_canary(world)
    await notify.announce(world.runtime, NS, TICKET, ref)
    assert hook.taken() == [] and [d.status for d in hook.deliveries] == [401]
    assert "HTTP 401" in recorded(world)["message"]


async def test_phases_seen_while_a_delivery_is_slow_are_announced_in_order_in_the_background(
    world: World, hook: WebhookReceiver, slack: SlackReceiver
) -> None:
    ref = notifying(world, hook, slack)
    await failing_canary(world)
    hook.slow(0.5, times=1)
    notify.ticket_seen(world.runtime, NS, world.kube.tickets[(NS, TICKET)], ref)  # returns at once
    assert (NS, TICKET) in world.runtime.announcements.tasks
    await remediation.reconcile_ticket(world.runtime, NS, TICKET, ref)
    notify.ticket_seen(world.runtime, NS, world.kube.tickets[(NS, TICKET)], ref)
    await world.runtime.announcements.tasks[(NS, TICKET)]
    assert [d.payload["phase"] for d in hook.taken()] == ["Open", "IssueOpened"]
    await world.runtime.announcements.aclose()


async def test_an_old_ticket_found_without_a_record_is_adopted_silently(
    world: World, hook: WebhookReceiver, slack: SlackReceiver
) -> None:
    ref = notifying(world, hook, slack)
    await failing_canary(world)
    world.kube.tickets[(NS, TICKET)]["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    await notify.announce(world.runtime, NS, TICKET, ref)
    assert hook.deliveries == [] and recorded(world)["phase"] == "Open"
    assert not [e for e in world.kube.posted if e.object_name == TICKET]
