"""Policy readiness, matching and status: which Rollouts a policy governs, whether it can work, what it spent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from selfheal import API_VERSION
from selfheal.domain.policy import LLMProvider, PolicySpec, selector_matches
from selfheal.domain.ticket import ConditionType, Reason, get_condition, set_condition, to_wire
from selfheal.domain.timestamps import parse_time, rfc3339
from selfheal.domain.views import RolloutView
from selfheal.domain.words import readiness_event
from selfheal.errors import ConfigError
from selfheal.services import events, github, notify

# The condition that says whether the policy's notification channels took the last notification.
NOTIFICATIONS_DELIVERED = "NotificationsDelivered"


@dataclass(frozen=True)
class PolicyRef:
    """What the policy index keeps of one policy: enough to match and to act."""

    namespace: str
    name: str
    spec: PolicySpec


@dataclass
class Readiness:
    ready: bool
    reason: str
    message: str
    problems: list[str] = field(default_factory=list)


def parse_spec(spec: Mapping[str, Any]) -> PolicySpec:
    """The policy spec as a model; a ConfigError names every invalid field."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"invalid policy: spec must be a mapping, not a {type(spec).__name__}")
    try:
        return PolicySpec.model_validate(dict(spec))
    except ValidationError as e:
        fields = "; ".join(f"spec.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"invalid policy: {fields}") from e


def choose_policy(candidates: Iterable[PolicyRef]) -> PolicyRef | None:
    """Several policies selecting one Rollout: the one whose name sorts first wins, always."""
    ordered = sorted(candidates, key=lambda p: p.name)
    return ordered[0] if ordered else None


def policies_for(rollout_labels: Mapping[str, str], policies: Iterable[PolicyRef]) -> list[PolicyRef]:
    return sorted((p for p in policies if selector_matches(p.spec.selector, rollout_labels)), key=lambda p: p.name)


def matching(
    policy: PolicyRef, rollouts: Iterable[RolloutView], policies: Iterable[PolicyRef]
) -> tuple[list[str], list[dict[str, Any]]]:
    """The Rollouts this policy selects, and the conflicts among them (with the winner)."""
    others = list(policies)
    matched: list[str] = []
    conflicts: list[dict[str, Any]] = []
    for ro in rollouts:
        if not selector_matches(policy.spec.selector, ro.labels):
            continue
        matched.append(ro.name)
        rivals = policies_for(ro.labels, others)
        if len(rivals) > 1:
            winner = choose_policy(rivals)
            conflicts.append(
                {"rollout": ro.name, "policies": [p.name for p in rivals], "chosen": winner.name if winner else ""}
            )
    return sorted(matched), sorted(conflicts, key=lambda c: c["rollout"])


async def check_readiness(runtime: Any, namespace: str, spec: PolicySpec) -> Readiness:
    """Whether every Secret the policy names exists with its key, and GitHub accepts the token for the
    repository; the message names what is missing."""
    problems: list[str] = []
    reason: str = Reason.VALID
    llm = spec.analysis.llm
    if llm.provider == LLMProvider.OPENAI and not llm.model:
        problems.append("analysis.llm.model is required when provider is openai")
        reason = Reason.INVALID_SPEC
    refs: list[tuple[str, Any]] = []
    if llm.provider != LLMProvider.NONE and llm.api_key_secret_ref is not None:
        refs.append(("LLM API key", llm.api_key_secret_ref))
    gh = spec.remediation.github
    if gh is not None:
        refs.append(("GitHub token", gh.token_secret_ref))
    notifications = spec.notifications
    if notifications.webhook is not None:
        refs.append(("webhook URL", notifications.webhook.url_secret_ref))
        if notifications.webhook.signing_secret_ref is not None:
            refs.append(("webhook signing key", notifications.webhook.signing_secret_ref))
    if notifications.slack is not None:
        refs.append(("Slack webhook URL", notifications.slack.webhook_url_secret_ref))
    for what, ref in refs:
        try:
            await runtime.kube.read_secret_key(namespace, ref.name, ref.key)
        except ConfigError as e:
            problems.append(f"{what}: {e}")
            reason = Reason.SECRET_NOT_FOUND if "not found" in str(e).lower() else Reason.SECRET_KEY_MISSING
    if gh is not None and not problems and not spec.decision.dry_run:
        access = await github.check_access(runtime, namespace, gh, runtime.clock())
        if not access.ok:
            problems.append(access.message)
            reason = access.reason
    if problems:
        return Readiness(False, reason, "; ".join(problems), problems)
    return Readiness(True, Reason.VALID, "policy is valid and its Secrets are present")


def status_patch(
    readiness: Readiness,
    conditions: Any,
    generation: int,
    now: datetime,
    matched: list[str],
    conflicts: list[dict[str, Any]],
) -> dict[str, Any]:
    """The policy's status: Ready condition, phase derived from it, matched Rollouts and conflicts."""
    reason, message = readiness.reason, readiness.message
    if readiness.ready and conflicts:
        message += "; " + "; ".join(
            f"Rollout {c['rollout']} is selected by {', '.join(c['policies'])} (using {c['chosen']})" for c in conflicts
        )
    conds = set_condition(conditions, ConditionType.READY, readiness.ready, reason, message, now, generation)
    return to_wire(
        {
            "observedGeneration": generation,
            "phase": "Ready" if readiness.ready else "NotReady",
            "conditions": conds,
            "matchedRollouts": matched,
            "matchedCount": len(matched),
            "conflicts": conflicts,
        }
    )


def usage_status(usage: Any) -> dict[str, Any]:
    """The policy's spend, as its status shows it."""
    return to_wire(
        {
            "analyses": {
                "hourStart": rfc3339(usage.hour_start),
                "thisHour": usage.this_hour,
                "total": usage.analyses_total,
            },
            "tokens": {"day": usage.day or None, "today": usage.tokens_today, "total": usage.tokens_total},
            "lastAnalysisTime": rfc3339(usage.last_analysis),
        }
    )


def load_usage(usage: Any, status: Mapping[str, Any]) -> None:
    """After a restart, continue counting from what the status recorded, adding what was spent since."""
    if usage.loaded:
        return
    usage.loaded = True
    analyses, tokens = status.get("analyses") or {}, status.get("tokens") or {}
    usage.analyses_total += int(analyses.get("total") or 0)
    usage.tokens_total += int(tokens.get("total") or 0)
    hour_start = parse_time(analyses.get("hourStart"))
    if hour_start is not None and usage.hour_start in (None, hour_start):
        usage.hour_start = hour_start
        usage.this_hour += int(analyses.get("thisHour") or 0)
    day = tokens.get("day") or ""
    if day and usage.day in ("", day):
        usage.day = day
        usage.tokens_today += int(tokens.get("today") or 0)
    if usage.last_analysis is None:
        usage.last_analysis = parse_time(status.get("lastAnalysisTime"))


async def reconcile(
    runtime: Any,
    namespace: str,
    name: str,
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    meta: Mapping[str, Any],
    rollouts: Iterable[RolloutView],
    policies: Iterable[PolicyRef],
) -> dict[str, Any]:
    """The whole status of one policy: readiness, matches, conflicts and spend."""
    generation = meta.get("generation", 0)
    now = runtime.clock()
    try:
        ref = PolicyRef(namespace, name, parse_spec(spec))
    except ConfigError as e:
        invalid = Readiness(False, Reason.INVALID_SPEC, str(e))
        await _tell_readiness(runtime, namespace, name, meta, status, invalid)
        return status_patch(invalid, status.get("conditions"), generation, now, [], [])
    readiness = await check_readiness(runtime, namespace, ref.spec)
    matched, conflicts = matching(ref, rollouts, policies)
    usage = runtime.usage_of(namespace, name)
    load_usage(usage, status)
    usage.roll(now)
    patch = status_patch(readiness, status.get("conditions"), generation, now, matched, conflicts)
    if ref.spec.notifications.enabled:
        failure = notify.delivery_failure(runtime, namespace, name)
        conditions = set_condition(
            patch["conditions"],
            NOTIFICATIONS_DELIVERED,
            failure is None,
            "NotificationFailed" if failure else "Delivered",
            failure or "the last notification was delivered, or none was due yet",
            now,
            generation,
        )
        patch["conditions"] = to_wire(conditions)
    await _tell_readiness(runtime, namespace, name, meta, status, readiness)
    return {**patch, **usage_status(usage)}


async def _tell_readiness(
    runtime: Any, namespace: str, name: str, meta: Mapping[str, Any], status: Mapping[str, Any], readiness: Readiness
) -> None:
    """An Event on the policy when it becomes ready or stops being ready: `kubectl describe shp` says when
    and why."""
    before = get_condition(status.get("conditions"), ConditionType.READY)
    was = None if before is None else (before.status.value, before.reason)
    now_is = ("True" if readiness.ready else "False", str(readiness.reason))
    if was == now_is:
        return
    event = readiness_event(name, readiness.ready, str(readiness.reason), readiness.message)
    await events.post(
        runtime, events.about(API_VERSION, "SelfHealingPolicy", namespace, name, meta.get("uid", "")), event
    )


async def refresh(runtime: Any, namespace: str, name: str) -> dict[str, Any] | None:
    """Bring one policy's status up to date from the indexes; written only when it changed. The status
    written, or None (no change, or the policy is gone)."""
    obj = await runtime.kube.get_policy(namespace, name)
    if obj is None:
        return None
    status = obj.get("status") or {}
    new = await reconcile(
        runtime,
        namespace,
        name,
        obj.get("spec") or {},
        status,
        obj.get("metadata") or {},
        runtime.indexes.namespace_rollouts(namespace),
        runtime.indexes.namespace_policies(namespace),
    )
    if all(status.get(key) == value for key, value in new.items()):
        return None
    await runtime.kube.patch_policy_status(namespace, name, {"status": new})
    return new
