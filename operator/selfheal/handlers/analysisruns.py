"""Kopf glue for Argo AnalysisRuns: the index of unsuccessful runs, and a failed or errored run queues a verdict."""

from __future__ import annotations

from typing import Any

import kopf

from selfheal.domain.argo import AR_ERROR, AR_FAILED, AR_UNSUCCESSFUL_PHASES, ARGO_GROUP, ARGO_VERSION, AnalysisRun
from selfheal.services import triggers


def _read(body: kopf.Body, logger: kopf.Logger) -> AnalysisRun | None:
    try:
        return AnalysisRun.from_obj(body)
    except Exception as e:  # any odd input: one unreadable run must not stop the others
        logger.warning("AnalysisRun cannot be read; ignored: %r", e)
        return None


@kopf.index(ARGO_GROUP, ARGO_VERSION, "analysisruns", id="unsuccessful_runs")
async def runs_index(
    namespace: str | None, body: kopf.Body, logger: kopf.Logger, **_: Any
) -> dict[tuple[str | None, str], AnalysisRun] | None:
    """Failed, Error and Inconclusive runs of Rollouts, by Rollout: a successful run costs no memory here."""
    if (body.get("status") or {}).get("phase") not in AR_UNSUCCESSFUL_PHASES:
        return None
    run = _read(body, logger)
    if run is None or run.owner is None or run.owner.kind != "Rollout":
        return None
    return {(namespace, run.owner.uid): run}


@kopf.on.event(ARGO_GROUP, ARGO_VERSION, "analysisruns", id="analysisrun-triggers")
async def analysis_run_changed(type: str, body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    memo.runtime.indexes.complete.set()  # Kopf calls no handler before every watched kind is listed
    if type == "DELETED" or (body.get("status") or {}).get("phase") not in (AR_FAILED, AR_ERROR):
        return
    run = _read(body, logger)
    if run is not None:
        triggers.run_seen(memo.runtime, run)
