"""One reconcile pass's view of a RemediationTicket: the object read, the status being built, and its writes:
only what changed, at the resourceVersion it was read at, each phase change told in an Event on the Rollout."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from selfheal.domain import lifecycle
from selfheal.domain.argo import ROLLOUT_API_VERSION
from selfheal.domain.ticket import IssueStatus, RemediationTicket, TicketPhase, to_wire
from selfheal.domain.timestamps import parse_time
from selfheal.domain.words import EventText, phase_event
from selfheal.errors import Conflict, SelfHealError, TransientError
from selfheal.services import events
from selfheal.services.runtime import Runtime
from selfheal.services.tickets import CONFLICT_ATTEMPTS, resource_version

log = logging.getLogger(__name__)

# Status fields a reconcile pass writes; occurrences, firstSeen, lastSeen and lastAction belong to the pipeline.
OWNED = frozenset(
    {"observed_generation", "phase", "conditions", "issue", "pull_request", "pull_requests", "verification"}
)
WARNING_PHASES = {TicketPhase.REGRESSED, TicketPhase.FAILED}


class ChangedMeanwhile(TransientError):
    """The ticket was changed by another writer during the pass; the next pass starts from what is there."""


def _merge_patch(value: Any) -> Any:
    """A status section as a JSON merge patch: absent and empty values become null (removed); lists are
    replaced whole and carry no null or empty values."""
    if isinstance(value, dict):
        return {k: None if v is None or v == "" else _merge_patch(v) for k, v in value.items()}
    if isinstance(value, list):
        return to_wire(value)
    return value


def owned(status: Any) -> dict[str, Any]:
    """The fields a pass owns, as the merge patch that writes them."""
    patch: dict[str, Any] = _merge_patch(status.model_dump(mode="json", by_alias=True, include=set(OWNED)))
    return patch


class TicketPass:
    """One ticket being reconciled: the object read, the status being built, and what was last written."""

    def __init__(self, runtime: Runtime, namespace: str, obj: dict[str, Any]) -> None:
        self.runtime = runtime
        self.kube = runtime.kube
        self.namespace = namespace
        self.obj = obj
        self.ticket = RemediationTicket.model_validate(obj)
        self.name = self.ticket.metadata.name
        self.created = parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
        self.status = self.ticket.status.model_copy(deep=True)
        self.written = owned(self.ticket.status)
        self.written_phase = self.ticket.status.phase
        self.version = resource_version(obj)

    @property
    def ref(self) -> str:
        """``namespace/name``: how the ticket is named on a shared issue."""
        return f"{self.namespace}/{self.name}"

    @property
    def signature(self) -> str:
        """The failure's primary signature (its full fingerprint on tickets that predate signatures)."""
        return self.ticket.spec.signature or self.ticket.spec.fingerprint

    @property
    def issue(self) -> IssueStatus:
        if self.status.issue is None:
            self.status.issue = IssueStatus()
        return self.status.issue

    def with_status(self) -> RemediationTicket:
        return self.ticket.model_copy(update={"status": self.status})

    def rollout_ref(self) -> dict[str, Any]:
        owner = next((o for o in self.ticket.metadata.owner_references if o.kind == "Rollout"), None)
        return {
            "apiVersion": ROLLOUT_API_VERSION,
            "kind": "Rollout",
            "metadata": {
                "name": self.ticket.spec.rollout,
                "namespace": self.namespace,
                "uid": owner.uid if owner else "",
            },
        }

    async def event(self, event: EventText, now: datetime) -> None:
        """An Event on the ticket's Rollout (where users look), naming the ticket. Its name derives from its
        content, so the same Event posted again (after a restart) is the same object."""
        ref = self.rollout_ref()
        if not ref["metadata"]["uid"]:
            try:
                rollout = await self.kube.get_rollout(self.namespace, self.ticket.spec.rollout)
            except SelfHealError as e:  # an Event explains; losing one must not stop the work
                log.warning("could not post Event %s about ticket %s: %s", event.reason, self.ref, e)
                return
            if rollout is None:
                return
            ref["metadata"]["uid"] = rollout.uid
        await events.post(self.runtime, ref, event, now)

    async def commit(self, now: datetime) -> None:
        """Write the owned status fields when they changed. A phase change is told first (an Event on the
        Rollout), so a restart before the write tells it again in the same words rather than never."""
        self.status.phase = lifecycle.derive_phase(self.status.conditions)
        self.status.observed_generation = self.ticket.metadata.generation or None
        phase = self.status.phase
        if phase != self.written_phase:
            previous, self.written_phase = self.written_phase, phase
            if previous is not None or phase != TicketPhase.OPEN:
                self.runtime.metrics.ticket_phase_changes.inc(namespace=self.namespace, phase=phase.value)
                await self.event(self._phase_event(phase, previous), now)
        body = owned(self.status)
        if body != self.written:
            await self._write(body)
            self.written = body

    async def _write(self, body: dict[str, Any]) -> None:
        """Send ``body`` at the version read. A 409 whose writer changed only fields this pass does not own
        (an occurrence counted) is sent again at the new version; one that changed what this pass computed
        from ends the pass (TransientError): the next pass starts from what is there."""
        for _ in range(CONFLICT_ATTEMPTS):
            try:
                written = await self.kube.patch_ticket_status(
                    self.namespace, self.name, {"status": body}, resource_version=self.version
                )
            except Conflict:
                fresh = await self.kube.get_ticket(self.namespace, self.name)
                if fresh is None:
                    raise ChangedMeanwhile(
                        f"ticket {self.ref} was deleted during its reconcile pass", delay=1.0
                    ) from None
                if owned(RemediationTicket.model_validate(fresh).status) != self.written:
                    raise ChangedMeanwhile(
                        f"ticket {self.ref} changed during its reconcile pass; the next pass starts from it", delay=1.0
                    ) from None
                self.version = resource_version(fresh)
                continue
            self.version = resource_version(written)
            return
        raise ChangedMeanwhile(f"ticket {self.ref} kept changing while its status was written", delay=1.0)

    def _phase_event(self, phase: TicketPhase, previous: TicketPhase | None) -> EventText:
        issue, verification = self.status.issue, self.status.verification
        revision = ""
        if verification is not None and verification.pod_template_hash:
            revision = f"{verification.revision or '?'} ({verification.pod_template_hash})"
        return phase_event(
            self.name,
            self.ticket.spec.rollout,
            phase.value,
            previous=previous.value if previous is not None else "",
            issue=issue.number if issue is not None else None,
            pull_request=self.status.pull_request,
            revision=revision,
        )
