"""The coordination.k8s.io/v1 Lease that elects the active replica: read it, write it with its resourceVersion."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from selfheal.adapters.kube import translate
from selfheal.domain.lease import LeaseRecord


class LeaseAdapter:
    """One Lease: ``read`` gives its record and resourceVersion; ``write`` replaces exactly that version
    (or creates the Lease), so two candidates writing at once get one success and one `Conflict`."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str, *, request_timeout: float = 5.0) -> None:
        self.api = client.CoordinationV1Api(api)
        self.namespace = namespace
        self.name = name
        self.timeout = request_timeout

    async def read(self) -> tuple[LeaseRecord | None, str | None]:
        try:
            lease = await self.api.read_namespaced_lease(self.name, self.namespace, _request_timeout=self.timeout)
        except ApiException as e:
            if e.status == 404:
                return None, None
            raise self._error(e, "get") from e
        spec = lease.spec or client.V1LeaseSpec()
        record = LeaseRecord(
            holder=spec.holder_identity or "",
            duration_seconds=int(spec.lease_duration_seconds or 0),
            acquired=_time(spec.acquire_time),
            renewed=_time(spec.renew_time),
            transitions=int(spec.lease_transitions or 0),
        )
        return record, lease.metadata.resource_version

    async def write(self, record: LeaseRecord, resource_version: str | None) -> None:
        """Create the Lease (``resource_version`` None) or replace the version that was read."""
        metadata: dict[str, str] = {"name": self.name, "namespace": self.namespace}
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        spec = {
            "holderIdentity": record.holder or None,
            "leaseDurationSeconds": record.duration_seconds,
            "acquireTime": _micro(record.acquired),
            "renewTime": _micro(record.renewed),
            "leaseTransitions": record.transitions,
        }
        body: Any = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}
        try:
            if resource_version is None:
                await self.api.create_namespaced_lease(self.namespace, body, _request_timeout=self.timeout)
            else:
                await self.api.replace_namespaced_lease(self.name, self.namespace, body, _request_timeout=self.timeout)
        except ApiException as e:
            raise self._error(e, "create" if resource_version is None else "update") from e

    def _error(self, e: ApiException, verb: str) -> Exception:
        return translate(
            e.status or 0,
            str(e.reason or e.body or ""),
            verb=verb,
            resource="leases",
            target=f"{self.namespace}/{self.name}",
        )


def _time(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _micro(value: datetime | None) -> str | None:
    """A MicroTime as the apiserver parses it (RFC 3339 with exactly six fractional digits, UTC)."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
