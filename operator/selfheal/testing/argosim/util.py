"""Shared pieces of the simulated Argo Rollouts controller: hashes, times, merge-patch diffs and Events."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from selfheal.testing.rest import ApiError, KubeREST

_SAFE = "456789bcdf"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """Digits 0-9 become ``4 5 6 7 8 9 b c d f``, as Argo's SafeEncodeString does to a decimal hash."""
    return "".join(_SAFE[int(c)] if c.isdigit() else c for c in text)


def pod_template_hash(template: dict, collision_count: int | None) -> str:
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += int(collision_count).to_bytes(4, "little")
    return safe_encode(str(fnv32a(data)))


def step_hash(steps: list | None) -> str:
    return safe_encode(str(fnv32a(json.dumps(steps, sort_keys=True, separators=(",", ":")).encode())))


def now_utc() -> datetime:
    return datetime.now(UTC)


def ts(at: datetime) -> str:
    """metav1.Time: RFC3339 with second precision."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def go_duration(value: Any) -> float:
    """Seconds of an int (seconds) or a Go duration string (``10s``, ``1m30s``, ``500ms``)."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if text.isdigit():
        return float(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration {value!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def merge_diff(old: Any, new: Any) -> Any:
    """The JSON merge patch turning ``old`` into ``new`` (lists whole, vanished keys as null)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif isinstance(value, dict) and isinstance(old[key], dict):
            sub = merge_diff(old[key], value)
            if sub:
                patch[key] = sub
        elif value != old[key]:
            patch[key] = value
    return patch


def prune(value: Any) -> Any:
    """Drop None values and empty dicts, as Go's ``omitempty`` does on the way out."""
    if isinstance(value, dict):
        out = {k: prune(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in out.items() if v != {}}
    return value


def owner_ref(obj: dict) -> dict:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj: dict) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


class Recorder:
    """Writes core/v1 Events as a named component would (``rollouts-controller``, ``kubelet``)."""

    def __init__(self, client: KubeREST, component: str, host: str | None = None) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.sent: list[dict] = []
        self._aggregate: dict[tuple, tuple[str, int]] = {}

    def event(
        self,
        obj: dict,
        reason: str,
        message: str,
        *,
        warning: bool = False,
        field_path: str | None = None,
        aggregate: bool = False,
    ) -> None:
        meta = obj["metadata"]
        namespace = meta.get("namespace", "default")
        now = ts(now_utc())
        key = (namespace, meta.get("uid"), reason, message, field_path)
        if aggregate and key in self._aggregate:
            name, count = self._aggregate[key]
            count += 1
            self._aggregate[key] = (name, count)
            try:
                self.client.patch(
                    f"/api/v1/namespaces/{namespace}/events/{name}", {"count": count, "lastTimestamp": now}
                )
                return
            except ApiError as e:
                if e.status != 404:
                    raise
        involved = {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "namespace": namespace,
            "name": meta["name"],
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        if field_path:
            involved["fieldPath"] = field_path
        source = {"component": self.component}
        if self.host:
            source["host"] = self.host
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
            "involvedObject": {k: v for k, v in involved.items() if v is not None},
            "reason": reason,
            "message": message,
            "type": "Warning" if warning else "Normal",
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": self.component,
            "reportingInstance": self.host or "",
        }
        created = self.client.create(f"/api/v1/namespaces/{namespace}/events", body)
        self.sent.append(created)
        if aggregate:
            self._aggregate[key] = (created["metadata"]["name"], 1)
