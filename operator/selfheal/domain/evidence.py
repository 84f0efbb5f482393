"""The evidence gathered about one canary: pods, logs, events and failed metrics of both sides."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class Side(StrEnum):
    CANARY = "canary"
    STABLE = "stable"


class ContainerState(BaseModel):
    name: str
    image: str = ""
    ready: bool = False
    restart_count: int = 0
    # e.g. "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull" (current waiting reason)
    waiting_reason: str = ""
    # e.g. "OOMKilled", "Error" (last terminated reason)
    last_terminated_reason: str = ""
    last_exit_code: int | None = None


class PodLog(BaseModel):
    """A bounded tail of one container's log. ``text`` is raw, untrusted and not yet redacted.

    ``error`` says why the log could not be read ("" when it was): an unread log is not an empty one.
    """

    pod: str
    container: str
    previous: bool = False
    text: str = ""
    truncated: bool = False
    error: str = ""

    @property
    def label(self) -> str:
        return f"{self.pod}/{self.container}" + (" (previous)" if self.previous else "")


class PodEvidence(BaseModel):
    name: str
    side: Side
    phase: str = ""
    ready: bool = False
    containers: list[ContainerState] = Field(default_factory=list)
    logs: list[PodLog] = Field(default_factory=list)

    @property
    def restarts(self) -> int:
        return sum(c.restart_count for c in self.containers)


class EventRecord(BaseModel):
    """A Kubernetes Event about one of the pods (or the Rollout)."""

    object_name: str
    type: str = "Normal"
    reason: str = ""
    message: str = ""
    count: int = 1


class FailedMetric(BaseModel):
    """A metric of an AnalysisRun that ended Failed, Error or Inconclusive."""

    analysis_run: str
    name: str
    phase: str
    message: str = ""
    values: list[str] = Field(default_factory=list)


class Evidence(BaseModel):
    """Everything known about one (rollout, canary hash) at one moment."""

    namespace: str
    rollout: str
    canary_hash: str
    stable_hash: str = ""
    revision: str = ""
    step: str = ""
    images: list[str] = Field(default_factory=list)
    trigger: str = ""
    canary_since: datetime | None = None
    pods: list[PodEvidence] = Field(default_factory=list)
    events: list[EventRecord] = Field(default_factory=list)
    failed_metrics: list[FailedMetric] = Field(default_factory=list)
    analysis_message: str = ""

    def side(self, side: Side) -> list[PodEvidence]:
        return [p for p in self.pods if p.side == side]

    def has_canary_logs(self) -> bool:
        """Whether any canary pod's log could be read (a basic canary's pods are gone right after an abort)."""
        return any(log.text for pod in self.side(Side.CANARY) for log in pod.logs)

    def log_text(self, side: Side) -> str:
        return "\n".join(log.text for pod in self.side(side) for log in pod.logs if log.text)

    def failed_reads(self, side: Side | None = None) -> list[PodLog]:
        """The logs that could not be read, of one side or of both."""
        pods = self.pods if side is None else self.side(side)
        return [log for pod in pods for log in pod.logs if log.error]
