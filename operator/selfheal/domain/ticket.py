"""RemediationTicket as pydantic models, plus shared metadata, condition and naming helpers."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from selfheal import API_VERSION as API_VERSION
from selfheal import GROUP as GROUP
from selfheal import VERSION as VERSION
from selfheal.domain.evidence import FailedMetric, PodEvidence
from selfheal.domain.verdict import Analyzer, Verdict, VerdictKind

# --- API identity -------------------------------------------------------------------------------

# The API group and version are the package's (selfheal.GROUP, .VERSION); re-exported here for the models.

TICKET_KIND = "RemediationTicket"
TICKET_PLURAL = "remediationtickets"
TICKET_SHORT_NAME = "rtk"

# Bounds on what a ticket spec may carry, so an object stays far below etcd's size limit.
# Builders slice their lists to these before constructing a TicketSpec.
MAX_TEMPLATES = 50
MAX_TEMPLATE_EXAMPLES = 5
MAX_TEMPLATE_LENGTH = 2000
MAX_FAILED_METRICS = 50
MAX_METRIC_VALUES = 20
MAX_PODS = 50
MAX_IMAGES = 50
MAX_SUMMARY_LENGTH = 2000
MAX_TEXT_LENGTH = 8000
MAX_PULL_REQUESTS = 50
MAX_NAME_LENGTH = 253
MAX_FAILURE_LINES = 10
MAX_FAILURE_LINE = 500

# Field-name translation shared by every model of our two resources: snake_case in Python,
# camelCase on the wire. Names whose wire spelling is not plain camelCase carry an explicit alias.
KUBE_MODEL_CONFIG = ConfigDict(
    alias_generator=to_camel,
    populate_by_name=True,
    serialize_by_alias=True,
)
SPEC_MODEL_CONFIG = ConfigDict(**KUBE_MODEL_CONFIG, extra="forbid")
STATUS_MODEL_CONFIG = ConfigDict(**KUBE_MODEL_CONFIG, extra="ignore")


def to_wire(value: Any) -> Any:
    """The JSON form of a model (or of plain data) as sent to the apiserver.

    camelCase names; dict entries that are None or the empty string are left out. Absent and ""
    mean the same to our models, and the v1.20 test apiserver refuses "" in custom resources.
    """
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, Mapping):
        return {k: to_wire(v) for k, v in value.items() if v is not None and v != ""}
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    return value


# --- Metadata -------------------------------------------------------------------------------------


class OwnerReference(BaseModel):
    """A metadata.ownerReferences entry (a ticket is owned by its Rollout)."""

    model_config = STATUS_MODEL_CONFIG

    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(BaseModel):
    """The parts of metadata the operator reads or writes; everything else is ignored."""

    model_config = STATUS_MODEL_CONFIG

    name: str = ""
    namespace: str = ""
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    owner_references: list[OwnerReference] = Field(default_factory=list)


# --- Conditions -----------------------------------------------------------------------------------


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(StrEnum):
    """Condition types used on our resources (``Ready`` on policies, the rest on tickets)."""

    READY = "Ready"
    ISSUE_OPENED = "IssueOpened"
    FIX_PROPOSED = "FixProposed"
    FIX_MERGED = "FixMerged"
    VERIFIED = "Verified"


class Reason(StrEnum):
    """Condition reasons. CamelCase, as Kubernetes expects."""

    # Ready (policy)
    VALID = "Valid"
    INVALID_SPEC = "InvalidSpec"
    SECRET_NOT_FOUND = "SecretNotFound"
    SECRET_KEY_MISSING = "SecretKeyMissing"
    BAD_CREDENTIALS = "BadCredentials"
    REPOSITORY_NOT_FOUND = "RepositoryNotFound"
    INVALID_LABEL = "InvalidLabel"
    ANALYZER_UNREACHABLE = "AnalyzerUnreachable"
    SELECTOR_CONFLICT = "SelectorConflict"
    BUDGET_EXHAUSTED = "BudgetExhausted"
    # IssueOpened (ticket)
    ISSUE_CREATED = "IssueCreated"
    ISSUE_FOUND = "IssueFound"
    ISSUE_CLOSED = "IssueClosed"
    GITHUB_DISABLED = "GitHubDisabled"
    GITHUB_UNAVAILABLE = "GitHubUnavailable"
    POLICY_NOT_FOUND = "PolicyNotFound"
    RATE_LIMITED = "RateLimited"
    # FixProposed / FixMerged (ticket)
    AGENT_ASSIGNED = "AgentAssigned"
    AGENT_STALLED = "AgentStalled"
    AGENT_NOT_STARTED = "AgentNotStarted"
    AGENT_ASKED_AGAIN = "AgentAskedAgain"
    NO_AGENT = "NoAgent"
    PULL_REQUEST_OPENED = "PullRequestOpened"
    PULL_REQUEST_CLOSED = "PullRequestClosed"
    PULL_REQUEST_MERGED = "PullRequestMerged"
    # Verified (ticket)
    AWAITING_ROLLOUT = "AwaitingRollout"
    REVISION_VERIFYING = "RevisionVerifying"
    REVISION_VERIFIED = "RevisionVerified"
    REVISION_REGRESSED = "RevisionRegressed"
    FIX_REGRESSED = "FixRegressed"


class Condition(BaseModel):
    """A Kubernetes-style status condition."""

    model_config = STATUS_MODEL_CONFIG

    type: str = Field(min_length=1, max_length=316)
    status: ConditionStatus
    reason: str = Field("", max_length=1024)
    message: str = Field("", max_length=32768)
    last_transition_time: datetime
    observed_generation: int | None = Field(None, ge=0)


def get_condition(conditions: Iterable[Condition | Mapping[str, Any]] | None, type: str) -> Condition | None:
    """The condition of the given type, or None."""
    for item in conditions or ():
        cond = item if isinstance(item, Condition) else Condition.model_validate(item)
        if cond.type == type:
            return cond
    return None


def is_condition_true(conditions: Iterable[Condition | Mapping[str, Any]] | None, type: str) -> bool:
    cond = get_condition(conditions, type)
    return cond is not None and cond.status == ConditionStatus.TRUE


def set_condition(
    conditions: Iterable[Condition | Mapping[str, Any]] | None,
    type: str,
    status: ConditionStatus | str | bool,
    reason: str,
    message: str,
    now: datetime,
    observed_generation: int | None = None,
) -> list[Condition]:
    """A new condition list with ``type`` set; ``lastTransitionTime`` only moves when the status changes.

    The input is not modified; the order of existing conditions is kept and a new type is appended.
    A bool ``status`` means True/False.
    """
    if isinstance(status, bool):
        status = ConditionStatus.TRUE if status else ConditionStatus.FALSE
    status = ConditionStatus(status)
    result: list[Condition] = []
    found = False
    for item in conditions or ():
        cond = item if isinstance(item, Condition) else Condition.model_validate(item)
        if cond.type == type and not found:
            found = True
            transition = cond.last_transition_time if cond.status == status else now
            cond = Condition(
                type=type,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=transition,
                observed_generation=observed_generation,
            )
        elif cond.type == type:
            # a duplicate of a type already set: dropped
            continue
        result.append(cond)
    if not found:
        result.append(
            Condition(
                type=type,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=now,
                observed_generation=observed_generation,
            )
        )
    return result


# --- Naming ---------------------------------------------------------------------------------------

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DIGEST_LENGTH = 10


def is_dns1123_subdomain(name: str) -> bool:
    return len(name) <= MAX_NAME_LENGTH and bool(_DNS1123_SUBDOMAIN.match(name))


def ticket_name(rollout: str, pod_hash: str) -> str:
    """The deterministic name of the ticket for one (rollout, pod-template hash).

    ``<rollout>-<hash>`` when that is a valid DNS-1123 subdomain of at most 253 characters; otherwise
    a sanitised, truncated form followed by a short digest of the exact inputs, so distinct inputs
    keep distinct names.
    """
    plain = f"{rollout}-{pod_hash}"
    if rollout and pod_hash and is_dns1123_subdomain(plain):
        return plain
    digest = hashlib.sha256(f"{rollout}\0{pod_hash}".encode()).hexdigest()[:_DIGEST_LENGTH]
    cleaned = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")
    room = MAX_NAME_LENGTH - _DIGEST_LENGTH - 1
    cleaned = cleaned[:room].rstrip("-")
    return f"{cleaned}-{digest}" if cleaned else f"ticket-{digest}"


# --- Spec -----------------------------------------------------------------------------------------


class TicketPhase(StrEnum):
    OPEN = "Open"
    ISSUE_OPENED = "IssueOpened"
    FIX_PROPOSED = "FixProposed"
    FIX_MERGED = "FixMerged"
    VERIFYING = "Verifying"
    RESOLVED = "Resolved"
    REGRESSED = "Regressed"
    CLOSED = "Closed"
    FAILED = "Failed"


class TemplateSeverity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class TemplateChange(StrEnum):
    """How a log template's frequency in the canary compares with the stable side."""

    NEW = "new"
    INCREASED = "increased"
    DECREASED = "decreased"
    UNCHANGED = "unchanged"
    GONE = "gone"


class PodSide(StrEnum):
    CANARY = "canary"
    STABLE = "stable"


class TicketVerdict(BaseModel):
    """The verdict recorded on a ticket (the wire form of ``domain.verdict.Verdict``)."""

    model_config = SPEC_MODEL_CONFIG

    verdict: VerdictKind
    confidence: int = Field(ge=0, le=100)
    analyzer: Analyzer
    summary: str = Field(max_length=MAX_SUMMARY_LENGTH)
    root_cause: str = Field("", max_length=MAX_TEXT_LENGTH)
    suggested_fix: str = Field("", max_length=MAX_TEXT_LENGTH)
    evidence_refs: list[Annotated[str, Field(max_length=253)]] = Field(default_factory=list, max_length=100)
    hard_evidence: bool = False

    @classmethod
    def from_verdict(cls, verdict: Verdict) -> TicketVerdict:
        return cls(
            verdict=verdict.verdict,
            confidence=verdict.confidence,
            analyzer=verdict.analyzer,
            summary=verdict.summary,
            root_cause=verdict.root_cause[:MAX_TEXT_LENGTH],
            suggested_fix=verdict.suggested_fix[:MAX_TEXT_LENGTH],
            evidence_refs=verdict.evidence_refs[:100],
            hard_evidence=verdict.hard_evidence,
        )

    def to_verdict(self) -> Verdict:
        return Verdict(
            verdict=self.verdict,
            confidence=self.confidence,
            analyzer=self.analyzer,
            summary=self.summary,
            root_cause=self.root_cause,
            suggested_fix=self.suggested_fix,
            evidence_refs=list(self.evidence_refs),
            hard_evidence=self.hard_evidence,
        )


class TemplateRecord(BaseModel):
    """One log template with its counts on both sides."""

    model_config = SPEC_MODEL_CONFIG

    id: str = Field(min_length=1, max_length=63)
    template: str = Field(max_length=MAX_TEMPLATE_LENGTH)
    severity: TemplateSeverity = TemplateSeverity.INFO
    status: TemplateChange = TemplateChange.UNCHANGED
    canary_count: int = Field(0, ge=0)
    stable_count: int = Field(0, ge=0)
    canary_rate: float = Field(0, ge=0)
    stable_rate: float = Field(0, ge=0)
    examples: list[Annotated[str, Field(max_length=MAX_TEMPLATE_LENGTH)]] = Field(
        default_factory=list, max_length=MAX_TEMPLATE_EXAMPLES
    )


class FailedMetricRecord(BaseModel):
    """A failed, errored or inconclusive AnalysisRun metric."""

    model_config = SPEC_MODEL_CONFIG

    analysis_run: str = Field(min_length=1, max_length=253)
    name: str = Field(min_length=1, max_length=253)
    phase: str = Field("", max_length=63)
    message: str = Field("", max_length=MAX_TEXT_LENGTH)
    values: list[Annotated[str, Field(max_length=1024)]] = Field(default_factory=list, max_length=MAX_METRIC_VALUES)

    @classmethod
    def from_failed_metric(cls, metric: FailedMetric) -> FailedMetricRecord:
        return cls(
            analysis_run=metric.analysis_run,
            name=metric.name,
            phase=metric.phase,
            message=metric.message[:MAX_TEXT_LENGTH],
            values=[v[:1024] for v in metric.values[-MAX_METRIC_VALUES:]],
        )


class PodRecord(BaseModel):
    """The state of one canary or stable pod when the ticket was written."""

    model_config = SPEC_MODEL_CONFIG

    name: str = Field(min_length=1, max_length=253)
    side: PodSide
    phase: str = Field("", max_length=63)
    ready: bool = False
    restarts: int = Field(0, ge=0)
    reasons: list[Annotated[str, Field(max_length=253)]] = Field(default_factory=list, max_length=20)

    @classmethod
    def from_pod(cls, pod: PodEvidence) -> PodRecord:
        reasons: list[str] = []
        for c in pod.containers:
            for reason in (c.waiting_reason, c.last_terminated_reason):
                if reason and reason not in reasons:
                    reasons.append(reason)
        return cls(
            name=pod.name,
            side=PodSide(pod.side.value),
            phase=pod.phase,
            ready=pod.ready,
            restarts=pod.restarts,
            reasons=reasons[:20],
        )


class TicketEvidence(BaseModel):
    """The evidence the verdict rests on, already redacted."""

    model_config = SPEC_MODEL_CONFIG

    templates: list[TemplateRecord] = Field(default_factory=list, max_length=MAX_TEMPLATES)
    failed_metrics: list[FailedMetricRecord] = Field(default_factory=list, max_length=MAX_FAILED_METRICS)
    pods: list[PodRecord] = Field(default_factory=list, max_length=MAX_PODS)
    # how many secrets of each kind were masked before the evidence left the cluster
    redactions: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)


class TicketSpec(BaseModel):
    """Identity, verdict and evidence of a ticket, written once when the ticket is created."""

    model_config = SPEC_MODEL_CONFIG

    rollout: str = Field(min_length=1, max_length=253)
    policy: str = Field(min_length=1, max_length=253)
    pod_template_hash: str = Field(min_length=1, max_length=63)
    revision: str = Field("", max_length=63)
    # The failure exactly (its workload, primary signature and every crash) and its primary signature
    # alone (with the workload), which keys its GitHub issue; ``failure`` says it in words, primary first.
    fingerprint: str = Field(min_length=1, max_length=128, pattern=r"^[0-9a-f]+$")
    signature: str = Field("", max_length=128, pattern=r"^[0-9a-f]*$")
    failure: list[Annotated[str, Field(max_length=MAX_FAILURE_LINE)]] = Field(
        default_factory=list, max_length=MAX_FAILURE_LINES
    )
    images: list[Annotated[str, Field(max_length=1024)]] = Field(default_factory=list, max_length=MAX_IMAGES)
    step: str = Field("", max_length=63)
    trigger: str = Field("", max_length=63)
    # what failed, in one line people read (the printer column and notifications)
    headline: str = Field("", max_length=200)
    # the fingerprint's first digits, for the printer column
    short_fingerprint: str = Field("", max_length=12, pattern=r"^[0-9a-f]*$")
    verdict: TicketVerdict
    evidence: TicketEvidence = Field(default_factory=TicketEvidence)


# --- Status ---------------------------------------------------------------------------------------


class IssueState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class PullRequestState(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"
    MERGED = "merged"


class VerificationState(StrEnum):
    PENDING = "Pending"
    VERIFYING = "Verifying"
    PASSED = "Passed"
    FAILED = "Failed"


class IssueStatus(BaseModel):
    """The GitHub issue of a ticket, or why there is none."""

    model_config = STATUS_MODEL_CONFIG

    number: int | None = Field(None, ge=1)
    url: str = ""
    state: IssueState | None = None
    # True when no issue will be opened (no GitHub configured, or GitHub refused for good)
    disabled: bool = False
    reason: str = ""
    agent: str = ""
    agent_assigned: bool = False
    last_comment_at: datetime | None = None
    etag: str = ""
    # the occurrence count the last occurrence comment reported
    commented_occurrences: int = Field(0, ge=0)
    # the stalled agent was escalated to a human (done once)
    escalated: bool = False
    # pod-template hash of the regressed revision the issue was reopened for (done once per regression)
    reopened_for: str = Field("", max_length=63)


class PullRequestStatus(BaseModel):
    """A pull request that references the ticket's issue."""

    model_config = STATUS_MODEL_CONFIG

    number: int = Field(ge=1)
    url: str = ""
    author: str = ""
    state: PullRequestState | None = None
    head_sha: str = Field("", alias="headSHA")
    merge_sha: str = Field("", alias="mergeSHA")
    merged_at: datetime | None = None


class VerificationStatus(BaseModel):
    """The check of the first revision rolled out after the fix was merged."""

    model_config = STATUS_MODEL_CONFIG

    revision: str = ""
    pod_template_hash: str = ""
    state: VerificationState | None = None
    started_at: datetime | None = None
    verified_at: datetime | None = None
    message: str = ""
    # the outcome was reported on the issue (verified comment and close, or regression)
    reported: bool = False


class LastAction(BaseModel):
    """The last action taken on the Rollout for this ticket (abort, pause, promote...)."""

    model_config = STATUS_MODEL_CONFIG

    type: str = ""
    revision: str = ""
    at: datetime | None = None


class NotificationStatus(BaseModel):
    """The last phase announced (an Event on the ticket, and the policy's notification channels)."""

    model_config = STATUS_MODEL_CONFIG

    phase: str = Field("", max_length=63)
    at: datetime | None = None
    delivered: list[Annotated[str, Field(max_length=63)]] = Field(default_factory=list, max_length=10)
    failed: list[Annotated[str, Field(max_length=63)]] = Field(default_factory=list, max_length=10)
    message: str = Field("", max_length=1024)


class TicketStatus(BaseModel):
    """Progress of a ticket: issue, pull requests, verification."""

    model_config = STATUS_MODEL_CONFIG

    observed_generation: int | None = Field(None, ge=0)
    phase: TicketPhase | None = None
    conditions: list[Condition] = Field(default_factory=list)
    occurrences: int = Field(1, ge=1)
    # what each counted occurrence was (newest last), so a repeated event is not counted twice
    occurrence_keys: list[Annotated[str, Field(max_length=253)]] = Field(default_factory=list, max_length=20)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    issue: IssueStatus | None = None
    # number of the pull request currently tracked (for the printer column)
    pull_request: int | None = Field(None, ge=1)
    pull_requests: list[PullRequestStatus] = Field(default_factory=list, max_length=MAX_PULL_REQUESTS)
    verification: VerificationStatus | None = None
    last_action: LastAction | None = None
    notification: NotificationStatus | None = None


class RemediationTicket(BaseModel):
    """A whole RemediationTicket object."""

    model_config = STATUS_MODEL_CONFIG

    api_version: str = API_VERSION
    kind: str = TICKET_KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: TicketSpec
    status: TicketStatus = Field(default_factory=TicketStatus)

    @field_validator("status", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    def to_body(self, *, include_status: bool = False) -> dict[str, Any]:
        """The JSON body to create this object through the API (status is a subresource, so left out)."""
        body: dict[str, Any] = to_wire(self)
        if not include_status:
            body.pop("status", None)
        meta = body.get("metadata", {})
        for key in ("generation", "labels", "annotations", "ownerReferences"):
            if not meta.get(key):
                meta.pop(key, None)
        return body
