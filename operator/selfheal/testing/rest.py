"""A small synchronous JSON client for the Kubernetes API, used by the test kit."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class ApiError(Exception):
    """A non-2xx answer from the apiserver, with its status code and Status body."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        message = body.get("message") if isinstance(body, dict) else str(body)
        super().__init__(f"{status}: {message}")


class KubeREST:
    """Thread-safe enough for tests: one httpx.Client per instance, bearer-token auth."""

    def __init__(self, server: str, token: str, ca_file: str | None = None, timeout: float = 30.0) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self._client = httpx.Client(
            base_url=self.server,
            headers={"Authorization": f"Bearer {token}"},
            verify=ssl.create_default_context(cafile=ca_file) if ca_file else False,
            timeout=timeout,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> KubeREST:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        params: dict[str, Any] | None = None,
        raw: bool = False,
    ) -> Any:
        headers = {}
        content = None
        if body is not None:
            headers["Content-Type"] = content_type
            content = json.dumps(body)
        response = self._client.request(method, path, content=content, headers=headers, params=params)
        if response.status_code >= 400:
            try:
                payload = response.json()
            except ValueError:
                payload = response.text
            raise ApiError(response.status_code, payload)
        if raw:
            return response.text
        if not response.content:
            return None
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def get_or_none(self, path: str) -> Any:
        try:
            return self.get(path)
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def text(self, path: str, **params: Any) -> str:
        return self.request("GET", path, params=params or None, raw=True)

    def create(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def apply(self, path: str, body: Any) -> Any:
        """Create, or replace the spec-ish content of an existing object (409 -> merge patch)."""
        try:
            return self.create(path, body)
        except ApiError as e:
            if e.status != 409:
                raise
            name = body["metadata"]["name"]
            return self.patch(f"{path}/{name}", body)

    def patch(self, path: str, body: Any, *, content_type: str = MERGE) -> Any:
        return self.request("PATCH", path, body, content_type=content_type)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body)

    def delete(self, path: str, *, missing_ok: bool = True) -> Any:
        try:
            return self.request("DELETE", path)
        except ApiError as e:
            if missing_ok and e.status == 404:
                return None
            raise

    def items(self, path: str, **params: Any) -> list[dict[str, Any]]:
        return self.get(path, **params).get("items", [])

    def wait_for(
        self, predicate: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"
    ) -> Any:
        """Poll ``predicate`` until it returns a truthy value; raise TimeoutError naming ``message``."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        raise TimeoutError(f"timed out after {timeout}s waiting for {message} (last value: {last!r})")


def iter_documents(text: str) -> Iterator[dict[str, Any]]:
    import yaml

    for doc in yaml.safe_load_all(text):
        if doc:
            yield doc


def resource_path(
    api_version: str, plural: str, namespace: str | None = None, name: str | None = None, subresource: str | None = None
) -> str:
    """The REST path of a resource: core (``v1``) or grouped (``group/version``)."""
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = base + (f"/namespaces/{namespace}" if namespace else "") + f"/{plural}"
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    return path
