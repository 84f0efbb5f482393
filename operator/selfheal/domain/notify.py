"""Notifications of a ticket's phase change: the webhook's JSON and signature, and the Slack message."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from selfheal.domain.ticket import RemediationTicket
from selfheal.domain.words import SHORT_FINGERPRINT, phase_event

SIGNATURE_HEADER = "X-Selfheal-Signature-256"
EVENT_HEADER = "X-Selfheal-Event"
DELIVERY_HEADER = "X-Selfheal-Delivery"
EVENT_NAME = "ticket.phase"
WEBHOOK = "webhook"
SLACK = "slack"


class PhaseChange(BaseModel):
    """What a notification says: which ticket, which phase it left and entered, and where to look."""

    namespace: str
    ticket: str
    rollout: str
    revision: str = ""
    previous_phase: str = ""
    phase: str
    verdict: str = ""
    confidence: int = 0
    headline: str = ""
    fingerprint: str = ""
    issue_number: int | None = None
    issue_url: str = ""
    pull_request_number: int | None = None
    pull_request_url: str = ""
    at: datetime
    delivery: str = ""

    @property
    def sentence(self) -> str:
        return phase_event(
            self.ticket,
            self.rollout,
            self.phase,
            previous=self.previous_phase,
            issue=self.issue_number,
            pull_request=self.pull_request_number,
            revision=self.revision,
        ).message


def phase_change(ticket: RemediationTicket, previous: str, phase: str, at: datetime) -> PhaseChange:
    """The change of ``ticket`` from ``previous`` to ``phase``, as notifications tell it."""
    st = ticket.status
    pull = next((p for p in st.pull_requests if p.number == st.pull_request), None)
    identity = f"{ticket.metadata.uid or ticket.metadata.name}\0{previous}\0{phase}"
    return PhaseChange(
        namespace=ticket.metadata.namespace,
        ticket=ticket.metadata.name,
        rollout=ticket.spec.rollout,
        revision=ticket.spec.revision,
        previous_phase=previous,
        phase=phase,
        verdict=ticket.spec.verdict.verdict.value,
        confidence=ticket.spec.verdict.confidence,
        headline=ticket.spec.headline,
        fingerprint=ticket.spec.fingerprint[:SHORT_FINGERPRINT],
        issue_number=st.issue.number if st.issue else None,
        issue_url=st.issue.url if st.issue else "",
        pull_request_number=st.pull_request,
        pull_request_url=pull.url if pull else "",
        at=at,
        delivery=hashlib.sha256(identity.encode()).hexdigest()[:32],
    )


def webhook_body(change: PhaseChange) -> bytes:
    """The JSON a generic webhook receives: the facts as fields, and the same as one sentence."""
    fields: dict[str, Any] = change.model_dump(mode="json", by_alias=False)
    payload = {"event": EVENT_NAME, "message": change.sentence, **fields}
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def signature(key: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of the body>``, as GitHub signs its webhooks."""
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def webhook_headers(change: PhaseChange, body: bytes, signing_key: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", EVENT_HEADER: EVENT_NAME, DELIVERY_HEADER: change.delivery}
    if signing_key:
        headers[SIGNATURE_HEADER] = signature(signing_key, body)
    return headers


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str, label: str) -> str:
    return f"<{url}|{_slack_escape(label)}>" if url.startswith(("https://", "http://")) else _slack_escape(label)


def slack_message(change: PhaseChange) -> dict[str, Any]:
    """A compact Slack message: what happened in one line, then the Rollout, verdict and links."""
    facts = [f"*Rollout* `{_slack_escape(change.namespace)}/{_slack_escape(change.rollout)}`"]
    if change.revision:
        facts.append(f"*Revision* {_slack_escape(change.revision)}")
    phase = _slack_escape(change.phase)
    facts.append(
        f"*Phase* {_slack_escape(change.previous_phase)} → {phase}" if change.previous_phase else f"*Phase* {phase}"
    )
    if change.verdict:
        facts.append(f"*Verdict* {_slack_escape(change.verdict)} ({change.confidence} %)")
    if change.issue_number:
        facts.append("*Issue* " + _link(change.issue_url, f"#{change.issue_number}"))
    if change.pull_request_number:
        facts.append("*Pull request* " + _link(change.pull_request_url, f"#{change.pull_request_number}"))
    what = f"\n>{_slack_escape(change.headline)}" if change.headline else ""
    text = _slack_escape(change.sentence)
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*{what}"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(facts)}]},
        ],
    }


def slack_body(change: PhaseChange) -> bytes:
    """The Slack message as the JSON an incoming webhook takes."""
    return json.dumps(slack_message(change), separators=(",", ":")).encode()
