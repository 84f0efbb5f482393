"""Verification of a fix: the first revision rolled out after it, followed until stable and healthy; and a
revision that should contain the fix failing the same way again (a regression)."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from selfheal.domain import lifecycle
from selfheal.domain.argo import REVISION_ANNOTATION, effective_phase
from selfheal.domain.policy import GitHubSpec
from selfheal.domain.ticket import VerificationState, VerificationStatus
from selfheal.domain.timestamps import parse_time
from selfheal.services.locks import ticket_key
from selfheal.services.remediation.status import TicketPass
from selfheal.services.runtime import Runtime
from selfheal.services.tickets import occurrence_patch, update_status


def verification_since(t: TicketPass, *, github: bool) -> datetime | None:
    """From when a new revision counts as the fix: the merge of the counting fix (with GitHub), else the
    ticket's creation (or the last regression)."""
    cutoff = lifecycle.regression_cutoff(t.status.verification)
    if github:
        fix = lifecycle.merged_fix(t.status.pull_requests, cutoff)
        return fix.merged_at if fix else None
    return cutoff or t.created or t.status.first_seen


async def verify(t: TicketPass, gh: GitHubSpec | None, now: datetime) -> None:
    """Find the first revision rolled out after the fix and follow it until it is stable and healthy."""
    st = t.status
    current = st.verification
    if current is not None and current.state == VerificationState.PASSED:
        return
    github = gh is not None
    since = verification_since(t, github=github)
    if since is None:
        return
    sha = ""
    if github:
        fix = lifecycle.merged_fix(st.pull_requests, lifecycle.regression_cutoff(current))
        sha = fix.merge_sha if fix else ""
    require_sha = bool(gh is not None and gh.verification.require_merge_sha)
    ro = await t.kube.get_rollout(t.namespace, t.ticket.spec.rollout)
    if ro is None:
        return
    view = lifecycle.RolloutView(
        current_hash=ro.status.current_pod_hash,
        stable_hash=ro.status.stable_rs,
        phase=effective_phase(ro)[0],
        aborted=ro.status.abort,
    )
    candidate = None
    if current is None or current.state != VerificationState.VERIFYING:
        for pod_hash in dict.fromkeys(h for h in (view.current_hash, view.stable_hash) if h):
            rs = await t.kube.get_replicaset(t.namespace, ro.replicaset_name(pod_hash))
            if rs is None:
                continue
            meta = rs.get("metadata") or {}
            template = (rs.get("spec") or {}).get("template") or {}
            rev = lifecycle.RevisionView(
                pod_hash=pod_hash,
                revision=(meta.get("annotations") or {}).get(REVISION_ANNOTATION, ""),
                created=parse_time(meta.get("creationTimestamp")),
                images=tuple(c.get("image", "") for c in ((template.get("spec") or {}).get("containers") or [])),
                annotations=dict((template.get("metadata") or {}).get("annotations") or {}),
            )
            if lifecycle.accepts_revision(rev, t.ticket.spec.pod_template_hash, since, sha, require_sha):
                candidate = rev
                break
    st.verification = lifecycle.advance_verification(current, candidate, view, now)
    st.conditions = lifecycle.verified_condition(st.conditions, st.verification, now)


def _regression_counted(obj: dict[str, Any], *, key: str, now: datetime) -> dict[str, Any] | None:
    return occurrence_patch(obj.get("status"), key, now)


async def record_failure(
    runtime: Runtime, namespace: str, rollout: str, pod_hash: str, revision: str, signature: str, now: datetime
) -> str | None:
    """For the pipeline: a failure of ``pod_hash`` that is a ticket's merged fix failing the same way.

    When a ticket of ``rollout`` waits for or verifies this revision and names the same failure (its primary
    signature), the ticket becomes Regressed, its occurrences grow, and its name is returned (no new ticket
    is needed). The same regression reported again returns the name without counting it twice. Otherwise None.
    """
    rs_created: datetime | None = None
    rs_read = False
    for obj in sorted(
        await runtime.kube.list_tickets(namespace, rollout), key=lambda o: (o.get("metadata") or {}).get("name", "")
    ):
        name = (obj.get("metadata") or {}).get("name", "")
        async with runtime.lock(ticket_key(namespace, name)):
            fresh = await runtime.kube.get_ticket(namespace, name)
            if fresh is None:
                continue
            t = TicketPass(runtime, namespace, fresh)
            st = t.status
            v = st.verification
            failed_here = v is not None and v.state == VerificationState.FAILED and v.pod_template_hash == pod_hash
            if failed_here and t.signature == signature:
                return name  # this regression is already recorded on the ticket
            phase = st.phase or lifecycle.derive_phase(st.conditions)
            since = verification_since(t, github=bool(st.issue and st.issue.number))
            if not rs_read and (v is None or v.state != VerificationState.VERIFYING):
                rs = await runtime.kube.get_replicaset(namespace, f"{rollout}-{pod_hash}")
                rs_created = parse_time(((rs or {}).get("metadata") or {}).get("creationTimestamp"))
                rs_read = True
            if not lifecycle.is_regression(
                phase, t.signature, t.ticket.spec.pod_template_hash, v, pod_hash, signature, rs_created, since
            ):
                continue
            # The occurrence first (counted once per failing revision, whoever else writes the ticket), then
            # the regression: reported again after a restart in between, it is counted once and recorded.
            count = partial(_regression_counted, key=f"{pod_hash}:regressed", now=now)
            counted, _ = await update_status(runtime.kube, namespace, name, count, read=fresh)
            if counted is None:
                continue
            t = TicketPass(runtime, namespace, counted)
            t.status.verification = VerificationStatus(
                revision=revision,
                pod_template_hash=pod_hash,
                state=VerificationState.FAILED,
                started_at=v.started_at if v is not None and v.pod_template_hash == pod_hash else now,
                verified_at=now,
                message=f"revision {revision or '?'} failed again with the same fingerprint",
            )
            t.status.conditions = lifecycle.regressed_conditions(t.status.conditions, revision, pod_hash, now)
            await t.commit(now)
            return name
    return None
