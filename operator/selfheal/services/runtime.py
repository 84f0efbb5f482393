"""What the operator builds once at startup and shares: clients, clock, caches, in-flight guards."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

from selfheal.adapters.kube import KubeAdapter


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Kept in Kopf's memo; closed at cleanup."""

    api_client: Any
    kube: KubeAdapter
    clock: Callable[[], datetime] = utcnow
    # Keys of analyses running right now: (namespace, rollout, pod hash, trigger).
    in_flight: set[tuple[str, str, str, str]] = field(default_factory=set)
    # Per-key locks so that one ticket is written by one task at a time.
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    # Clients built on first use and reused: keyed by (kind, endpoint, secret ref).
    clients: dict[tuple[str, ...], Any] = field(default_factory=dict)

    def lock(self, key: str) -> asyncio.Lock:
        return self.locks.setdefault(key, asyncio.Lock())

    async def aclose(self) -> None:
        for client in self.clients.values():
            closer = getattr(client, "aclose", None)
            if closer is not None:
                await closer()
        self.clients.clear()
        await self.api_client.close()


async def build_runtime() -> Runtime:
    """Load in-cluster credentials when running in a pod, the kubeconfig otherwise."""
    configuration = k8s_client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        k8s_config.load_incluster_config(client_configuration=configuration)
    else:
        await k8s_config.load_kube_config(config_file=os.environ.get("KUBECONFIG"),
                                          client_configuration=configuration)
    api_client = k8s_client.ApiClient(configuration)
    return Runtime(api_client=api_client, kube=KubeAdapter(api_client))
