"""Kopf glue for SelfHealingPolicy: the indexes of policies; their status is written by the operator's rounds."""

from __future__ import annotations

from typing import Any

import kopf

from selfheal import GROUP, VERSION
from selfheal.errors import ConfigError
from selfheal.services import policies as service
from selfheal.services.indexes import PolicySeen

PLURAL = "selfhealingpolicies"


@kopf.index(GROUP, VERSION, PLURAL, id="policies")
async def policies_index(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> dict[str, service.PolicyRef]:
    """The valid policies, by namespace: what matches Rollouts and decides for them."""
    if namespace is None:  # policies are namespaced; Kopf types the argument for every resource
        return {}
    try:
        return {namespace: service.PolicyRef(namespace, name, service.parse_spec(spec))}
    except ConfigError:
        return {}  # an invalid policy governs nothing; its status says why


@kopf.index(GROUP, VERSION, PLURAL, id="policy_names")
async def policy_names_index(namespace: str | None, name: str, meta: kopf.Meta, **_: Any) -> dict[str, PolicySeen]:
    """Every policy, valid or not, with its spec's generation: each gets a status, at once after a change."""
    if namespace is None:
        return {}
    return {namespace: PolicySeen(namespace, name, int(meta.get("generation") or 0))}


@kopf.on.event(GROUP, VERSION, PLURAL, id="policy-seen")
async def policy_seen(memo: kopf.Memo, **_: Any) -> None:
    memo.runtime.indexes.complete.set()  # Kopf calls no handler before every watched kind is listed
