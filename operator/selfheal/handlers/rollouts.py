"""Kopf glue for Argo Rollouts: the Rollout index (compact views) and the Rollout event that may queue a verdict."""

from __future__ import annotations

from typing import Any

import kopf

from selfheal.domain.argo import ARGO_GROUP, ARGO_VERSION, Rollout
from selfheal.domain.views import RolloutView
from selfheal.services import triggers


@kopf.index(ARGO_GROUP, ARGO_VERSION, "rollouts", id="rollouts")
async def rollouts_index(
    namespace: str | None, name: str, body: kopf.Body, logger: kopf.Logger, **_: Any
) -> dict[tuple[str | None, str], RolloutView] | None:
    try:
        return {(namespace, name): RolloutView.of(Rollout.from_obj(body))}
    except Exception as e:  # any odd input: one unreadable Rollout must not hide the others
        logger.warning("Rollout cannot be read; no policy governs it until it can: %r", e)
        return None


# Coroutines, not plain functions: Kopf runs plain functions in threads, and the job queue belongs to the loop.
@kopf.on.event(ARGO_GROUP, ARGO_VERSION, "rollouts", id="rollout-triggers")
async def rollout_changed(
    type: str, body: kopf.Body, namespace: str | None, name: str, memo: kopf.Memo, **_: Any
) -> None:
    runtime = memo.runtime
    namespace = namespace or ""  # Rollouts are namespaced; Kopf types the argument for every resource
    runtime.indexes.complete.set()  # Kopf calls no handler before every watched kind is listed
    if type == "DELETED":
        runtime.forget_revisions(namespace, name, set())
        return
    view = runtime.indexes.rollout(namespace, name)  # filed by the index above from this very event
    if view is not None:
        triggers.rollout_seen(runtime, view, body)
