"""Kopf glue for Argo Rollouts: the Rollout index and the Rollout event triggers."""

from __future__ import annotations

from typing import Any

import kopf

ARGO_GROUP, ARGO_VERSION = "argoproj.io", "v1alpha1"


@kopf.index(ARGO_GROUP, ARGO_VERSION, "rollouts", id="rollouts")
def rollouts_index(namespace: str, name: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict[str, Any]:
    return {namespace: {"name": name, "labels": dict(labels), "body": dict(body)}}
