"""How the simulated Rollout controller creates, links, reacts to and terminates its AnalysisRuns (§3.4, §6.1)."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from selfheal.testing.argosim.analysis import COMPLETED
from selfheal.testing.argosim.util import controller_uid, owner_ref
from selfheal.testing.rest import ApiError

if TYPE_CHECKING:
    from selfheal.testing.argosim.bluegreen import BlueGreenReconcile
    from selfheal.testing.argosim.canary import CanaryReconcile
    from selfheal.testing.argosim.rollout import RolloutReconcile

GROUP = "/apis/argoproj.io/v1alpha1"
# Where the Rollout records its current run of each kind: the status section and the key in it.
SLOTS = {
    "Step": ("canary", "currentStepAnalysisRunStatus"),
    "Background": ("canary", "currentBackgroundAnalysisRunStatus"),
    "PrePromotion": ("blueGreen", "prePromotionAnalysisRunStatus"),
    "PostPromotion": ("blueGreen", "postPromotionAnalysisRunStatus"),
}
CANARY_KINDS = ("Step", "Background")
BLUE_GREEN_KINDS = ("PrePromotion", "PostPromotion")
_FIELD = re.compile(r"\.?([A-Za-z0-9_\-]+)|\[(\d+)\]|\[['\"]([^'\"]+)['\"]\]")


class AnalysisSetupError(Exception):
    """Templates or args of a Rollout analysis cannot be turned into an AnalysisRun."""


def linked_run(ctx: RolloutReconcile, kind: str) -> dict | None:
    """The run whose name the Rollout records in its status (FilterCurrentRolloutAnalysisRuns)."""
    section, key = SLOTS[kind]
    name = (((ctx.status.get(section) or {}).get(key)) or {}).get("name")
    return next((r for r in ctx.runs if name and r["metadata"]["name"] == name), None)


def reconcile(ctx: CanaryReconcile) -> None:
    """reconcileAnalysisRuns of a canary: the step run and the background run."""
    current = {kind: linked_run(ctx, kind) for kind in CANARY_KINDS}
    if ctx.is_aborted() or ctx.status.get("promoteFull") or not ctx.status.get("stableRS"):
        set_current(ctx, current)
        cancel(ctx, ctx.runs)
        return
    step_run = _reconcile_step(ctx, current["Step"])
    background_run = _reconcile_background(ctx, current["Background"])
    _keep_only(ctx, {"Step": step_run, "Background": background_run})


def reconcile_blue_green(ctx: BlueGreenReconcile) -> None:
    """reconcileAnalysisRuns of a blue-green: the pre-promotion run before the active switch, the
    post-promotion run after it; a failed one aborts, an inconclusive one pauses."""
    current = {kind: linked_run(ctx, kind) for kind in BLUE_GREEN_KINDS}
    if (
        ctx.is_aborted()
        or ctx.status.get("promoteFull")
        or ctx.has_scale_down_deadline(ctx.new)
        or not ctx.status.get("stableRS")
    ):
        set_current(ctx, current)
        cancel(ctx, ctx.runs)
        return
    pre = _reconcile_promotion(ctx, current["PrePromotion"], "PrePromotion")
    post = _reconcile_promotion(ctx, current["PostPromotion"], "PostPromotion")
    _keep_only(ctx, {"PrePromotion": pre, "PostPromotion": post})


def _keep_only(ctx: RolloutReconcile, chosen: dict[str, dict | None]) -> None:
    """The chosen runs become the current ones; every other run of the Rollout is terminated, and old ones go."""
    set_current(ctx, chosen)
    keep = {r["metadata"]["uid"] for r in chosen.values() if r is not None}
    cancel(ctx, [r for r in ctx.runs if r["metadata"]["uid"] not in keep])
    garbage_collect(ctx, keep)


# The blue-green runs: their spec field, name infix, and the words of their abort message.
_PROMOTION = {
    "PrePromotion": ("prePromotionAnalysis", "pre", "pre-promotion"),
    "PostPromotion": ("postPromotionAnalysis", "post", "post-promotion"),
}


def _reconcile_promotion(ctx: BlueGreenReconcile, run: dict | None, kind: str) -> dict | None:
    """reconcilePrePromotionAnalysisRun / reconcilePostPromotionAnalysisRun, then setPauseOrAbortForBlueGreen."""
    field, infix, words = _PROMOTION[kind]
    analysis = ctx.strategy_spec.get(field) or {}
    if not analysis.get("templates"):
        cancel(ctx, [run])
        return None
    skip = ctx.skip_pre_promotion(run) if kind == "PrePromotion" else ctx.skip_post_promotion(run)
    if skip:
        cancel(ctx, [run])
        return run
    if ctx.pause_condition("InconclusiveAnalysisRun") is not None:
        return run
    if _needs_new(ctx, run):
        return create(ctx, analysis, infix, {"rollout-type": kind})
    assert run is not None, "a missing run needs a new one"
    status = run.get("status") or {}
    if status.get("phase") == "Inconclusive":
        ctx.add_pause.append("InconclusiveAnalysisRun")
    elif status.get("phase") in ("Failed", "Error"):
        ctx.add_abort = True
        ctx.abort_message = f"Blue/green {words} analysis phase error/failed" + (
            f": {status['message']}" if status.get("message") else ""
        )
    return run


def garbage_collect(ctx: RolloutReconcile, keep: set[str]) -> None:
    """Delete completed runs beyond ``spec.analysis.{successful,unsuccessful}RunHistoryLimit`` (default 5 each)."""
    limits = ctx.spec.get("analysis") or {}
    done = sorted(
        (r for r in ctx.runs if r["metadata"]["uid"] not in keep and (r.get("status") or {}).get("phase") in COMPLETED),
        key=lambda r: (r["metadata"].get("creationTimestamp", ""), len(r["metadata"]["name"]), r["metadata"]["name"]),
        reverse=True,
    )
    successful = [r for r in done if r["status"]["phase"] == "Successful"]
    unsuccessful = [r for r in done if r["status"]["phase"] != "Successful"]
    doomed = (
        successful[int(limits.get("successfulRunHistoryLimit", 5)) :]
        + unsuccessful[int(limits.get("unsuccessfulRunHistoryLimit", 5)) :]
    )
    for run in doomed:
        ctx.client.delete(f"{GROUP}/namespaces/{ctx.ns}/analysisruns/{run['metadata']['name']}")


def _needs_new(ctx: RolloutReconcile, run: dict | None) -> bool:
    """needsNewAnalysisRun: none yet; an Inconclusive one the user resumed (controllerPause left set, and no
    step or blue-green pause); or a retry after an abort."""
    if run is None:
        return True
    status = ctx.status
    if (
        status.get("controllerPause")
        and ctx.pause_condition("CanaryPauseStep") is None
        and ctx.pause_condition("BlueGreenPause") is None
    ):
        return (run.get("status") or {}).get("phase") == "Inconclusive"
    return status.get("abortedAt") is not None


def _react(ctx: CanaryReconcile, run: dict, source: str) -> None:
    status = run.get("status") or {}
    phase = status.get("phase")
    if phase == "Inconclusive":
        ctx.add_pause.append("InconclusiveAnalysisRun")
    elif phase in ("Failed", "Error"):
        ctx.add_abort = True
        message = f"{source} analysis phase error/failed"
        if status.get("message"):
            message += f": {status['message']}"
        ctx.abort_message = message


def _reconcile_step(ctx: CanaryReconcile, run: dict | None) -> dict | None:
    step, index = ctx.current_step()
    if ctx.status.get("pauseConditions") or ctx.status.get("abort"):
        return run
    if step is None or "analysis" not in step:
        cancel(ctx, [run])
        return None
    if run is not None and (run["metadata"].get("labels") or {}).get("step-index") != str(index):
        cancel(ctx, [run])
        run = None
    if _needs_new(ctx, run):
        labels = {"rollout-type": "Step", "step-index": str(index)}
        return create(ctx, step["analysis"] or {}, str(index), labels)
    assert run is not None, "a missing run needs a new one"
    _react(ctx, run, "Step-based")
    return run


def _reconcile_background(ctx: CanaryReconcile, run: dict | None) -> dict | None:
    analysis = ctx.canary.get("analysis") or {}
    if not analysis.get("templates"):
        cancel(ctx, [run])
        return None
    if ctx.fully_promoted() or not ctx.status.get("stableRS") or not ctx.status.get("currentPodHash"):
        return None
    starting = analysis.get("startingStep")
    if starting is not None and (ctx.step_index() or 0) < int(starting):
        return None
    if ctx.pause_condition("InconclusiveAnalysisRun") is not None:
        return run
    if _needs_new(ctx, run):
        return create(ctx, analysis, None, {"rollout-type": "Background"})
    assert run is not None, "a missing run needs a new one"
    _react(ctx, run, "Background")
    return run


def set_current(ctx: RolloutReconcile, runs: dict[str, dict | None]) -> None:
    """SetCurrentAnalysisRuns plus the ``AnalysisRun<Phase>`` events on the Rollout: ``ctx.run_statuses`` is
    what the strategy's status section records of them."""
    recorded: dict[str, Any] = {}
    for kind, run in runs.items():
        if run is None:
            continue
        section, key = SLOTS[kind]
        previous = ctx.status.get(section) or {}
        status = run.get("status") or {}
        phase = status.get("phase", "")
        entry = {"name": run["metadata"]["name"], "status": phase}
        if status.get("message"):
            entry["message"] = status["message"]
        recorded[key] = entry
        before = previous.get(key)
        if phase and (before is None or before.get("name") != entry["name"] or before.get("status") != phase):
            prior = before.get("status") if before and before.get("name") == entry["name"] else ""
            ctx.event(
                f"AnalysisRun{phase}",
                f"{kind} Analysis Run '{entry['name']}' Status New: '{phase}' "
                f"Previous: '{prior or 'NoPreviousStatus'}'",
                warning=phase in ("Failed", "Error"),
            )
    ctx.run_statuses = recorded
    ctx.current_runs = runs


def cancel(ctx: RolloutReconcile, runs: Sequence[dict | None]) -> None:
    for run in runs:
        if run is None or run["spec"].get("terminate") or (run.get("status") or {}).get("phase") in COMPLETED:
            continue
        try:
            ctx.client.patch(
                f"{GROUP}/namespaces/{ctx.ns}/analysisruns/{run['metadata']['name']}", {"spec": {"terminate": True}}
            )
        except ApiError as e:
            if e.status != 404:
                raise


# -- creation ------------------------------------------------------------------------------------


def create(ctx: RolloutReconcile, analysis: dict, infix: str | None, labels: dict[str, str]) -> dict:
    metrics, template_args, dry_run, retention = _flatten(ctx, analysis.get("templates") or [], set())
    args = _merge_args(_rollout_args(ctx, analysis.get("args") or []), template_args)
    pod_hash = ctx.new["metadata"]["labels"]["rollouts-pod-template-hash"]
    revision = ctx.revision()
    base = "-".join([ctx.name, pod_hash, revision] + ([infix] if infix is not None else []))
    run_meta = analysis.get("analysisRunMetadata") or {}
    all_labels = {
        "rollouts-pod-template-hash": pod_hash,
        **labels,
        **(run_meta.get("labels") or {}),
        **((ctx.spec.get("selector") or {}).get("matchLabels") or {}),
    }
    annotations = {"rollout.argoproj.io/revision": revision, **(run_meta.get("annotations") or {})}
    spec: dict[str, Any] = {"metrics": metrics}
    if args:
        spec["args"] = args
    if dry_run:
        spec["dryRun"] = dry_run
    if retention:
        spec["measurementRetention"] = retention
    body: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {
            "name": base,
            "namespace": ctx.ns,
            "labels": all_labels,
            "annotations": annotations,
            "ownerReferences": [owner_ref(ctx.ro)],
        },
        "spec": spec,
    }
    path = f"{GROUP}/namespaces/{ctx.ns}/analysisruns"
    collisions = 0
    while True:
        body["metadata"]["name"] = base if collisions == 0 else f"{base}.{collisions}"
        try:
            created = ctx.client.create(path, body)
        except ApiError as e:
            if e.status != 409:
                raise
            existing = ctx.client.get(f"{path}/{body['metadata']['name']}")
            same = existing["spec"].get("metrics") == spec["metrics"] and existing["spec"].get("args") == spec.get(
                "args"
            )
            if (
                same
                and controller_uid(existing) == ctx.meta["uid"]
                and (existing.get("status") or {}).get("phase") not in COMPLETED
            ):
                return existing
            collisions += 1
            continue
        # The analysis controller picks a new run up at once; the apiserver refuses "status": "" in the link.
        created = ctx.sim.run_created(created)
        ctx.runs.append(created)
        return created


def _flatten(ctx: RolloutReconcile, refs: list[dict], seen: set[str]) -> tuple[list, list, list, list]:
    metrics: list[dict] = []
    args: list[dict] = []
    dry_run: list[dict] = []
    retention: list[dict] = []
    for ref in refs:
        name = ref.get("templateName")
        if ref.get("clusterScope"):
            path = f"{GROUP}/clusteranalysistemplates/{name}"
        else:
            path = f"{GROUP}/namespaces/{ctx.ns}/analysistemplates/{name}"
        if path in seen:
            continue
        seen.add(path)
        try:
            template = ctx.client.get(path)
        except ApiError as e:
            raise AnalysisSetupError(f"analysis template {name} not found: {e}") from e
        tspec = template.get("spec") or {}
        nested = _flatten(ctx, tspec.get("templates") or [], seen)
        for metric in list(tspec.get("metrics") or []) + nested[0]:
            if any(m["name"] == metric["name"] for m in metrics):
                raise AnalysisSetupError(f"two metrics have the same name '{metric['name']}'")
            metrics.append(copy.deepcopy(metric))
        for arg in list(tspec.get("args") or []) + nested[1]:
            known = next((a for a in args if a["name"] == arg["name"]), None)
            if known is None:
                args.append(copy.deepcopy(arg))
            elif known.get("value") is None and known.get("valueFrom") is None:
                known.update({k: v for k, v in arg.items() if k in ("value", "valueFrom")})
        dry_run += list(tspec.get("dryRun") or []) + nested[2]
        retention += list(tspec.get("measurementRetention") or []) + nested[3]
    return metrics, args, dry_run, retention


def _rollout_args(ctx: RolloutReconcile, args: list[dict]) -> list[dict]:
    out = []
    for arg in args:
        value_from = arg.get("valueFrom") or {}
        if arg.get("value") is not None:
            out.append({"name": arg["name"], "value": str(arg["value"])})
        elif value_from.get("podTemplateHashValue"):
            which = value_from["podTemplateHashValue"]
            rs = ctx.stable_rs if which == "Stable" else ctx.new_rs
            value = ((rs or {}).get("metadata", {}).get("labels") or {}).get("rollouts-pod-template-hash", "")
            out.append({"name": arg["name"], "value": value})
        elif value_from.get("fieldRef"):
            out.append({"name": arg["name"], "value": _field(ctx.ro, value_from["fieldRef"].get("fieldPath", ""))})
        else:
            out.append(copy.deepcopy(arg))
    return out


def _field(obj: Any, path: str) -> str:
    value, pos = obj, 0
    while pos < len(path):
        m = _FIELD.match(path, pos)
        if not m:
            raise AnalysisSetupError(f"invalid fieldPath {path!r}")
        pos = m.end()
        key = m.group(1) or m.group(3)
        if key is not None:
            value = value.get(key) if isinstance(value, dict) else None
        else:
            index = int(m.group(2))
            value = value[index] if isinstance(value, list) and index < len(value) else None
        if value is None:
            raise AnalysisSetupError(f"fieldPath {path!r} not found in the rollout")
    return value if isinstance(value, str) else str(value)


def _merge_args(incoming: list[dict], template_args: list[dict]) -> list[dict]:
    merged = copy.deepcopy(template_args)
    for arg in incoming:
        target = next((a for a in merged if a["name"] == arg["name"]), None)
        if target is None:
            continue
        if arg.get("value") is not None:
            target["value"] = arg["value"]
            target.pop("valueFrom", None)
        elif arg.get("valueFrom") is not None:
            target["valueFrom"] = arg["valueFrom"]
    for arg in merged:
        if arg.get("value") is None and arg.get("valueFrom") is None:
            raise AnalysisSetupError(f"args.{arg['name']} was not resolved")
    return merged
