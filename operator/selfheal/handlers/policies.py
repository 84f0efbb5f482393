"""Kopf glue for SelfHealingPolicy: the policy index, its status, and its periodic work."""

from __future__ import annotations

from typing import Any

import kopf

from selfheal import GROUP, VERSION
from selfheal.config import CONFIG
from selfheal.errors import ConfigError, SelfHealError, TransientError
from selfheal.services import policies as service
from selfheal.services import triggers

PLURAL = "selfhealingpolicies"


@kopf.index(GROUP, VERSION, PLURAL, id="policies")
def policies_index(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> dict[str, service.PolicyRef]:
    if namespace is None:  # policies are namespaced; Kopf types the argument for every resource
        return {}
    try:
        return {namespace: service.PolicyRef(namespace, name, service.parse_spec(spec))}
    except ConfigError:
        return {}  # an invalid policy governs nothing; its status says why


# Kopf hands indices over as keyword arguments that its callback protocols do not declare.
@kopf.on.create(GROUP, VERSION, PLURAL, id="policy-created")
@kopf.on.update(GROUP, VERSION, PLURAL, id="policy-updated", field="spec")  # type: ignore[arg-type]
async def policy_changed(
    namespace: str,
    name: str,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    policies: kopf.Index,
    rollouts: kopf.Index,
    **_: Any,
) -> None:
    patch.status.update(
        await service.reconcile(
            memo.runtime, namespace, name, spec, status, meta, rollouts.get(namespace, []), policies.get(namespace, [])
        )
    )


# Kopf hands indices over as keyword arguments that its callback protocols do not declare.
@kopf.timer(GROUP, VERSION, PLURAL, id="policy-tick", interval=CONFIG.policy_tick_seconds, initial_delay=1)  # type: ignore[arg-type]
async def policy_tick(
    namespace: str,
    name: str,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    policies: kopf.Index,
    rollouts: kopf.Index,
    failed_runs: kopf.Index,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    runtime = memo.runtime
    governed: list[dict[str, Any]] = list(rollouts.get(namespace, []))
    rivals: list[service.PolicyRef] = list(policies.get(namespace, []))
    service.load_usage(runtime.usage_of(namespace, name), status)  # the budget survives restarts
    ref = next((p for p in rivals if p.name == name), None)
    if ref is not None:
        try:
            await triggers.sweep(runtime, ref, governed, failed_runs, rivals)
            await triggers.watch_logs(runtime, ref, governed, rivals)
        except TransientError as e:
            logger.warning("periodic analysis deferred: %s", e)
        except SelfHealError as e:
            logger.error("periodic analysis failed: %s", e)
    patch.status.update(await service.reconcile(runtime, namespace, name, spec, status, meta, governed, rivals))
