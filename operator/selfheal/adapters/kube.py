"""The Kubernetes adapter: kubernetes-asyncio calls that return raw dicts or domain models and raise selfheal errors."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from selfheal import GROUP, VERSION
from selfheal.domain.argo import (
    ANALYSIS_RUN_PLURAL,
    ARGO_GROUP,
    ARGO_VERSION,
    POD_HASH_LABEL,
    ROLLOUT_PLURAL,
    AnalysisRun,
    Rollout,
)
from selfheal.domain.evidence import EventRecord
from selfheal.domain.policy import POLICY_PLURAL
from selfheal.domain.ticket import TICKET_PLURAL
from selfheal.errors import ConfigError, Conflict, PermanentError, RateLimitedError, SelfHealError, TransientError

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

EVENT_SOURCE = "selfheal"

# Retry delays (seconds) handed to the caller with a TransientError.
SERVER_ERROR_DELAY = 10.0
RATE_LIMIT_DELAY = 10.0
NETWORK_ERROR_DELAY = 5.0

# List pagination: page size and the most pages read before giving up on completeness.
PAGE_SIZE = 250
MAX_PAGES = 40
# Events kept per object, most recent first.
MAX_EVENTS_PER_OBJECT = 20
MAX_EVENT_MESSAGE = 1024

# kubelet answers meaning "no log to read" rather than a failure.
_NO_LOG_MARKERS = (
    "previous terminated container",
    "is waiting to start",
    "ContainerCreating",
    "PodInitializing",
)


def _status_message(body: bytes | str | None) -> str:
    """The ``message`` of a Kubernetes Status body, else the body itself (shortened)."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    try:
        payload = json.loads(text)
    except ValueError:
        return text.strip()[:500]
    if isinstance(payload, dict) and payload.get("message"):
        return str(payload["message"])
    return text.strip()[:500]


def _retry_after(headers: Mapping[str, str] | None, default: float) -> float:
    value = (headers or {}).get("Retry-After")
    try:
        return max(1.0, float(value)) if value else default
    except ValueError:
        return default


def translate(
    status: int, message: str, *, verb: str, resource: str, target: str, headers: Mapping[str, str] | None = None
) -> SelfHealError:
    """Map an apiserver answer to the selfheal error taxonomy, naming what was attempted."""
    what = f"{verb} {resource} {target}".strip()
    if status == 403 and "being terminated" in message:
        return PermanentError(f"{what}: the namespace is being deleted: {message}")
    if status == 403:
        return ConfigError(
            f"forbidden: the operator may not {verb} {resource} ({target}); grant the verb {verb!r} on "
            f"{resource!r} to its ServiceAccount (missing RBAC permission). apiserver: {message}"
        )
    if status == 429:
        return RateLimitedError(
            f"{what}: rate limited by the apiserver: {message}", delay=_retry_after(headers, RATE_LIMIT_DELAY)
        )
    if status >= 500 or status in (0, 408):
        return TransientError(
            f"{what}: apiserver error {status}: {message}", delay=_retry_after(headers, SERVER_ERROR_DELAY)
        )
    if status == 409:
        return Conflict(f"{what}: conflict (409): {message}")
    if status == 401:
        return PermanentError(f"{what}: unauthorized (401): the operator's credentials were refused: {message}")
    return PermanentError(f"{what}: {status}: {message}")


def with_precondition(body: Mapping[str, Any], resource_version: str | None) -> dict[str, Any]:
    """A merge patch body that the apiserver applies only to ``resource_version`` of the object (409 otherwise)."""
    patch = dict(body)
    if resource_version:
        patch["metadata"] = {**(patch.get("metadata") or {}), "resourceVersion": resource_version}
    return patch


async def connect(kubeconfig: str | None = None, *, context: str | None = None) -> client.ApiClient:
    """An ApiClient from, in order: ``kubeconfig``, ``$KUBECONFIG``, the in-cluster ServiceAccount, ``~/.kube/config``.

    The caller closes the client.
    """
    configuration = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG") or None
    if path is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            config.load_incluster_config(client_configuration=configuration)
            return client.ApiClient(configuration)
        except config.ConfigException as e:
            raise ConfigError(f"in-cluster Kubernetes credentials unusable: {e}") from e
    try:
        await config.load_kube_config(config_file=path, context=context, client_configuration=configuration)
    except (config.ConfigException, OSError) as e:
        raise ConfigError(f"no Kubernetes credentials: not in a cluster and no usable kubeconfig ({e})") from e
    return client.ApiClient(configuration)


class _Answer:
    """Status, headers and body of one apiserver answer."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def message(self) -> str:
        return _status_message(self.body)


class KubeAdapter:
    """Everything selfheal reads from and writes to the apiserver, over one kubernetes-asyncio ApiClient."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        request_timeout: float = 30.0,
        known_tickets: Callable[[str, str], list[str] | None] | None = None,
    ) -> None:
        """``known_tickets(namespace, rollout)``: the names of a Rollout's tickets as the operator's watch
        knows them (None when it does not), so that finding them costs no list of the namespace."""
        self.api_client = api_client
        self.request_timeout = request_timeout
        self.known_tickets = known_tickets
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    # -- the one place where calls are made and errors translated ------------------------------------

    async def _send(
        self,
        call: Callable[..., Awaitable[Any]],
        *args: Any,
        verb: str,
        resource: str,
        target: str,
        content_type: str | None = None,
        **kwargs: Any,
    ) -> _Answer:
        """Run one generated API call without client-side decoding and return the raw answer.

        Transport failures and timeouts become TransientError; HTTP statuses are left to the caller.
        """
        kwargs["_preload_content"] = False
        kwargs.setdefault("_request_timeout", self.request_timeout)
        if content_type:
            kwargs["_content_type"] = content_type
        try:
            response = await call(*args, **kwargs)
            async with response:
                body = await response.read()
                return _Answer(response.status, dict(response.headers), body)
        except ApiException as e:
            raise translate(
                e.status or 0,
                _status_message(e.body) or str(e.reason),
                verb=verb,
                resource=resource,
                target=target,
                headers=e.headers,
            ) from e
        except TimeoutError as e:
            raise TransientError(
                f"{verb} {resource} {target}: timed out after {self.request_timeout}s", delay=NETWORK_ERROR_DELAY
            ) from e
        except aiohttp.ClientError as e:
            raise TransientError(
                f"{verb} {resource} {target}: {e.__class__.__name__}: {e}", delay=NETWORK_ERROR_DELAY
            ) from e

    async def _json(
        self,
        call: Callable[..., Awaitable[Any]],
        *args: Any,
        verb: str,
        resource: str,
        target: str,
        missing_ok: bool = False,
        content_type: str | None = None,
        **kwargs: Any,
    ) -> Any:
        answer = await self._send(
            call, *args, verb=verb, resource=resource, target=target, content_type=content_type, **kwargs
        )
        if answer.ok:
            return answer.json()
        if answer.status == 404 and missing_ok:
            return None
        raise translate(
            answer.status, answer.message, verb=verb, resource=resource, target=target, headers=answer.headers
        )

    async def _list(
        self,
        call: Callable[..., Awaitable[Any]],
        *args: Any,
        resource: str,
        target: str,
        cached: bool = False,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        """Every page of a list. ``cached``: served from the apiserver's watch cache (``resourceVersion=0``),
        a few milliseconds old, instead of a read of every object of the namespace from etcd."""
        if cached:
            kwargs["resource_version"] = "0"
        items: list[dict[str, Any]] = []
        token = None
        for _ in range(MAX_PAGES):
            if token:
                kwargs["_continue"] = token
            page = await self._json(
                call, *args, verb="list", resource=resource, target=target, limit=PAGE_SIZE, **kwargs
            )
            items += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
        else:
            log.warning("list %s %s: stopped after %d pages", resource, target, MAX_PAGES)
        return items

    # -- Rollouts --------------------------------------------------------------------------------------

    async def get_rollout_obj(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._json(
            self.custom.get_namespaced_custom_object,
            ARGO_GROUP,
            ARGO_VERSION,
            namespace,
            ROLLOUT_PLURAL,
            name,
            verb="get",
            resource="rollouts.argoproj.io",
            target=f"{namespace}/{name}",
            missing_ok=True,
        )

    async def get_rollout(self, namespace: str, name: str) -> Rollout | None:
        obj = await self.get_rollout_obj(namespace, name)
        return Rollout.from_obj(obj) if obj is not None else None

    async def patch_rollout_status(
        self, namespace: str, name: str, body: Mapping[str, Any], *, resource_version: str | None = None
    ) -> dict[str, Any]:
        """JSON merge patch on the Rollout's ``/status`` subresource (abort, retry, promote).

        With ``resource_version`` the patch applies only to that version of the Rollout: if it changed
        since, the apiserver refuses it and `Conflict` is raised.
        """
        return await self._json(
            self.custom.patch_namespaced_custom_object_status,
            ARGO_GROUP,
            ARGO_VERSION,
            namespace,
            ROLLOUT_PLURAL,
            name,
            with_precondition(body, resource_version),
            verb="patch",
            resource="rollouts/status",
            target=f"{namespace}/{name}",
            content_type=MERGE_PATCH,
        )

    async def patch_rollout(
        self, namespace: str, name: str, body: Mapping[str, Any], *, resource_version: str | None = None
    ) -> dict[str, Any]:
        """JSON merge patch on the Rollout itself (pause, the spec part of promote); ``resource_version``
        as for `patch_rollout_status`."""
        return await self._json(
            self.custom.patch_namespaced_custom_object,
            ARGO_GROUP,
            ARGO_VERSION,
            namespace,
            ROLLOUT_PLURAL,
            name,
            with_precondition(body, resource_version),
            verb="patch",
            resource="rollouts.argoproj.io",
            target=f"{namespace}/{name}",
            content_type=MERGE_PATCH,
        )

    # -- AnalysisRuns ----------------------------------------------------------------------------------

    async def get_analysis_run(self, namespace: str, name: str) -> AnalysisRun | None:
        obj = await self._json(
            self.custom.get_namespaced_custom_object,
            ARGO_GROUP,
            ARGO_VERSION,
            namespace,
            ANALYSIS_RUN_PLURAL,
            name,
            verb="get",
            resource="analysisruns.argoproj.io",
            target=f"{namespace}/{name}",
            missing_ok=True,
        )
        return AnalysisRun.from_obj(obj) if obj is not None else None

    async def list_analysis_runs(
        self, namespace: str, rollout_uid: str, *, pod_hash: str | None = None
    ) -> list[AnalysisRun]:
        """The AnalysisRuns whose controller ownerReference is the Rollout (how Argo itself finds them), of
        one revision when ``pod_hash`` is given (selected by Argo's pod-template-hash label), oldest first."""
        kwargs: dict[str, Any] = {"label_selector": f"{POD_HASH_LABEL}={pod_hash}"} if pod_hash else {}
        items = await self._list(
            self.custom.list_namespaced_custom_object,
            ARGO_GROUP,
            ARGO_VERSION,
            namespace,
            ANALYSIS_RUN_PLURAL,
            resource="analysisruns.argoproj.io",
            target=f"in namespace {namespace}",
            **kwargs,
        )
        runs = [AnalysisRun.from_obj(item) for item in items]
        owned = [run for run in runs if run.is_owned_by(rollout_uid)]
        return sorted(owned, key=lambda r: (r.creation_timestamp or datetime.min.replace(tzinfo=UTC), r.name))

    # -- ReplicaSets, pods, logs, events ----------------------------------------------------------------

    async def get_replicaset(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._json(
            self.apps.read_namespaced_replica_set,
            name,
            namespace,
            verb="get",
            resource="replicasets.apps",
            target=f"{namespace}/{name}",
            missing_ok=True,
        )

    async def list_pods(
        self, namespace: str, match_labels: Mapping[str, str], pod_hash: str | None = None
    ) -> list[dict[str, Any]]:
        """Pods matching the labels, narrowed to one ``rollouts-pod-template-hash`` when given."""
        labels = dict(match_labels)
        if pod_hash:
            labels[POD_HASH_LABEL] = pod_hash
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        kwargs: dict[str, Any] = {"label_selector": selector} if selector else {}
        return await self._list(
            self.core.list_namespaced_pod,
            namespace,
            resource="pods",
            target=f"in namespace {namespace} ({selector or 'all'})",
            cached=True,
            **kwargs,
        )

    async def read_log(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        tail_lines: int | None = None,
        limit_bytes: int | None = None,
        since_seconds: int | None = None,
        previous: bool = False,
    ) -> str:
        """A bounded log tail. A container without such a log (never restarted, not started) gives ``""``."""
        kwargs: dict[str, Any] = {"container": container}
        if tail_lines is not None:
            kwargs["tail_lines"] = int(tail_lines)
        if limit_bytes is not None:
            kwargs["limit_bytes"] = int(limit_bytes)
        if since_seconds is not None:
            kwargs["since_seconds"] = max(1, int(since_seconds))
        if previous:
            kwargs["previous"] = True
        target = f"{namespace}/{pod} container {container}" + (" (previous)" if previous else "")
        # The raw answer is read as bytes: generated clients would json-decode a log that looks like JSON.
        answer = await self._send(
            self.core.read_namespaced_pod_log, pod, namespace, verb="get", resource="pods/log", target=target, **kwargs
        )
        if answer.ok:
            return answer.body.decode("utf-8", "replace")
        message = answer.message
        if answer.status == 404 or (answer.status == 400 and any(m in message for m in _NO_LOG_MARKERS)):
            return ""
        raise translate(answer.status, message, verb="get", resource="pods/log", target=target, headers=answer.headers)

    async def list_events(self, namespace: str, object_names: set[str] | frozenset[str]) -> list[EventRecord]:
        """Core Events whose involvedObject is one of the named objects, most recent first per object."""

        async def of(name: str) -> list[EventRecord]:
            items = await self._list(
                self.core.list_namespaced_event,
                namespace,
                resource="events",
                target=f"about {namespace}/{name}",
                field_selector=f"involvedObject.name={name}",
                cached=True,
            )
            items.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "", reverse=True)
            return [
                EventRecord(
                    object_name=name,
                    type=e.get("type") or "Normal",
                    reason=e.get("reason") or "",
                    message=e.get("message") or "",
                    count=int(e.get("count") or (e.get("series") or {}).get("count") or 1),
                )
                for e in items[:MAX_EVENTS_PER_OBJECT]
            ]

        results = await asyncio.gather(*(of(name) for name in sorted(object_names)))
        return [record for records in results for record in records]

    async def create_event(
        self,
        involved: Mapping[str, Any],
        *,
        reason: str,
        message: str,
        type: str = "Normal",
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Post a core/v1 Event about ``involved`` (a full object or an ObjectReference-like mapping).

        The name is ``<object>.<hex>`` with the hex derived from the object, reason and message, so the
        same event posted twice updates one Event rather than creating two.
        """
        meta = involved.get("metadata") or involved
        ref = {
            "apiVersion": involved.get("apiVersion", ""),
            "kind": involved.get("kind", ""),
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "uid": meta.get("uid", ""),
        }
        if meta.get("resourceVersion"):
            ref["resourceVersion"] = meta["resourceVersion"]
        namespace = ref["namespace"] or "default"
        digest = hashlib.sha256(f"{ref['uid']}\0{ref['name']}\0{reason}\0{message}".encode()).hexdigest()[:16]
        name = f"{ref['name']}.{digest}"
        stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": ref,
            "reason": reason,
            "message": message[:MAX_EVENT_MESSAGE],
            "type": type,
            "source": {"component": EVENT_SOURCE},
            "reportingComponent": EVENT_SOURCE,
            "reportingInstance": EVENT_SOURCE,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        target = f"{namespace}/{name}"
        answer = await self._send(
            self.core.create_namespaced_event, namespace, body, verb="create", resource="events", target=target
        )
        if answer.ok:
            return answer.json()
        if answer.status != 409:
            raise translate(
                answer.status, answer.message, verb="create", resource="events", target=target, headers=answer.headers
            )
        return await self._json(
            self.core.patch_namespaced_event,
            name,
            namespace,
            {"lastTimestamp": stamp, "message": body["message"]},
            verb="patch",
            resource="events",
            target=target,
            content_type=MERGE_PATCH,
        )

    # -- Secrets ---------------------------------------------------------------------------------------

    async def read_secret_key(self, namespace: str, name: str, key: str) -> str:
        """One key of a Secret, decoded. A missing Secret or key is a configuration error naming the
        Secret and the key asked for, never the Secret's other keys or any value."""
        target = f"{namespace}/{name}"
        obj = await self._json(
            self.core.read_namespaced_secret,
            name,
            namespace,
            verb="get",
            resource="secrets",
            target=f"{target} (key {key!r})",
            missing_ok=True,
        )
        if obj is None:
            raise ConfigError(f"Secret {target} not found (needed for its key {key!r})")
        data = obj.get("data") or {}
        if not isinstance(data, dict) or key not in data:
            # Only the key asked for is named: the Secret's other keys are nobody's business here.
            raise ConfigError(f"Secret {target} has no key {key!r}")
        try:
            return base64.b64decode(data[key]).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError) as e:
            raise ConfigError(f"Secret {target} key {key!r} is not valid UTF-8 text") from e

    # -- our resources ---------------------------------------------------------------------------------

    async def get_ticket(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._json(
            self.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            TICKET_PLURAL,
            name,
            verb="get",
            resource=f"{TICKET_PLURAL}.{GROUP}",
            target=f"{namespace}/{name}",
            missing_ok=True,
        )

    async def create_ticket(self, namespace: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create a RemediationTicket; ``(object, created)``. An existing one (409) is returned with ``False``."""
        name = (body.get("metadata") or {}).get("name", "")
        target = f"{namespace}/{name}"
        resource = f"{TICKET_PLURAL}.{GROUP}"
        answer = await self._send(
            self.custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            TICKET_PLURAL,
            dict(body),
            verb="create",
            resource=resource,
            target=target,
        )
        if answer.ok:
            return answer.json(), True
        if answer.status == 409 and name:
            existing = await self.get_ticket(namespace, name)
            if existing is not None:
                return existing, False
        raise translate(
            answer.status, answer.message, verb="create", resource=resource, target=target, headers=answer.headers
        )

    async def patch_ticket_status(
        self, namespace: str, name: str, body: Mapping[str, Any], *, resource_version: str | None = None
    ) -> dict[str, Any]:
        """JSON merge patch (``{"status": {...}}``) on the ticket's ``/status`` subresource; with
        ``resource_version`` it applies only to that version of the ticket (`Conflict` otherwise)."""
        return await self._json(
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            TICKET_PLURAL,
            name,
            with_precondition(body, resource_version),
            verb="patch",
            resource=f"{TICKET_PLURAL}/status",
            target=f"{namespace}/{name}",
            content_type=MERGE_PATCH,
        )

    async def list_tickets(self, namespace: str, rollout: str | None = None) -> list[dict[str, Any]]:
        """The namespace's tickets, or those of one Rollout: read one by one when the operator's watch knows
        their names (``known_tickets``), else listed."""
        names = self.known_tickets(namespace, rollout) if rollout and self.known_tickets else None
        if names is not None:
            found = [await self.get_ticket(namespace, name) for name in names]
            return [t for t in found if t is not None and (t.get("spec") or {}).get("rollout") == rollout]
        items = await self._list(
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            TICKET_PLURAL,
            resource=f"{TICKET_PLURAL}.{GROUP}",
            target=f"in namespace {namespace}",
        )
        if rollout is None:
            return items
        return [t for t in items if (t.get("spec") or {}).get("rollout") == rollout]

    async def get_policy(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._json(
            self.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            POLICY_PLURAL,
            name,
            verb="get",
            resource=f"{POLICY_PLURAL}.{GROUP}",
            target=f"{namespace}/{name}",
            missing_ok=True,
        )

    async def patch_policy_status(self, namespace: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """JSON merge patch (``{"status": {...}}``) on the policy's ``/status`` subresource."""
        return await self._json(
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            POLICY_PLURAL,
            name,
            dict(body),
            verb="patch",
            resource=f"{POLICY_PLURAL}/status",
            target=f"{namespace}/{name}",
            content_type=MERGE_PATCH,
        )

    async def list_policies(self, namespace: str) -> list[dict[str, Any]]:
        return await self._list(
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            POLICY_PLURAL,
            resource=f"{POLICY_PLURAL}.{GROUP}",
            target=f"in namespace {namespace}",
        )
