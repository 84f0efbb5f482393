"""The judgement ledger: what was judged and done about each live canary, as kept in its policy's status.

``status.canaries.<rollout>`` of the governing SelfHealingPolicy holds one `CanaryRecord` per Rollout
whose canary is live: the revision (pod-template hash), how many attempts at it were made, the situations
already judged, the actions already taken, and the last judgement with how far it was carried out. The
record of a revision replaces the previous one, and goes when the canary ends, so the map stays as small
as the number of canaries in progress. A judgement is written before anything is done about it and each
step after it is done, so a restart resumes where it stopped and repeats nothing.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from selfheal.domain.situation import Situation
from selfheal.domain.ticket import STATUS_MODEL_CONFIG, to_wire
from selfheal.domain.verdict import VerdictKind

# Bounds that keep one record small: situations judged and actions taken per revision.
MAX_JUDGED = 20
MAX_ACTED = 20
MAX_SUMMARY = 2000
MAX_REASON = 1000
MAX_ERROR = 300
MAX_DRAFT = 131072


class Step(StrEnum):
    """How far a judgement was carried out."""

    JUDGED = "Judged"  # recorded; nothing done yet
    TICKETED = "Ticketed"  # the failure is on its RemediationTicket
    ACTED = "Acted"  # the action was sent (or skipped, and why)
    DONE = "Done"  # explained in Events: nothing left to do


class JudgedSituation(BaseModel):
    """A situation of the canary that was judged: a pause, a failed run, a log-watch finding."""

    model_config = STATUS_MODEL_CONFIG

    situation: str = Field(min_length=1, max_length=253)
    verdict: VerdictKind
    at: datetime
    # Judged without its analyzer: asked again after the interval, like an inconclusive verdict.
    again: bool = False


class SituationRecord(BaseModel):
    """Where the Rollout stood when it was judged (`domain.situation.Situation`), to act on that only."""

    model_config = STATUS_MODEL_CONFIG

    uid: str = ""
    template: str = ""
    canary: str = ""
    stable: str = ""
    step: int | None = None
    steps: int = 0
    pauses: list[list[str]] = Field(default_factory=list)
    paused: bool = False
    aborted: bool = False
    promote_full: bool = False
    step_run: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, s: Situation) -> SituationRecord:
        return cls(
            uid=s.uid,
            template=s.template,
            canary=s.canary,
            stable=s.stable,
            step=s.step,
            steps=s.steps,
            pauses=[_trimmed(p) for p in s.pauses],
            paused=s.paused,
            aborted=s.aborted,
            promote_full=s.promote_full,
            step_run=_trimmed(s.step_run),
        )

    def situation(self) -> Situation:
        run = _padded(self.step_run)
        return Situation(
            uid=self.uid,
            template=self.template,
            canary=self.canary,
            stable=self.stable,
            step=self.step,
            steps=self.steps,
            pauses=tuple(_padded(p) for p in self.pauses if p),
            paused=self.paused,
            aborted=self.aborted,
            promote_full=self.promote_full,
            step_run=(run[0], run[1]),
        )


def _trimmed(pair: tuple[str, str]) -> list[str]:
    """A pair as stored: trailing empty parts left out (the apiserver keeps no empty strings in a list)."""
    items = list(pair)
    while items and not items[-1]:
        items.pop()
    return items


def _padded(items: list[str]) -> tuple[str, str]:
    first, second = [*items, "", ""][:2]
    return first, second


class JudgementRecord(BaseModel):
    """The last judgement of the canary and how far it was carried out; everything its Events need."""

    model_config = STATUS_MODEL_CONFIG

    situation: str = Field(min_length=1, max_length=253)
    trigger: str = Field("", max_length=63)
    revision: str = Field("", max_length=63)
    at: datetime
    verdict: VerdictKind
    confidence: int = Field(0, ge=0, le=100)
    analyzer: str = Field("", max_length=63)
    summary: str = Field("", max_length=MAX_SUMMARY)
    reason: str = Field("", max_length=MAX_REASON)
    analyzer_error: str = Field("", max_length=MAX_ERROR)
    # What the decision asked for: abort, pause, promote or none; not sent at all in a dry run.
    action: str = Field(min_length=1, max_length=63)
    dry_run: bool = False
    occurrence_key: str = Field("", max_length=253)
    fingerprint: str = Field("", max_length=128)
    # The RemediationTicket the failure is recorded on ("" when none is due), and whether this judgement opened it.
    ticket: str = Field("", max_length=253)
    opened: bool = False
    # What was done: the action, or why it was skipped ("" until then).
    result: str = Field("", max_length=MAX_REASON)
    step: Step
    judged: SituationRecord
    # The ticket to create (its spec as JSON, as sent to the apiserver), kept until the ticket exists.
    draft: str = Field("", max_length=MAX_DRAFT)

    @property
    def done(self) -> bool:
        return self.step == Step.DONE


class CanaryRecord(BaseModel):
    """What the operator judged and did about one Rollout's live canary (one revision)."""

    model_config = STATUS_MODEL_CONFIG

    pod_template_hash: str = Field(min_length=1, max_length=63)
    # Attempts at this revision before the current one: each retry after an abort counts one.
    attempt: int = Field(0, ge=0)
    # Whether the revision was aborted when last seen (a retry clears it).
    aborted: bool = False
    judged: list[JudgedSituation] = Field(default_factory=list, max_length=MAX_JUDGED)
    # Actions already taken, at most once each: "abort attempt-0", "promote step 2/4".
    acted: list[str] = Field(default_factory=list, max_length=MAX_ACTED)
    last: JudgementRecord | None = None


# --- keeping a record ------------------------------------------------------------------------------


def for_revision(record: CanaryRecord | None, pod_hash: str, aborted: bool) -> CanaryRecord:
    """The record of revision ``pod_hash``, its abort state observed: a retry (aborted, then not) is one
    more attempt; another revision starts a record of its own."""
    if record is None or record.pod_template_hash != pod_hash:
        return CanaryRecord(pod_template_hash=pod_hash, aborted=aborted)
    if record.aborted and not aborted:
        return record.model_copy(update={"attempt": record.attempt + 1, "aborted": False})
    if record.aborted != aborted:
        return record.model_copy(update={"aborted": aborted})
    return record


def is_due(record: CanaryRecord, situation: str, interval_seconds: float, now: datetime) -> bool:
    """Whether ``situation`` needs a (new) judgement: never judged, or judged unsure (or without its
    analyzer) at least ``interval_seconds`` ago."""
    seen = next((j for j in record.judged if j.situation == situation), None)
    if seen is None:
        return True
    unsure = seen.again or seen.verdict == VerdictKind.INCONCLUSIVE
    return unsure and (now - seen.at).total_seconds() >= interval_seconds


def with_judged(record: CanaryRecord, judged: JudgedSituation) -> CanaryRecord:
    """``judged`` recorded (replacing an earlier judgement of the same situation), oldest dropped past the bound."""
    kept = [j for j in record.judged if j.situation != judged.situation]
    return record.model_copy(update={"judged": [*kept, judged][-MAX_JUDGED:]})


def without_judged(record: CanaryRecord, situation: str) -> CanaryRecord:
    """``situation`` forgotten: the Rollout outran the judgement, so it is judged again when it comes back."""
    return record.model_copy(update={"judged": [j for j in record.judged if j.situation != situation]})


def acted_key(action: str, detail: str) -> str:
    return f"{action} {detail}"


def with_acted(record: CanaryRecord, key: str) -> CanaryRecord:
    if key in record.acted:
        return record
    return record.model_copy(update={"acted": [*record.acted, key][-MAX_ACTED:]})


def fulfilled(action: str, judged: Situation, now: Situation) -> bool:
    """Whether the Rollout already shows ``action`` done to the judged revision: after a restart between
    sending it and recording it, it is recorded as done, not sent again."""
    if now.uid != judged.uid or now.canary != judged.canary:
        return False
    if action == "abort":
        return now.aborted and not judged.aborted
    if action == "pause":
        return now.paused and not judged.paused
    if action == "promote":
        moved = judged.step is not None and now.step is not None and now.step > judged.step
        return moved or now.stable == judged.canary or (bool(judged.pauses) and not now.pauses and not now.aborted)
    return False


# --- the status map --------------------------------------------------------------------------------


def wire(record: CanaryRecord | None) -> dict[str, Any] | None:
    """A record as the policy status stores it."""
    return None if record is None else to_wire(record)


def merge_patch(old: Any, new: Any) -> Any:
    """The JSON merge patch turning ``old`` into ``new``: removed keys become null, lists are replaced whole;
    None when there is nothing to change."""
    if isinstance(old, dict) and isinstance(new, dict):
        patch = {k: None for k in old if k not in new}
        for key, value in new.items():
            if key not in old:
                patch[key] = value
                continue
            change = merge_patch(old[key], value)
            if change is not None:
                patch[key] = change
        return patch or None
    return None if old == new else new


def stale(canaries: dict[str, Any] | None, live: set[str]) -> list[str]:
    """The Rollouts of the map that the policy no longer governs (deleted, or selected elsewhere)."""
    return sorted(name for name in canaries or {} if name not in live)
