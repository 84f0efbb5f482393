"""Whether a Rollout is still in the situation a judgement was about, and so may be acted on."""

from __future__ import annotations

from dataclasses import dataclass

from selfheal.domain.argo import (
    MSG_GENERATION_NOT_OBSERVED,
    MSG_UNPAUSING,
    Rollout,
    canary_hash,
    current_step_index,
    effective_phase,
    stable_hash,
)

CHANGED = "the Rollout changed since it was judged"


@dataclass(frozen=True)
class Situation:
    """What one judgement was about: the Rollout's revision and where it stood, taken with the evidence.

    A stopping action (abort, or pause on an unhealthy verdict) needs the same revision only: stopping
    the canary that was judged unhealthy is safe wherever it stands. An action that lets the rollout
    move on, or holds it on unsure grounds (promote, pause on any other verdict), needs the whole
    situation unchanged.
    """

    uid: str
    template: str
    canary: str
    stable: str
    step: int | None
    steps: int
    pauses: tuple[tuple[str, str], ...]
    paused: bool
    aborted: bool
    promote_full: bool
    step_run: tuple[str, str]

    @classmethod
    def of(cls, ro: Rollout) -> Situation:
        run = ro.status.canary.current_step_analysis_run_status
        return cls(
            uid=ro.uid,
            template=ro.template_digest,
            canary=canary_hash(ro) or ro.status.current_pod_hash,
            stable=stable_hash(ro) or "",
            step=current_step_index(ro),
            steps=len(ro.steps),
            pauses=tuple(
                (c.reason, c.start_time.isoformat() if c.start_time else "") for c in ro.status.pause_conditions
            ),
            paused=ro.paused,
            aborted=ro.status.abort,
            promote_full=ro.status.promote_full,
            step_run=(run.name, run.status) if run is not None else ("", ""),
        )

    def step_label(self) -> str:
        if self.step is None:
            return "no step"
        return f"step {self.step + 1}/{self.steps}" if self.step < self.steps else f"the end of its {self.steps} steps"


def _pauses(pauses: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{reason} since {start}" if start else reason for reason, start in pauses) or "none"


def _run(run: tuple[str, str]) -> str:
    return f"{run[0]} ({run[1] or 'no phase'})" if run[0] else "none"


def _revision_changes(judged: Situation, now: Situation) -> list[str]:
    """What makes ``now`` another revision (or another object) than the one judged."""
    if now.uid != judged.uid:
        return ["it was deleted and created again"]
    changes = []
    if now.template != judged.template:
        changes.append("its pod template changed (a new revision)")
    if now.canary != judged.canary:
        changes.append(f"its canary is {now.canary or 'gone'}, not the judged {judged.canary}")
    elif now.stable != judged.stable:
        promoted = now.stable == judged.canary
        changes.append(
            f"the judged canary {judged.canary} " + ("was fully promoted" if promoted else "has another stable")
        )
    return changes


def changes(judged: Situation, now: Situation) -> list[str]:
    """Everything an action depends on that differs between the judged situation and ``now``, in words."""
    found = _revision_changes(judged, now)
    if found and now.uid != judged.uid:
        return found
    if now.step != judged.step:
        found.append(f"it moved from {judged.step_label()} to {now.step_label()}")
    if now.pauses != judged.pauses:
        found.append(f"its pause conditions went from {_pauses(judged.pauses)} to {_pauses(now.pauses)}")
    if now.paused != judged.paused:
        found.append("spec.paused was " + ("set" if now.paused else "cleared"))
    if now.aborted != judged.aborted:
        found.append("it was " + ("aborted" if now.aborted else "retried"))
    if now.promote_full != judged.promote_full:
        found.append("a full promotion was " + ("requested" if now.promote_full else "withdrawn"))
    if now.step_run != judged.step_run:
        found.append(f"its step analysis went from {_run(judged.step_run)} to {_run(now.step_run)}")
    return found


def refusal_to_stop(judged: Situation, fresh: Rollout | None) -> str | None:
    """Why an abort (or a pause on an unhealthy verdict) must not be sent to ``fresh``; None when it may."""
    if fresh is None:
        return "the Rollout is gone"
    found = _revision_changes(judged, Situation.of(fresh))
    return f"{CHANGED}: {'; '.join(found)}" if found else None


def refusal_to_proceed(judged: Situation, fresh: Rollout | None) -> str | None:
    """Why a promote (or a pause on an unsure verdict) must not be sent to ``fresh``; None when it may.

    ``fresh`` must still be exactly the judged situation, settled (its spec observed by the
    controller, not being unpaused), not paused by hand and not aborted.
    """
    if fresh is None:
        return "the Rollout is gone"
    found = changes(judged, Situation.of(fresh))
    if found:
        return f"{CHANGED}: {'; '.join(found)}"
    phase, message = effective_phase(fresh)
    if message in (MSG_GENERATION_NOT_OBSERVED, MSG_UNPAUSING):
        return f"the Rollout is {phase}: {message}"
    if fresh.paused:
        return "the Rollout is paused by hand (spec.paused); that pause is left to whoever set it"
    if fresh.status.abort:
        return "the Rollout is aborted"
    return None
