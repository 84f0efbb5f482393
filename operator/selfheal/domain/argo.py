"""Read models of the Argo Rollouts objects we watch (Rollout, AnalysisRun) and the exact patches the CLI sends."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from selfheal.domain.evidence import FailedMetric
from selfheal.domain.inline import VERDICT_PATH

# --- Names fixed by Argo Rollouts -----------------------------------------------------------------

ARGO_GROUP = "argoproj.io"
ARGO_VERSION = "v1alpha1"
ROLLOUT_API_VERSION = f"{ARGO_GROUP}/{ARGO_VERSION}"
ROLLOUT_PLURAL = "rollouts"
ANALYSIS_RUN_PLURAL = "analysisruns"

POD_HASH_LABEL = "rollouts-pod-template-hash"
REVISION_ANNOTATION = "rollout.argoproj.io/revision"
ROLLOUT_TYPE_LABEL = "rollout-type"
STEP_INDEX_LABEL = "step-index"

CANARY = "canary"
BLUE_GREEN = "blueGreen"

PHASE_HEALTHY = "Healthy"
PHASE_PROGRESSING = "Progressing"
PHASE_PAUSED = "Paused"
PHASE_DEGRADED = "Degraded"

MSG_GENERATION_NOT_OBSERVED = "waiting for rollout spec update to be observed"
MSG_UNPAUSING = "waiting for rollout to unpause"

PAUSE_CANARY_STEP = "CanaryPauseStep"
PAUSE_BLUE_GREEN = "BlueGreenPause"
PAUSE_INCONCLUSIVE_ANALYSIS = "InconclusiveAnalysisRun"
PAUSE_INCONCLUSIVE_EXPERIMENT = "InconclusiveExperiment"

AR_PENDING = "Pending"
AR_RUNNING = "Running"
AR_SUCCESSFUL = "Successful"
AR_FAILED = "Failed"
AR_ERROR = "Error"
AR_INCONCLUSIVE = "Inconclusive"
AR_COMPLETED_PHASES = frozenset({AR_SUCCESSFUL, AR_FAILED, AR_ERROR, AR_INCONCLUSIVE})
AR_UNSUCCESSFUL_PHASES = frozenset({AR_FAILED, AR_ERROR, AR_INCONCLUSIVE})

# The number of measurement values kept per failed metric.
MAX_METRIC_VALUES = 10

# --- Patches, as `kubectl argo rollouts` sends them (contract §2) ---------------------------------

ABORT_STATUS_PATCH: dict[str, Any] = {"status": {"abort": True}}
RETRY_STATUS_PATCH: dict[str, Any] = {"status": {"abort": False}}
PAUSE_SPEC_PATCH: dict[str, Any] = {"spec": {"paused": True}}
UNPAUSE_SPEC_PATCH: dict[str, Any] = {"spec": {"paused": False}}
CLEAR_PAUSE_CONDITIONS_STATUS_PATCH: dict[str, Any] = {"status": {"pauseConditions": None}}
PROMOTE_FULL_STATUS_PATCH: dict[str, Any] = {"status": {"promoteFull": True}}


def _copy(patch: dict[str, Any]) -> dict[str, Any]:
    return {key: dict(value) for key, value in patch.items()}


def clear_pause_conditions_with_step_patch(index: int) -> dict[str, Any]:
    return {"status": {"pauseConditions": None, "currentStepIndex": index}}


def clear_pause_conditions_and_controller_pause_patch(index: int) -> dict[str, Any]:
    return {"status": {"pauseConditions": None, "controllerPause": False, "currentStepIndex": index}}


def _digest(obj: Any) -> str:
    """A short, stable digest of a JSON value."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- Models -----------------------------------------------------------------------------------------

_READ_CONFIG = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class _ReadModel(BaseModel):
    model_config = _READ_CONFIG


class PauseCondition(_ReadModel):
    reason: str = ""
    start_time: datetime | None = None


class RolloutCondition(_ReadModel):
    type: str = ""
    status: str = ""
    reason: str = ""
    message: str = ""
    last_update_time: datetime | None = None
    last_transition_time: datetime | None = None


class RolloutAnalysisRunStatus(_ReadModel):
    """``{name, status, message}`` as the Rollout records its current AnalysisRuns."""

    name: str = ""
    status: str = ""
    message: str = ""


class CanaryStatus(_ReadModel):
    current_step_analysis_run_status: RolloutAnalysisRunStatus | None = None
    current_background_analysis_run_status: RolloutAnalysisRunStatus | None = None


class BlueGreenStatus(_ReadModel):
    active_selector: str = ""
    preview_selector: str = ""
    pre_promotion_analysis_run_status: RolloutAnalysisRunStatus | None = None
    post_promotion_analysis_run_status: RolloutAnalysisRunStatus | None = None


class RolloutStatus(_ReadModel):
    current_pod_hash: str = ""
    stable_rs: str = Field("", alias="stableRS")
    current_step_index: int | None = None
    current_step_hash: str = ""
    pause_conditions: list[PauseCondition] = Field(default_factory=list)
    controller_pause: bool = False
    abort: bool = False
    aborted_at: datetime | None = None
    promote_full: bool = False
    phase: str = ""
    message: str = ""
    observed_generation: str = ""
    conditions: list[RolloutCondition] = Field(default_factory=list)
    canary: CanaryStatus = Field(default_factory=CanaryStatus)
    blue_green: BlueGreenStatus = Field(default_factory=BlueGreenStatus)
    replicas: int = 0
    updated_replicas: int = 0
    ready_replicas: int = 0
    available_replicas: int = 0

    @field_validator("observed_generation", mode="before")
    @classmethod
    def _generation_as_string(cls, value: Any) -> Any:
        return "" if value is None else str(value)

    @field_validator("pause_conditions", "conditions", mode="before")
    @classmethod
    def _none_is_empty_list(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("controller_pause", "abort", "promote_full", mode="before")
    @classmethod
    def _none_is_false(cls, value: Any) -> Any:
        return False if value is None else value

    @field_validator("canary", "blue_green", mode="before")
    @classmethod
    def _none_is_empty_object(cls, value: Any) -> Any:
        return {} if value is None else value


class CanaryStep(_ReadModel):
    """One entry of ``spec.strategy.canary.steps``; ``kind`` is its only key (setWeight, pause, analysis...)."""

    kind: str
    set_weight: int | None = None
    pause_duration: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> CanaryStep:
        kind = next(iter(obj), "") if obj else ""
        duration = None
        if kind == "pause":
            pause = obj.get("pause") or {}
            value = pause.get("duration") if isinstance(pause, Mapping) else None
            duration = None if value in (None, "") else str(value)
        weight = obj.get("setWeight") if kind == "setWeight" else None
        return cls(kind=kind, set_weight=weight, pause_duration=duration, raw=dict(obj))

    @property
    def is_indefinite_pause(self) -> bool:
        return self.kind == "pause" and self.pause_duration is None

    def describe(self) -> str:
        if self.kind == "setWeight" and self.set_weight is not None:
            return f"setWeight: {self.set_weight}"
        if self.kind == "pause" and self.pause_duration is not None:
            return f"pause: {self.pause_duration}"
        return self.kind


class BlueGreenSpec(_ReadModel):
    """The parts of ``spec.strategy.blueGreen`` that decide how a preview is promoted."""

    active_service: str = ""
    preview_service: str = ""
    # Unset means true: the controller switches the active Service as soon as the preview is ready
    # (after ``autoPromotionSeconds``, and the pre-promotion analysis, if any).
    auto_promotion_enabled: bool = True
    auto_promotion_seconds: int = 0
    pre_promotion_analysis: bool = False
    post_promotion_analysis: bool = False

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> BlueGreenSpec:
        enabled = obj.get("autoPromotionEnabled")
        return cls(
            active_service=str(obj.get("activeService") or ""),
            preview_service=str(obj.get("previewService") or ""),
            auto_promotion_enabled=True if enabled is None else bool(enabled),
            auto_promotion_seconds=int(obj.get("autoPromotionSeconds") or 0),
            pre_promotion_analysis=bool((obj.get("prePromotionAnalysis") or {}).get("templates")),
            post_promotion_analysis=bool((obj.get("postPromotionAnalysis") or {}).get("templates")),
        )

    @property
    def waits_for_a_human(self) -> bool:
        """A ``BlueGreenPause`` lasts until someone promotes (``autoPromotionEnabled: false``)."""
        return not self.auto_promotion_enabled


class Rollout(_ReadModel):
    """The parts of an ``argoproj.io/v1alpha1`` Rollout the operator reads."""

    name: str
    namespace: str = ""
    uid: str = ""
    resource_version: str = ""
    generation: int = 0
    creation_timestamp: datetime | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    revision: str = ""
    selector: dict[str, str] = Field(default_factory=dict)
    replicas: int = 1
    paused: bool = False
    # A digest of ``spec.template``: it changes as soon as a new revision is asked for, before the
    # controller has computed the new pod-template hash.
    template_digest: str = ""
    containers: list[str] = Field(default_factory=list)
    images: list[str] = Field(default_factory=list)
    strategy: str = ""
    steps: list[CanaryStep] = Field(default_factory=list)
    background_analysis: bool = False
    background_analysis_starting_step: int | None = None
    blue_green: BlueGreenSpec = Field(default_factory=BlueGreenSpec)
    status: RolloutStatus = Field(default_factory=RolloutStatus)

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> Rollout:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        annotations = dict(meta.get("annotations") or {})
        template = spec.get("template") or {}
        template_spec = template.get("spec") or {}
        containers = list(template_spec.get("containers") or [])
        strategy_obj = spec.get("strategy") or {}
        strategy = CANARY if "canary" in strategy_obj else BLUE_GREEN if "blueGreen" in strategy_obj else ""
        canary = strategy_obj.get("canary") or {}
        background = canary.get("analysis") if strategy == CANARY else None
        replicas = spec.get("replicas")
        return cls(
            name=meta.get("name", ""),
            namespace=meta.get("namespace", ""),
            uid=meta.get("uid", ""),
            resource_version=str(meta.get("resourceVersion") or ""),
            generation=int(meta.get("generation") or 0),
            creation_timestamp=meta.get("creationTimestamp"),
            labels=dict(meta.get("labels") or {}),
            annotations=annotations,
            revision=annotations.get(REVISION_ANNOTATION, ""),
            selector=dict(((spec.get("selector") or {}).get("matchLabels")) or {}),
            replicas=1 if replicas is None else int(replicas),
            paused=bool(spec.get("paused")),
            template_digest=_digest(template),
            containers=[c.get("name", "") for c in containers],
            images=[c.get("image", "") for c in containers if c.get("image")],
            strategy=strategy,
            steps=[CanaryStep.from_obj(step or {}) for step in (canary.get("steps") or [])],
            background_analysis=bool(background),
            background_analysis_starting_step=(background or {}).get("startingStep"),
            blue_green=BlueGreenSpec.from_obj(strategy_obj.get("blueGreen") or {}),
            status=RolloutStatus.model_validate(obj.get("status") or {}),
        )

    @property
    def is_canary(self) -> bool:
        return self.strategy == CANARY

    @property
    def is_blue_green(self) -> bool:
        return self.strategy == BLUE_GREEN

    def replicaset_name(self, pod_hash: str) -> str:
        """The ReplicaSet of one pod-template hash is always ``<rollout>-<hash>``."""
        return f"{self.name}-{pod_hash}"


# --- Rollout facts ----------------------------------------------------------------------------------


def is_generation_observed(ro: Rollout) -> bool:
    """``status.observedGeneration`` (a string) equals ``metadata.generation``."""
    observed = ro.status.observed_generation
    if not observed.isdigit():
        # An empty value means never observed; anything else non-numeric is a pre-v0.10 hash.
        return observed != ""
    return int(observed) == ro.generation


def is_unpausing(ro: Rollout) -> bool:
    """The user resumed (pause conditions cleared) and the controller has not reacted yet."""
    return ro.status.controller_pause and not ro.status.pause_conditions


def effective_phase(ro: Rollout) -> tuple[str, str]:
    """The phase and message ``kubectl argo rollouts`` shows: the controller's, unless it is stale."""
    if not is_generation_observed(ro):
        return PHASE_PROGRESSING, MSG_GENERATION_NOT_OBSERVED
    if is_unpausing(ro):
        return PHASE_PROGRESSING, MSG_UNPAUSING
    if not ro.status.phase:
        return PHASE_PROGRESSING, ""
    return ro.status.phase, ro.status.message


def stable_hash(ro: Rollout) -> str | None:
    """The pod-template hash of the stable pods (active pods for blueGreen when no stable is recorded)."""
    if ro.is_blue_green:
        return ro.status.stable_rs or ro.status.blue_green.active_selector or None
    return ro.status.stable_rs or None


def canary_hash(ro: Rollout) -> str | None:
    """The pod-template hash of the new (canary or preview) pods; ``None`` when fully promoted."""
    if ro.is_blue_green:
        new = ro.status.current_pod_hash or ro.status.blue_green.preview_selector
    else:
        new = ro.status.current_pod_hash
    if not new or new == stable_hash(ro):
        return None
    return new


def is_fully_promoted(ro: Rollout) -> bool:
    return bool(ro.status.stable_rs) and ro.status.stable_rs == ro.status.current_pod_hash


def is_aborted(ro: Rollout) -> bool:
    return ro.status.abort


def pause_reasons(ro: Rollout) -> list[str]:
    return [c.reason for c in ro.status.pause_conditions]


def current_step_index(ro: Rollout) -> int | None:
    """``status.currentStepIndex`` for a canary with steps (missing counts as 0); ``None`` otherwise."""
    if not ro.is_canary or not ro.steps:
        return None
    return ro.status.current_step_index or 0


def current_step(ro: Rollout) -> CanaryStep | None:
    index = current_step_index(ro)
    if index is None or index >= len(ro.steps):
        return None
    return ro.steps[index]


def is_paused_at_indefinite_step(ro: Rollout) -> bool:
    """Paused by the controller until a human (or we) promote: a canary on a ``pause: {}`` step (no
    duration), or a blue-green preview waiting for promotion (``autoPromotionEnabled: false``)."""
    if ro.status.abort:
        return False
    if ro.is_blue_green:
        return ro.blue_green.waits_for_a_human and PAUSE_BLUE_GREEN in pause_reasons(ro)
    if PAUSE_CANARY_STEP not in pause_reasons(ro):
        return False
    step = current_step(ro)
    return step is not None and step.is_indefinite_pause


def is_active_switched(ro: Rollout) -> bool:
    """A blue-green whose active Service already selects the new pods (post-promotion, not yet stable)."""
    new = ro.status.current_pod_hash
    return ro.is_blue_green and bool(new) and ro.status.blue_green.active_selector == new


def is_inconclusive(ro: Rollout) -> bool:
    """The current step AnalysisRun of a canary ended Inconclusive (the CLI's ``isInconclusive``)."""
    run = ro.status.canary.current_step_analysis_run_status
    return ro.is_canary and run is not None and run.status == AR_INCONCLUSIVE


def is_inconclusive_pause(ro: Rollout) -> bool:
    """Paused by the controller because an AnalysisRun or Experiment ended Inconclusive."""
    if ro.status.abort:
        return False
    return any(r in (PAUSE_INCONCLUSIVE_ANALYSIS, PAUSE_INCONCLUSIVE_EXPERIMENT) for r in pause_reasons(ro))


def is_canary_in_progress(ro: Rollout) -> bool:
    """A new revision is being rolled out next to a stable one, and it is not aborted."""
    return not ro.status.abort and stable_hash(ro) is not None and canary_hash(ro) is not None


def current_step_description(ro: Rollout) -> str:
    """A short label of where the rollout stands, e.g. ``step 3/8 (pause)`` or ``blueGreen: preview``."""
    if ro.is_blue_green:
        if canary_hash(ro) is None:
            return "blueGreen"
        return "blueGreen: active, post-promotion" if is_active_switched(ro) else "blueGreen: preview"
    index = current_step_index(ro)
    if index is None:
        return ""
    total = len(ro.steps)
    if index >= total:
        return f"step {total}/{total} (done)"
    return f"step {index + 1}/{total} ({ro.steps[index].describe()})"


def promote_patches(ro: Rollout, full: bool = False) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``(status patch, spec patch)`` exactly as ``kubectl argo rollouts promote [--full]`` builds them.

    Either may be ``None``: nothing to send. The status patch goes to ``/status`` first, then the spec
    patch to the main resource.
    """
    spec_patch = _copy(UNPAUSE_SPEC_PATCH) if ro.paused else None
    if full:
        if ro.status.current_pod_hash != ro.status.stable_rs:
            return _copy(PROMOTE_FULL_STATUS_PATCH), spec_patch
        return None, spec_patch
    index = current_step_index(ro)
    next_index = None if index is None else min(index + 1, len(ro.steps))
    status_patch: dict[str, Any] | None = None
    if is_inconclusive(ro) and ro.status.pause_conditions and ro.status.controller_pause:
        if next_index is not None:
            status_patch = clear_pause_conditions_and_controller_pause_patch(next_index)
    elif ro.status.pause_conditions:
        status_patch = _copy(CLEAR_PAUSE_CONDITIONS_STATUS_PATCH)
    elif ro.is_canary and next_index is not None:
        status_patch = clear_pause_conditions_with_step_patch(next_index)
    return status_patch, spec_patch


# --- AnalysisRun --------------------------------------------------------------------------------------


class ControllerRef(_ReadModel):
    kind: str = ""
    name: str = ""
    uid: str = ""


class Measurement(_ReadModel):
    phase: str = ""
    message: str = ""
    value: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @field_validator("value", "message", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return "" if value is None else str(value)


class MetricResult(_ReadModel):
    name: str = ""
    phase: str = ""
    message: str = ""
    dry_run: bool = False
    count: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0
    measurements: list[Measurement] = Field(default_factory=list)

    @field_validator("measurements", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


def _verdict_metrics(metrics: Any) -> list[str]:
    """Names of the metrics whose ``web`` provider calls selfheal's verdict endpoint (its path)."""
    names = []
    for metric in metrics if isinstance(metrics, list) else []:
        web = ((metric or {}).get("provider") or {}).get("web") if isinstance(metric, Mapping) else None
        url = web.get("url") if isinstance(web, Mapping) else None
        if isinstance(url, str) and VERDICT_PATH in url.split("?", 1)[0]:
            names.append(str(metric.get("name", "")))
    return names


class AnalysisRun(_ReadModel):
    """The parts of an ``argoproj.io/v1alpha1`` AnalysisRun the operator reads."""

    name: str
    namespace: str = ""
    uid: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    revision: str = ""
    owner: ControllerRef | None = None
    creation_timestamp: datetime | None = None
    phase: str = ""
    message: str = ""
    started_at: datetime | None = None
    completed_at: datetime | None = None
    metric_results: list[MetricResult] = Field(default_factory=list)
    # Metrics whose web provider asks selfheal's own verdict endpoint: what they say is selfheal's verdict,
    # never evidence about the canary.
    verdict_metrics: frozenset[str] = frozenset()

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> AnalysisRun:
        meta = obj.get("metadata") or {}
        status = obj.get("status") or {}
        owner = next((ref for ref in meta.get("ownerReferences") or [] if ref.get("controller")), None)
        return cls(
            name=meta.get("name", ""),
            namespace=meta.get("namespace", ""),
            uid=meta.get("uid", ""),
            labels=dict(meta.get("labels") or {}),
            revision=(meta.get("annotations") or {}).get(REVISION_ANNOTATION, ""),
            owner=ControllerRef.model_validate(owner) if owner else None,
            creation_timestamp=meta.get("creationTimestamp"),
            phase=status.get("phase") or "",
            message=status.get("message") or "",
            started_at=status.get("startedAt"),
            completed_at=status.get("completedAt"),
            metric_results=status.get("metricResults") or [],
            verdict_metrics=frozenset(_verdict_metrics((obj.get("spec") or {}).get("metrics") or [])),
        )

    @property
    def pod_hash(self) -> str:
        return self.labels.get(POD_HASH_LABEL, "")

    @property
    def rollout_type(self) -> str:
        """``Step``, ``Background``, ``PrePromotion`` or ``PostPromotion``."""
        return self.labels.get(ROLLOUT_TYPE_LABEL, "")

    @property
    def step_index(self) -> int | None:
        value = self.labels.get(STEP_INDEX_LABEL, "")
        return int(value) if value.isdigit() else None

    @property
    def completed(self) -> bool:
        return self.phase in AR_COMPLETED_PHASES

    @property
    def unsuccessful(self) -> bool:
        return self.phase in AR_UNSUCCESSFUL_PHASES

    def is_owned_by(self, rollout_uid: str) -> bool:
        return self.owner is not None and bool(rollout_uid) and self.owner.uid == rollout_uid

    def failed_metrics(self) -> list[FailedMetric]:
        """Metrics (dry-run ones excepted) that ended Failed, Error or Inconclusive, with their last values."""
        out = []
        for metric in self.metric_results:
            if metric.dry_run or metric.phase not in AR_UNSUCCESSFUL_PHASES or metric.name in self.verdict_metrics:
                continue
            measured = [m for m in metric.measurements if m.value or m.message]
            message = metric.message or next((m.message for m in reversed(measured) if m.message), "")
            values = [m.value for m in metric.measurements if m.value][-MAX_METRIC_VALUES:]
            out.append(
                FailedMetric(
                    analysis_run=self.name, name=metric.name, phase=metric.phase, message=message, values=values
                )
            )
        return out
