"""What a webhook and Slack receive about a ticket's phase change: facts, one sentence, a signature, no markup."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

from selfheal.domain.notify import phase_change, signature, slack_body, webhook_body, webhook_headers
from selfheal.domain.ticket import RemediationTicket

AT = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


def ticket(**status: object) -> RemediationTicket:
    return RemediationTicket.model_validate(
        {
            "metadata": {"name": "web-6d4f9", "namespace": "shop", "uid": "u-1"},
            "spec": {
                "rollout": "web",
                "policy": "heal",
                "podTemplateHash": "6d4f9",
                "revision": "7",
                "fingerprint": "ab" * 32,
                "headline": "panic: <script>alert(1)</script> & more",
                "verdict": {"verdict": "unhealthy", "confidence": 95, "analyzer": "statistical", "summary": "x"},
            },
            "status": status,
        }
    )


def test_the_webhook_body_carries_the_facts_and_a_sentence() -> None:
    t = ticket(
        phase="FixProposed",
        issue={"number": 12, "url": "https://github.com/acme/shop/issues/12"},
        pullRequest=13,
        pullRequests=[{"number": 13, "url": "https://github.com/acme/shop/pull/13"}],
    )
    change = phase_change(t, "IssueOpened", "FixProposed", AT)
    payload = json.loads(webhook_body(change))
    assert payload["event"] == "ticket.phase"
    assert (payload["previous_phase"], payload["phase"]) == ("IssueOpened", "FixProposed")
    assert payload["issue_url"].endswith("/issues/12") and payload["pull_request_url"].endswith("/pull/13")
    assert payload["message"] == (
        "Ticket web-6d4f9 for Rollout web has a proposed fix (issue #12, pull request #13, revision 7), "
        "was IssueOpened."
    )
    assert payload["fingerprint"] == "ab" * 6
    # The same change always has the same delivery id, so a receiver can drop a repeat.
    assert phase_change(t, "IssueOpened", "FixProposed", AT).delivery == change.delivery
    assert phase_change(t, "FixProposed", "FixMerged", AT).delivery != change.delivery


def test_the_signature_is_an_hmac_of_the_exact_body() -> None:
    change = phase_change(ticket(phase="Open"), "", "Open", AT)
    body = webhook_body(change)
    headers = webhook_headers(change, body, "k3y")
    expected = "sha256=" + hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
    assert headers["X-Selfheal-Signature-256"] == expected == signature("k3y", body)
    assert "X-Selfheal-Signature-256" not in webhook_headers(change, body, None)


def test_the_slack_message_is_compact_and_escapes_what_the_logs_said() -> None:
    t = ticket(phase="IssueOpened", issue={"number": 12, "url": "https://github.com/acme/shop/issues/12"})
    message = json.loads(slack_body(phase_change(t, "Open", "IssueOpened", AT)))
    text = json.dumps(message)
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "<https://github.com/acme/shop/issues/12|#12>" in text
    assert message["text"].startswith("Ticket web-6d4f9 for Rollout web has a GitHub issue")
    assert len(message["blocks"]) == 2
