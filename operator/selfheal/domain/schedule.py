"""What the operator's own work is done in: the priority of each kind of job and the order of log-watch looks."""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum


class Priority(IntEnum):
    """Lower goes first. A decision somebody waits for comes before any routine work."""

    # A failed or inconclusive analysis, an indefinite pause: a Rollout waits for a verdict.
    TRIGGERED = 0
    # Following a RemediationTicket on GitHub and on the next rollout.
    TICKET = 1
    # A policy's status: Ready, the Rollouts it matches, what it spent.
    POLICY = 2
    # The periodic look at a progressing canary's logs.
    LOG_WATCH = 3


def look_rank(last_look: datetime | None, progress: float, interval: float) -> float:
    """The order of the log-watch looks when more are due than can be done at once: smaller goes first.

    The canary whose last look is oldest goes first (one never looked at before any other); being
    near a promotion counts as having waited up to one more interval, so a canary at its last step goes
    before one at its first step that has waited less than an interval longer, and none waits forever.
    """
    waited_since = last_look.timestamp() if last_look is not None else 0.0
    return waited_since - max(0.0, min(1.0, progress)) * interval
