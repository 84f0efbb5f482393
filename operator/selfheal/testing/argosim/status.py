"""Rollout status rules of the simulated controller: conditions (§1.3), phase (§1.2), step and selector strings."""

from __future__ import annotations


def get_condition(conditions: list[dict] | None, kind: str) -> dict | None:
    return next((c for c in conditions or [] if c.get("type") == kind), None)


def set_condition(conditions: list[dict], kind: str, status: str, reason: str, message: str, now: str) -> bool:
    """SetRolloutCondition: no-op when status and reason are unchanged; keeps lastTransitionTime when the
    status is unchanged; the condition moves to the end."""
    current = get_condition(conditions, kind)
    if current and current["status"] == status and current["reason"] == reason:
        return False
    transition = current["lastTransitionTime"] if current and current["status"] == status else now
    conditions[:] = [c for c in conditions if c.get("type") != kind]
    conditions.append(
        {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastUpdateTime": now,
            "lastTransitionTime": transition,
        }
    )
    return True


def calculate_phase(spec: dict, status: dict) -> tuple[str, str]:
    """CalculateRolloutPhase (§1.2)."""
    conditions = status.get("conditions") or []
    for c in conditions:
        if c.get("type") == "InvalidSpec":
            return "Degraded", f"InvalidSpec: {c.get('message', '')}"
    for c in conditions:
        if c.get("reason") in ("RolloutAborted", "ProgressDeadlineExceeded"):
            return "Degraded", f"{c['reason']}: {c.get('message', '')}"
    if spec.get("paused"):
        return "Paused", "manually paused"
    if status.get("pauseConditions"):
        return "Paused", status["pauseConditions"][0]["reason"]
    if spec.get("restartAt") and spec["restartAt"] != status.get("restartedAt"):
        return "Progressing", "rollout is restarting"
    replicas = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    if updated < replicas:
        return "Progressing", "more replicas need to be updated"
    if status.get("availableReplicas", 0) < updated:
        return "Progressing", "updated replicas are still becoming available"
    blue_green = (spec.get("strategy") or {}).get("blueGreen")
    if blue_green is not None:
        return _blue_green_phase(blue_green, status)
    canary = (spec.get("strategy") or {}).get("canary") or {}
    if not canary.get("trafficRouting") and status.get("replicas", 0) > updated:
        return "Progressing", "old replicas are pending termination"
    if not status.get("stableRS") or status.get("stableRS") != status.get("currentPodHash"):
        return "Progressing", "waiting for all steps to complete"
    return "Healthy", ""


def _blue_green_phase(blue_green: dict, status: dict) -> tuple[str, str]:
    """The blue-green part of CalculateRolloutPhase: the active switch, then the post-promotion analysis."""
    current = status.get("currentPodHash")
    active = (status.get("blueGreen") or {}).get("activeSelector")
    if not active or active != current:
        return "Progressing", "active service cutover pending"
    if not status.get("stableRS") or status.get("stableRS") != current:
        post = (status.get("blueGreen") or {}).get("postPromotionAnalysisRunStatus") or {}
        waiting = (blue_green.get("postPromotionAnalysis") or {}).get("templates") and post.get("status") not in (
            "Successful",
            "Failed",
            "Error",
            "Inconclusive",
        )
        if waiting:
            return "Progressing", "waiting for analysis to complete"
        return "Progressing", "waiting for post-promotion verification to complete"
    return "Healthy", ""


def step_string(step: dict) -> str:
    if "setWeight" in step:
        return f"setWeight: {step['setWeight']}"
    if "pause" in step:
        duration = (step.get("pause") or {}).get("duration")
        return "pause" if duration is None else f"pause: {duration}"
    for kind in ("experiment", "analysis", "setCanaryScale", "setHeaderRoute", "setMirrorRoute", "plugin"):
        if kind in step:
            return kind
    return ""


def format_selector(selector: dict | None) -> str:
    labels = (selector or {}).get("matchLabels") or {}
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))
