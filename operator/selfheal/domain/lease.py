"""Leader election on a coordination.k8s.io/v1 Lease: who may hold it, decided from what was observed.

A holder renews its Lease every few seconds. Another candidate takes it over only once the record it
observed has not changed for the Lease's whole duration, measured on its own clock (as client-go does),
so clocks that disagree between nodes never hand the Lease over early.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime


@dataclass(frozen=True)
class LeaseRecord:
    """The spec of a Lease, as far as leader election uses it."""

    holder: str
    duration_seconds: int
    acquired: datetime | None = None
    renewed: datetime | None = None
    transitions: int = 0

    @property
    def version(self) -> tuple[str, datetime | None]:
        """What changes whenever the holder renews or another takes over."""
        return self.holder, self.renewed


def claim(
    current: LeaseRecord | None, me: str, duration_seconds: int, now: datetime, *, expired: bool
) -> LeaseRecord | None:
    """The record to write to hold the Lease as ``me``; None while another holder's Lease is live.

    ``expired``: the record observed has not changed for its duration (on the candidate's own clock).
    A Lease released on shutdown (no holder) is taken at once."""
    if current is None:
        return LeaseRecord(me, duration_seconds, now, now, 0)
    if current.holder == me:
        return replace(current, duration_seconds=duration_seconds, renewed=now)
    if current.holder and not expired:
        return None
    return LeaseRecord(me, duration_seconds, now, now, current.transitions + 1)


def release(current: LeaseRecord | None, me: str) -> LeaseRecord | None:
    """The record that gives the Lease up on a clean shutdown, so a standby takes it at once; None when
    ``me`` does not hold it."""
    if current is None or current.holder != me:
        return None
    return replace(current, holder="", duration_seconds=1)
