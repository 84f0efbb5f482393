"""Kopf glue for Argo Rollouts: the Rollout index and the Rollout event triggers."""

from __future__ import annotations

from typing import Any

import kopf

from selfheal.domain.argo import ARGO_GROUP, ARGO_VERSION, Rollout
from selfheal.errors import SelfHealError, TransientError
from selfheal.services import triggers


@kopf.index(ARGO_GROUP, ARGO_VERSION, "rollouts", id="rollouts")
def rollouts_index(
    namespace: str | None, name: str, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[str | None, Any]:
    return {namespace: {"name": name, "labels": dict(labels), "body": dict(body)}}


# Kopf hands indices over as keyword arguments that its callback protocols do not declare.
@kopf.on.event(ARGO_GROUP, ARGO_VERSION, "rollouts", id="rollout-triggers")  # type: ignore[arg-type]
async def rollout_changed(
    type: str,
    body: kopf.Body,
    namespace: str,
    name: str,
    memo: kopf.Memo,
    policies: kopf.Index,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    if type == "DELETED":
        memo.runtime.forget_revisions(namespace, name, set())
        return
    try:
        await triggers.on_rollout(memo.runtime, Rollout.from_obj(body), policies.get(namespace, []))
    except TransientError as e:
        logger.warning("analysis deferred: %s", e)
    except SelfHealError as e:
        logger.error("analysis failed: %s", e)
