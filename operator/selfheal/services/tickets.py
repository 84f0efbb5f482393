"""RemediationTickets from judgements: one per (rollout, failing pod-template hash); repeats are counted once each."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from selfheal.domain.argo import ARGO_GROUP, ARGO_VERSION, Rollout, current_step_description
from selfheal.domain.issue import MAX_EXAMPLES, MAX_LINE
from selfheal.domain.issue import MAX_TEMPLATES as ISSUE_TEMPLATES
from selfheal.domain.ticket import (
    API_VERSION,
    MAX_FAILED_METRICS,
    MAX_FAILURE_LINE,
    MAX_FAILURE_LINES,
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
from selfheal.errors import Conflict, TransientError
from selfheal.services.judge import Judgement
from selfheal.services.ports import KubePort

MAX_OCCURRENCE_KEYS = 20
ROLLOUT_LABEL = "selfheal.dev/rollout"
FINGERPRINT_LABEL = "selfheal.dev/fingerprint"
SIGNATURE_LABEL = "selfheal.dev/signature"
# A status write refused because the ticket changed (409) is read, recomputed and sent again this often.
CONFLICT_ATTEMPTS = 8


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
        signature=j.signature.signature,
        failure=[redact(line)[:MAX_FAILURE_LINE] for line in j.signature.lines()[:MAX_FAILURE_LINES]],
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
    labels = {ROLLOUT_LABEL: ro.name[:63], FINGERPRINT_LABEL: spec.fingerprint[:63]}
    if spec.signature:
        labels[SIGNATURE_LABEL] = spec.signature[:63]
    return {
        "apiVersion": API_VERSION,
        "kind": TICKET_KIND,
        "metadata": {
            "name": ticket_name(ro.name, spec.pod_template_hash),
            "namespace": ro.namespace,
            "labels": labels,
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
    status: Mapping[str, Any] | None, key: str, now: datetime, action: str = "", revision: str = ""
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


def resource_version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


async def update_status(
    kube: KubePort,
    namespace: str,
    name: str,
    change: Callable[[dict[str, Any]], dict[str, Any] | None],
    *,
    read: dict[str, Any] | None = None,
) -> tuple[dict[str, Any] | None, bool]:
    """Change a ticket's status from what was read: the patch ``change`` computes from the object is sent
    with the object's resourceVersion, so a write in between is refused (409), read again and the change
    computed again. Starts from ``read`` when given. ``(object, written)``; the object is None when the
    ticket is gone."""
    obj = read
    for _ in range(CONFLICT_ATTEMPTS):
        if obj is None:
            obj = await kube.get_ticket(namespace, name)
            if obj is None:
                return None, False
        patch = change(obj)
        if patch is None:
            return obj, False
        try:
            written = await kube.patch_ticket_status(
                namespace, name, {"status": patch}, resource_version=resource_version(obj)
            )
        except Conflict:
            obj = None
            continue
        return written, True
    raise TransientError(f"ticket {namespace}/{name} kept changing while its status was written", delay=1.0)


def first_key(obj: Mapping[str, Any] | None) -> str:
    keys = ((obj or {}).get("status") or {}).get("occurrenceKeys") or []
    return str(keys[0]) if keys else ""


async def record(
    kube: KubePort, spec: TicketSpec, ro: Rollout, *, key: str, now: datetime, action: str = ""
) -> tuple[str, bool, bool]:
    """Create the ticket or count the repeat: ``(name, opened, counted)``. Idempotent per ``key``: the
    same sighting recorded twice (a restart in between) counts once; ``opened`` when ``key`` is the
    ticket's first occurrence. Two recorders at once both count (resourceVersion, 409, again)."""
    obj, _ = await kube.create_ticket(ro.namespace, ticket_body(spec, ro))
    name = obj["metadata"]["name"]
    written, counted = await update_status(
        kube,
        ro.namespace,
        name,
        lambda o: occurrence_patch(o.get("status"), key, now, action, ro.revision),
        read=obj,
    )
    return name, first_key(written) == key, counted


async def note_action(kube: KubePort, namespace: str, name: str, action: str, revision: str, now: datetime) -> None:
    """Show on the ticket what was done to the Rollout (its Last Action column), once the action is taken."""
    if not action:
        return

    def change(obj: dict[str, Any]) -> dict[str, Any] | None:
        last = (obj.get("status") or {}).get("lastAction") or {}
        if last.get("type") == action and last.get("revision") == revision:
            return None
        return {"lastAction": {"type": action, "revision": revision, "at": rfc3339(now)}}

    await update_status(kube, namespace, name, change)
