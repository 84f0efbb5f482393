"""The SelfHealingPolicy resource as pydantic models, and label-selector matching."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from selfheal import API_VERSION
from selfheal.domain.ledger import CanaryRecord
from selfheal.domain.redaction import compile_pattern
from selfheal.domain.ticket import (
    SPEC_MODEL_CONFIG,
    STATUS_MODEL_CONFIG,
    Condition,
    ObjectMeta,
)

POLICY_KIND = "SelfHealingPolicy"
POLICY_PLURAL = "selfhealingpolicies"
POLICY_SHORT_NAME = "shp"

DEFAULT_ISSUE_LABELS = ("selfheal",)
DEFAULT_GITHUB_API_URL = "https://api.github.com"

# Patterns shared with the CRD schema (Go RE2 and Python both accept them).
REPOSITORY_PATTERN = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"
HTTP_URL_PATTERN = r"^https?://[^\s]+$"
OPTIONAL_HTTP_URL_PATTERN = r"^(https?://[^\s]+)?$"
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"


# --- Selector -------------------------------------------------------------------------------------


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(BaseModel):
    """One matchExpressions entry: In/NotIn need values, Exists/DoesNotExist take none."""

    model_config = SPEC_MODEL_CONFIG

    key: str = Field(min_length=1, max_length=317)
    operator: SelectorOperator
    values: list[Annotated[str, Field(max_length=63)]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelSelectorRequirement:
        if self.operator in (SelectorOperator.IN, SelectorOperator.NOT_IN) and not self.values:
            raise ValueError(f"operator {self.operator} needs at least one value")
        if self.operator in (SelectorOperator.EXISTS, SelectorOperator.DOES_NOT_EXIST) and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self


class LabelSelector(BaseModel):
    """A Kubernetes label selector; empty selects everything."""

    model_config = SPEC_MODEL_CONFIG

    match_labels: dict[str, Annotated[str, Field(max_length=63)]] = Field(default_factory=dict)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list)


def selector_matches(selector: LabelSelector | Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Whether ``labels`` satisfy ``selector`` (every matchLabels pair and every expression).

    An empty or absent selector matches everything.
    """
    if selector is None:
        return True
    if not isinstance(selector, LabelSelector):
        selector = LabelSelector.model_validate(selector)
    labels = labels or {}
    for key, value in selector.match_labels.items():
        if labels.get(key) != value:
            return False
    for req in selector.match_expressions:
        present = req.key in labels
        if req.operator == SelectorOperator.IN:
            ok = present and labels[req.key] in req.values
        elif req.operator == SelectorOperator.NOT_IN:
            ok = not present or labels[req.key] not in req.values
        elif req.operator == SelectorOperator.EXISTS:
            ok = present
        else:
            ok = not present
        if not ok:
            return False
    return True


# --- Triggers -------------------------------------------------------------------------------------


class LogWatch(BaseModel):
    """Periodic look at the canary's logs while the canary progresses."""

    model_config = SPEC_MODEL_CONFIG

    enabled: StrictBool = True
    interval_seconds: StrictInt = Field(60, ge=10, le=3600)


class Triggers(BaseModel):
    """What starts an analysis."""

    model_config = SPEC_MODEL_CONFIG

    analysis_failed: StrictBool = True
    analysis_inconclusive: StrictBool = True
    indefinite_pause: StrictBool = True
    log_watch: LogWatch = Field(default_factory=LogWatch)


# --- Analysis -------------------------------------------------------------------------------------


class LogBounds(BaseModel):
    """How much of each pod's log is read."""

    model_config = SPEC_MODEL_CONFIG

    tail_lines: StrictInt = Field(500, ge=1, le=100000)
    limit_bytes: StrictInt = Field(262144, ge=1024, le=10485760)
    since_canary_start: StrictBool = True
    pods_per_side: StrictInt = Field(3, ge=1, le=20)
    previous_container: StrictBool = True
    containers: list[Annotated[str, Field(min_length=1, max_length=63)]] = Field(default_factory=list)


class LLMProvider(StrEnum):
    NONE = "none"
    OPENAI = "openai"
    A2A = "a2a"


class ApiKeySecretRef(BaseModel):
    """A key of a Secret in the policy's namespace holding the LLM API key."""

    model_config = SPEC_MODEL_CONFIG

    name: str = Field(min_length=1, max_length=253, pattern=SECRET_NAME_PATTERN)
    key: str = Field("api-key", min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)


class LLMSpec(BaseModel):
    """The LLM (OpenAI-compatible endpoint) or A2A agent asked for a verdict."""

    model_config = SPEC_MODEL_CONFIG

    provider: LLMProvider = LLMProvider.NONE
    model: str = Field("", max_length=253)
    base_url: str = Field("", alias="baseURL", max_length=2048, pattern=OPTIONAL_HTTP_URL_PATTERN)
    api_key_secret_ref: ApiKeySecretRef | None = None
    timeout_seconds: StrictInt = Field(30, ge=1, le=600)
    max_input_tokens: StrictInt = Field(4000, ge=500, le=200000)
    max_retries: StrictInt = Field(2, ge=0, le=10)
    temperature: StrictFloat = Field(0, ge=0, le=2)

    @model_validator(mode="after")
    def _a2a_needs_url(self) -> LLMSpec:
        if self.provider == LLMProvider.A2A and not self.base_url:
            raise ValueError("baseURL is required when provider is a2a")
        return self


class RedactionPattern(BaseModel):
    """An extra secret pattern masked before evidence leaves the cluster."""

    model_config = SPEC_MODEL_CONFIG

    name: str = Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9_.-]+$")
    regex: str = Field(min_length=1, max_length=1000)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str, info: ValidationInfo) -> str:
        # Patterns run on RE2, in time linear in the log: one it cannot compile is refused here.
        compile_pattern(str(info.data.get("name", "")), value)
        return value


class RedactionSpec(BaseModel):
    model_config = SPEC_MODEL_CONFIG

    patterns: list[RedactionPattern] = Field(default_factory=list, max_length=50)
    builtins: StrictBool = True


class LatencySpec(BaseModel):
    """When a latency the logs show is a regression of the canary."""

    model_config = SPEC_MODEL_CONFIG

    # Canary p95 over stable p95 at or above which a significant slow-down is unhealthy.
    p95_ratio: float = Field(1.5, ge=1, le=100)
    # ... provided the p95 grew by at least this much (a 1 ms to 2 ms change is no regression).
    min_delta_milliseconds: StrictInt = Field(100, ge=0, le=3600000)
    # A latency only the canary logs (the stable's lines carry none) is a finding at this p95.
    canary_only_p95_seconds: float = Field(1.0, ge=0.001, le=3600)

    @property
    def min_delta_seconds(self) -> float:
        return self.min_delta_milliseconds / 1000.0


class AnalysisSpec(BaseModel):
    """How evidence is gathered and who judges it."""

    model_config = SPEC_MODEL_CONFIG

    logs: LogBounds = Field(default_factory=LogBounds)
    latency: LatencySpec = Field(default_factory=LatencySpec)
    llm: LLMSpec = Field(default_factory=LLMSpec)
    extra_prompt: str = Field("", max_length=4000)
    redaction: RedactionSpec = Field(default_factory=RedactionSpec)


# --- Decision -------------------------------------------------------------------------------------


class UnhealthyAction(StrEnum):
    ABORT = "abort"
    PAUSE = "pause"
    NONE = "none"


class HealthyAction(StrEnum):
    PROMOTE = "promote"
    NONE = "none"


class InconclusiveAction(StrEnum):
    PAUSE = "pause"
    NONE = "none"
    ABORT = "abort"


class UnavailableAction(StrEnum):
    """What to do when the LLM/A2A analyzer cannot answer."""

    STATISTICAL = "statistical"
    PAUSE = "pause"
    NONE = "none"


class DecisionSpec(BaseModel):
    """How a verdict turns into an action on the Rollout."""

    model_config = SPEC_MODEL_CONFIG

    confidence_threshold: StrictInt = Field(70, ge=0, le=100)
    on_unhealthy: UnhealthyAction = UnhealthyAction.ABORT
    on_healthy: HealthyAction = HealthyAction.NONE
    on_inconclusive: InconclusiveAction = InconclusiveAction.NONE
    on_analyzer_unavailable: UnavailableAction = UnavailableAction.STATISTICAL
    # shadow mode: verdicts and tickets are recorded, nothing is done to the Rollout or GitHub
    dry_run: StrictBool = False


# --- Remediation ----------------------------------------------------------------------------------


class TokenSecretRef(BaseModel):
    """A key of a Secret in the policy's namespace holding the GitHub token."""

    model_config = SPEC_MODEL_CONFIG

    name: str = Field(min_length=1, max_length=253, pattern=SECRET_NAME_PATTERN)
    key: str = Field("token", min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)


class AgentType(StrEnum):
    """The coding agent an issue is handed to."""

    COPILOT = "copilot"
    JULES = "jules"
    LABEL = "label"
    ASSIGNEE = "assignee"
    NONE = "none"


class AgentSpec(BaseModel):
    model_config = SPEC_MODEL_CONFIG

    type: AgentType = AgentType.NONE
    label: str = Field("", max_length=50)
    assignee: str = Field("", max_length=39)
    base_branch: str = Field("main", min_length=1, max_length=255)
    custom_instructions: str = Field("", max_length=4000)

    @model_validator(mode="after")
    def _needs_target(self) -> AgentSpec:
        if self.type == AgentType.LABEL and not self.label:
            raise ValueError("agent type label needs agent.label")
        if self.type == AgentType.ASSIGNEE and not self.assignee:
            raise ValueError("agent type assignee needs agent.assignee")
        return self


class EscalationSpec(BaseModel):
    """Who is told when the agent stalls past the patience window."""

    model_config = SPEC_MODEL_CONFIG

    label: str = Field("", max_length=50)
    mention: str = Field("", max_length=100)


class VerificationRule(BaseModel):
    model_config = SPEC_MODEL_CONFIG

    require_merge_sha: StrictBool = Field(False, alias="requireMergeSHA")
    close_issue: StrictBool = True


class GitHubSpec(BaseModel):
    """Where issues are opened and how the fix is followed."""

    model_config = SPEC_MODEL_CONFIG

    repository: str = Field(max_length=201, pattern=REPOSITORY_PATTERN)
    token_secret_ref: TokenSecretRef
    api_url: str = Field(DEFAULT_GITHUB_API_URL, alias="apiURL", max_length=2048, pattern=HTTP_URL_PATTERN)
    labels: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(
        default_factory=lambda: list(DEFAULT_ISSUE_LABELS), max_length=20
    )
    agent: AgentSpec = Field(default_factory=AgentSpec)
    dedup_window_hours: StrictInt = Field(168, ge=1, le=8760)
    comment_interval_minutes: StrictInt = Field(60, ge=1, le=10080)
    patience_hours: StrictInt = Field(24, ge=1, le=720)
    escalation: EscalationSpec = Field(default_factory=EscalationSpec)
    verification: VerificationRule = Field(default_factory=VerificationRule)

    @property
    def owner(self) -> str:
        return self.repository.split("/", 1)[0]

    @property
    def repo(self) -> str:
        return self.repository.split("/", 1)[1]


class RemediationSpec(BaseModel):
    model_config = SPEC_MODEL_CONFIG

    # absent: no GitHub; tickets are still tracked in the cluster
    github: GitHubSpec | None = None


class BudgetSpec(BaseModel):
    """Caps on analyses and LLM tokens spent by this policy."""

    model_config = SPEC_MODEL_CONFIG

    analyses_per_hour: StrictInt = Field(30, ge=1, le=3600)
    tokens_per_day: StrictInt = Field(200000, ge=0, le=100000000)


class UrlSecretRef(BaseModel):
    """A Secret key holding a URL that is itself a credential (a Slack or webhook URL)."""

    model_config = SPEC_MODEL_CONFIG

    name: str = Field(min_length=1, max_length=253, pattern=SECRET_NAME_PATTERN)
    key: str = Field("url", min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)


class SigningSecretRef(BaseModel):
    """A Secret key holding the key that signs webhook bodies (HMAC-SHA256)."""

    model_config = SPEC_MODEL_CONFIG

    name: str = Field(min_length=1, max_length=253, pattern=SECRET_NAME_PATTERN)
    key: str = Field("secret", min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)


class WebhookSpec(BaseModel):
    """A JSON POST of each notification to a URL of the team's own, signed when a signing secret is set."""

    model_config = SPEC_MODEL_CONFIG

    url_secret_ref: UrlSecretRef
    signing_secret_ref: SigningSecretRef | None = None


class SlackSpec(BaseModel):
    """A Slack incoming webhook."""

    model_config = SPEC_MODEL_CONFIG

    webhook_url_secret_ref: UrlSecretRef = Field(alias="webhookURLSecretRef")


NOTIFIABLE_PHASES = (
    "Open",
    "IssueOpened",
    "FixProposed",
    "FixMerged",
    "Verifying",
    "Resolved",
    "Regressed",
    "Closed",
    "Failed",
)
NotifiablePhase = Literal[
    "Open", "IssueOpened", "FixProposed", "FixMerged", "Verifying", "Resolved", "Regressed", "Closed", "Failed"
]


class NotificationsSpec(BaseModel):
    """Who else hears when a ticket changes phase; URLs and signing keys come from Secrets only."""

    model_config = SPEC_MODEL_CONFIG

    # empty: every phase change
    phases: list[NotifiablePhase] = Field(default_factory=list, max_length=len(NOTIFIABLE_PHASES))
    timeout_seconds: StrictInt = Field(5, ge=1, le=30)
    webhook: WebhookSpec | None = None
    slack: SlackSpec | None = None

    @property
    def enabled(self) -> bool:
        return self.webhook is not None or self.slack is not None

    def wants(self, phase: str) -> bool:
        return self.enabled and (not self.phases or phase in self.phases)


class PolicySpec(BaseModel):
    """The spec of a SelfHealingPolicy."""

    model_config = SPEC_MODEL_CONFIG

    selector: LabelSelector = Field(default_factory=LabelSelector)
    triggers: Triggers = Field(default_factory=Triggers)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    decision: DecisionSpec = Field(default_factory=DecisionSpec)
    remediation: RemediationSpec = Field(default_factory=RemediationSpec)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    notifications: NotificationsSpec = Field(default_factory=NotificationsSpec)


# --- Status ---------------------------------------------------------------------------------------


class PolicyPhase(StrEnum):
    READY = "Ready"
    NOT_READY = "NotReady"


class Conflict(BaseModel):
    """A Rollout selected by more than one policy, and the policy that wins."""

    model_config = STATUS_MODEL_CONFIG

    rollout: str
    policies: list[str] = Field(default_factory=list)
    chosen: str = ""


class AnalysesCount(BaseModel):
    model_config = STATUS_MODEL_CONFIG

    hour_start: datetime | None = None
    this_hour: int = Field(0, ge=0)
    total: int = Field(0, ge=0)


class TokensCount(BaseModel):
    model_config = STATUS_MODEL_CONFIG

    day: date | None = None
    today: int = Field(0, ge=0)
    total: int = Field(0, ge=0)


class PolicyStatus(BaseModel):
    model_config = STATUS_MODEL_CONFIG

    observed_generation: int | None = Field(None, ge=0)
    phase: PolicyPhase | None = None
    conditions: list[Condition] = Field(default_factory=list)
    matched_rollouts: list[str] = Field(default_factory=list)
    matched_count: int = Field(0, ge=0)
    conflicts: list[Conflict] = Field(default_factory=list)
    analyses: AnalysesCount | None = None
    tokens: TokensCount | None = None
    last_analysis_time: datetime | None = None
    # The judgement ledger: per governed Rollout with a live canary, what was judged and done about it.
    canaries: dict[str, CanaryRecord] = Field(default_factory=dict)


class SelfHealingPolicy(BaseModel):
    """A whole SelfHealingPolicy object."""

    model_config = STATUS_MODEL_CONFIG

    api_version: str = API_VERSION
    kind: str = POLICY_KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PolicySpec = Field(default_factory=PolicySpec)
    status: PolicyStatus = Field(default_factory=PolicyStatus)

    @field_validator("spec", "status", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    def selects(self, labels: Mapping[str, str] | None) -> bool:
        return selector_matches(self.spec.selector, labels)
