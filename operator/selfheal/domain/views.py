"""Compact read models of the watched objects, as the operator's indexes keep them between events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from selfheal.domain.argo import (
    Rollout,
    canary_hash,
    current_step_index,
    is_canary_in_progress,
    is_inconclusive_pause,
    is_paused_at_indefinite_step,
    stable_hash,
)
from selfheal.domain.ticket import TicketPhase


@dataclass(frozen=True, slots=True)
class RolloutView:
    """One Rollout, about a kilobyte: enough to match it to a policy, to see that a pause waits for a
    verdict, and to order the log-watch looks. The Rollout itself is read again when work is done on it."""

    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str]
    # Pod-template hashes: the canary ("" when none is rolling out), the revision the Rollout runs now
    # (the canary's, else the current one) and the stable one.
    canary: str
    current: str
    stable: str
    aborted: bool
    in_progress: bool
    indefinite_pause: bool
    inconclusive_pause: bool
    step: int | None
    steps: int

    @classmethod
    def of(cls, ro: Rollout) -> RolloutView:
        canary = canary_hash(ro) or ""
        return cls(
            namespace=ro.namespace,
            name=ro.name,
            uid=ro.uid,
            labels=dict(ro.labels),
            canary=canary,
            current=canary or ro.status.current_pod_hash,
            stable=stable_hash(ro) or "",
            aborted=ro.status.abort,
            in_progress=is_canary_in_progress(ro),
            indefinite_pause=is_paused_at_indefinite_step(ro),
            inconclusive_pause=is_inconclusive_pause(ro),
            step=current_step_index(ro),
            steps=len(ro.steps),
        )

    @property
    def progress(self) -> float:
        """How far the canary is through its steps, from 0 (first step) to 1 (about to be promoted)."""
        if not self.steps or self.step is None:
            return 0.0
        return min(1.0, self.step / self.steps)


@dataclass(frozen=True, slots=True)
class TicketView:
    """One RemediationTicket: its Rollout and policy, its phase, whether it is finished (nothing left to follow)
    and the version of the object (a finished ticket is looked at again only when that changes)."""

    namespace: str
    name: str
    rollout: str
    policy: str
    phase: str
    finished: bool
    version: str = ""

    @classmethod
    def of(
        cls, namespace: str, name: str, spec: Mapping[str, Any], status: Mapping[str, Any], version: str = ""
    ) -> TicketView:
        phase = str(status.get("phase") or TicketPhase.OPEN)
        rollout, policy = str(spec.get("rollout") or ""), str(spec.get("policy") or "")
        return cls(namespace, name, rollout, policy, phase, ticket_is_finished(phase, status), version)


def ticket_is_finished(phase: str, status: Mapping[str, Any]) -> bool:
    """Resolved with the outcome reported on the issue (or without an issue to report to), or Closed: no
    reconcile is due any more until the ticket changes (a regression or a new occurrence written on it, an
    edit) or its policy does. A Failed ticket (GitHub refused) is not finished: it is tried again after
    ``SELFHEAL_GITHUB_REFUSED_RETRY_SECONDS`` (the delay its reconcile returns), not at every poll."""
    if phase == TicketPhase.CLOSED:
        return True
    if phase != TicketPhase.RESOLVED:
        return False
    issue = status.get("issue")
    verification = status.get("verification")
    if not isinstance(issue, Mapping) or not issue.get("number"):
        return True
    return isinstance(verification, Mapping) and bool(verification.get("reported"))
