"""RemediationTickets from judgements: one per (rollout, failing pod-template hash); repeats are counted."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from selfheal.domain.argo import ARGO_GROUP, ARGO_VERSION, Rollout, current_step_description
from selfheal.domain.evidence import Side
from selfheal.domain.issue import MAX_EXAMPLES, MAX_LINE
from selfheal.domain.issue import MAX_TEMPLATES as ISSUE_TEMPLATES
from selfheal.domain.ticket import (
    API_VERSION,
    MAX_FAILED_METRICS,
    MAX_PODS,
    TICKET_KIND,
    FailedMetricRecord,
    PodRecord,
    TemplateRecord,
    TicketEvidence,
    TicketSpec,
    TicketVerdict,
    ticket_name,
    to_wire,
)
from selfheal.domain.timestamps import rfc3339
from selfheal.domain.words import HEADLINE_MAX, SHORT_FINGERPRINT, clip, headline
from selfheal.services.judge import Judgement
from selfheal.services.ports import KubePort

MAX_OCCURRENCE_KEYS = 20
ROLLOUT_LABEL = "selfheal.dev/rollout"
FINGERPRINT_LABEL = "selfheal.dev/fingerprint"


def headline_of(j: Judgement) -> str:
    """What failed, in one line: the top new error or crash as its example says it, else the first failed
    metric, else the verdict's root cause."""
    top = next((t for t in j.diff.significant() if t.severity == "error" or t.crash_signature), None)
    if top is not None:
        return headline(top.template, top.examples)
    metric = next(iter(j.evidence.failed_metrics), None)
    if metric is not None:
        return f"metric {metric.name} {metric.phase.lower() or 'failed'}"
    return clip(j.verdict.root_cause or j.verdict.summary, HEADLINE_MAX)


def ticket_spec(
    j: Judgement, ro: Rollout, policy: str, trigger: str, redact: Callable[[str], str] = lambda text: text
) -> TicketSpec:
    """Identity, verdict and redacted evidence, bounded to what the GitHub issue shows, so the object stays
    small and `kubectl describe` stays readable (no whole stack traces).

    Templates and examples were redacted with the logs; metric messages and values are redacted here."""
    metrics = [
        m.model_copy(update={"message": redact(m.message), "values": [redact(v) for v in m.values]})
        for m in j.evidence.failed_metrics[:MAX_FAILED_METRICS]
    ]
    templates = [t for t in j.diff.templates if t.status in ("new", "increased")] or j.diff.templates
    return TicketSpec(
        rollout=ro.name,
        policy=policy,
        pod_template_hash=j.evidence.canary_hash,
        revision=ro.revision,
        fingerprint=j.fingerprint,
        images=ro.images[:50],
        step=current_step_description(ro)[:63],
        trigger=trigger,
        headline=headline_of(j),
        short_fingerprint=j.fingerprint[:SHORT_FINGERPRINT],
        verdict=TicketVerdict.from_verdict(j.verdict),
        evidence=TicketEvidence(
            templates=[
                TemplateRecord(
                    id=t.id,
                    template=t.template[: 2 * MAX_LINE],
                    severity=t.severity,
                    status=t.status,
                    canary_count=t.canary_count,
                    stable_count=t.stable_count,
                    canary_rate=t.canary_rate,
                    stable_rate=t.stable_rate,
                    examples=[e[:MAX_LINE] for e in t.examples[:MAX_EXAMPLES]],
                )
                for t in templates[:ISSUE_TEMPLATES]
            ],
            failed_metrics=[FailedMetricRecord.from_failed_metric(m) for m in metrics],
            pods=[PodRecord.from_pod(p) for p in j.evidence.pods[:MAX_PODS]],
            redactions=dict(j.redactions),
        ),
    )


def ticket_body(spec: TicketSpec, ro: Rollout) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": TICKET_KIND,
        "metadata": {
            "name": ticket_name(ro.name, spec.pod_template_hash),
            "namespace": ro.namespace,
            "labels": {ROLLOUT_LABEL: ro.name[:63], FINGERPRINT_LABEL: spec.fingerprint[:63]},
            "ownerReferences": [
                {
                    "apiVersion": f"{ARGO_GROUP}/{ARGO_VERSION}",
                    "kind": "Rollout",
                    "name": ro.name,
                    "uid": ro.uid,
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": to_wire(spec),
    }


def occurrence_patch(
    status: dict[str, Any] | None, key: str, now: datetime, action: str = "", revision: str = ""
) -> dict[str, Any] | None:
    """The status change for one more sighting of the failure, with the action taken on the Rollout;
    None when ``key`` was already counted."""
    status = status or {}
    keys = list(status.get("occurrenceKeys") or [])
    stamp = rfc3339(now)
    acted = {"lastAction": {"type": action, "revision": revision, "at": stamp}} if action else {}
    if not status.get("occurrences"):  # a ticket whose first status write was lost
        return {"occurrences": 1, "occurrenceKeys": [key], "firstSeen": stamp, "lastSeen": stamp, **acted}
    if key in keys:
        return None
    return {
        "occurrences": int(status["occurrences"]) + 1,
        "occurrenceKeys": ([*keys, key])[-MAX_OCCURRENCE_KEYS:],
        "lastSeen": stamp,
        **acted,
    }


async def record(
    kube: KubePort,
    j: Judgement,
    ro: Rollout,
    *,
    policy: str,
    trigger: str,
    key: str,
    now: datetime,
    redact: Callable[[str], str] = lambda text: text,
    action: str = "",
) -> tuple[str, bool, bool]:
    """Create the ticket or count the repeat: ``(name, created, counted)``. Idempotent per ``key``."""
    spec = ticket_spec(j, ro, policy, trigger, redact)
    obj, created = await kube.create_ticket(ro.namespace, ticket_body(spec, ro))
    name = obj["metadata"]["name"]
    patch = occurrence_patch(None if created else obj.get("status"), key, now, action, ro.revision)
    if patch is not None:
        await kube.patch_ticket_status(ro.namespace, name, {"status": patch})
    return name, created, patch is not None


def canary_has_logs(j: Judgement) -> bool:
    return any(log.text for pod in j.evidence.side(Side.CANARY) for log in pod.logs)
