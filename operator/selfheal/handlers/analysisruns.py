"""Kopf glue for Argo AnalysisRuns: the run index, and a failed or errored run triggers an analysis."""

from __future__ import annotations

from typing import Any

import kopf

from selfheal.domain.argo import AR_ERROR, AR_FAILED, ARGO_GROUP, ARGO_VERSION, AnalysisRun
from selfheal.errors import SelfHealError, TransientError
from selfheal.services import triggers


@kopf.index(ARGO_GROUP, ARGO_VERSION, "analysisruns", id="failed_runs")
def failed_runs_index(namespace: str | None, body: kopf.Body, **_: Any) -> dict[tuple[str | None, str], Any] | None:
    run = AnalysisRun.from_obj(body)
    if run.owner is None or run.owner.kind != "Rollout" or run.phase not in (AR_FAILED, AR_ERROR):
        return None
    return {(namespace, run.owner.uid): dict(body)}


# Kopf hands indices over as keyword arguments that its callback protocols do not declare.
@kopf.on.event(ARGO_GROUP, ARGO_VERSION, "analysisruns", id="analysisrun-triggers")  # type: ignore[arg-type]
async def analysis_run_changed(
    type: str, body: kopf.Body, namespace: str, memo: kopf.Memo, policies: kopf.Index, logger: kopf.Logger, **_: Any
) -> None:
    run = AnalysisRun.from_obj(body)
    if type == "DELETED" or run.owner is None or run.owner.kind != "Rollout" or run.phase not in (AR_FAILED, AR_ERROR):
        return
    try:
        rollout = await memo.runtime.kube.get_rollout_obj(namespace, run.owner.name)
        await triggers.on_analysis_run(memo.runtime, run, rollout, policies.get(namespace, []))
    except TransientError as e:
        logger.warning("analysis deferred to the policy's next sweep: %s", e)
    except SelfHealError as e:
        logger.error("analysis failed: %s", e)
