"""Kopf glue for SelfHealingPolicy: the policy index and the policy status (readiness, matches)."""

from __future__ import annotations

from typing import Any

import kopf

from selfheal import GROUP, VERSION
from selfheal.errors import ConfigError
from selfheal.services import policies as service

PLURAL = "selfhealingpolicies"


@kopf.index(GROUP, VERSION, PLURAL, id="policies")
def policies_index(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict[str, service.PolicyRef]:
    try:
        return {namespace: service.PolicyRef(namespace, name, service.parse_spec(spec))}
    except ConfigError:
        return {}  # an invalid policy governs nothing; its status says why


@kopf.on.create(GROUP, VERSION, PLURAL, id="policy-created")
@kopf.on.update(GROUP, VERSION, PLURAL, id="policy-updated", field="spec")
@kopf.timer(GROUP, VERSION, PLURAL, id="policy-refresh", interval=15, initial_delay=5)
async def reconcile_policy(namespace: str, name: str, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta,
                           patch: kopf.Patch, memo: kopf.Memo, policies: kopf.Index,
                           rollouts: kopf.Index, **_: Any) -> None:
    runtime = memo.runtime
    generation = meta.get("generation", 0)
    try:
        ref = service.PolicyRef(namespace, name, service.parse_spec(spec))
    except ConfigError as e:
        readiness = service.Readiness(False, "InvalidSpec", str(e))
        patch.status.update(service.status_patch(readiness, status.get("conditions"), generation,
                                                 runtime.clock(), [], []))
        return
    readiness = await service.check_readiness(runtime.kube, namespace, ref.spec)
    matched, conflicts = service.matching(ref, rollouts.get(namespace, []), policies.get(namespace, []))
    patch.status.update(service.status_patch(readiness, status.get("conditions"), generation, runtime.clock(),
                                             matched, conflicts))
