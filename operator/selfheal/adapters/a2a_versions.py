"""The A2A protocol versions the client speaks (0.3 and 1.0) and the translation of 1.0 JSON to the 0.3 shapes.

The A2A client reads and writes the 0.3 JSON-RPC shapes (``message/send``, ``kind`` on every object, lower-case
roles and task states). An agent whose card offers only protocol 1.0 (as agents built with the 1.x a2a-sdk
do) expects ``SendMessage``/``GetTask``, the ``A2A-Version: 1.0`` header, parts without ``kind``,
``ROLE_USER`` and ``TASK_STATE_COMPLETED``, and wraps the SendMessage result in ``{"task": ...}`` or
``{"message": ...}``; this module converts at the edge, so the rest of the client has one reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VERSION_HEADER = "A2A-Version"
V0_3 = "0.3"
V1_0 = "1.0"


@dataclass(frozen=True)
class Protocol:
    """One protocol version: its JSON-RPC method names and how its JSON differs from 0.3."""

    version: str
    send_method: str
    get_method: str

    @property
    def is_v1(self) -> bool:
        return self.version == V1_0

    def send_params(self, message: dict[str, Any], accepted: list[str], tenant: str = "") -> dict[str, Any]:
        """``message/send`` (0.3) or ``SendMessage`` (1.0) params; both wait for a final answer."""
        if not self.is_v1:
            return {"message": message, "configuration": {"acceptedOutputModes": accepted, "blocking": True}}
        params: dict[str, Any] = {
            "message": message_to_v1(message),
            "configuration": {"acceptedOutputModes": accepted, "returnImmediately": False},
        }
        if tenant:
            params["tenant"] = tenant
        return params

    def get_params(self, task_id: str, tenant: str = "") -> dict[str, Any]:
        params: dict[str, Any] = {"id": task_id}
        if self.is_v1 and tenant:
            params["tenant"] = tenant
        return params

    def send_result(self, result: dict[str, Any]) -> dict[str, Any]:
        """The SendMessage result as a 0.3 Message or Task (1.0 wraps it in ``task`` or ``message``)."""
        if not self.is_v1:
            return result
        if isinstance(result.get("task"), dict):
            return task_from_v1(result["task"])
        if isinstance(result.get("message"), dict):
            return message_from_v1(result["message"])
        return result

    def get_result(self, result: dict[str, Any]) -> dict[str, Any]:
        """The GetTask / tasks/get result as a 0.3 Task."""
        return task_from_v1(result) if self.is_v1 else result


PROTOCOLS = {
    V0_3: Protocol(V0_3, "message/send", "tasks/get"),
    V1_0: Protocol(V1_0, "SendMessage", "GetTask"),
}


def protocol_for(version: str) -> Protocol | None:
    """The protocol an agent card's ``protocolVersion`` asks for: 0.x speaks 0.3, 1.x speaks 1.0."""
    major = (version or V1_0).strip().split(".")[0]
    return {"0": PROTOCOLS[V0_3], "1": PROTOCOLS[V1_0]}.get(major)


# --- 0.3 -> 1.0 (what the client sends) ------------------------------------------------------------


def part_to_v1(part: dict[str, Any]) -> dict[str, Any]:
    """A 0.3 text or data part as a 1.0 Part: the content field alone tells the kind; a MIME type moves to
    ``mediaType``."""
    out = {k: v for k, v in part.items() if k != "kind"}
    metadata = out.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("mimeType"), str):
        out["mediaType"] = metadata["mimeType"]
    return out


def message_to_v1(message: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in message.items() if k != "kind"}
    out["role"] = {"user": "ROLE_USER", "agent": "ROLE_AGENT"}.get(str(message.get("role")), "ROLE_USER")
    out["parts"] = [part_to_v1(p) if isinstance(p, dict) else p for p in message.get("parts") or []]
    return out


# --- 1.0 -> 0.3 (what the client reads) ------------------------------------------------------------


def state_from_v1(state: Any) -> Any:
    """``TASK_STATE_INPUT_REQUIRED`` -> ``input-required``; anything else unchanged."""
    if isinstance(state, str) and state.startswith("TASK_STATE_"):
        return state.removeprefix("TASK_STATE_").lower().replace("_", "-")
    return state


def part_from_v1(part: Any) -> Any:
    if not isinstance(part, dict) or "kind" in part:
        return part
    if "text" in part:
        return {**part, "kind": "text"}
    if "data" in part:
        return {**part, "kind": "data"}
    if "url" in part or "raw" in part:
        return {**part, "kind": "file"}
    return part


def message_from_v1(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    out = dict(message)
    out.setdefault("kind", "message")
    role = message.get("role")
    if isinstance(role, str) and role.startswith("ROLE_"):
        out["role"] = role.removeprefix("ROLE_").lower()
    if isinstance(message.get("parts"), list):
        out["parts"] = [part_from_v1(p) for p in message["parts"]]
    return out


def task_from_v1(task: dict[str, Any]) -> dict[str, Any]:
    out = dict(task)
    out.setdefault("kind", "task")
    status = task.get("status")
    if isinstance(status, dict):
        out["status"] = {**status, "state": state_from_v1(status.get("state"))}
        if "message" in status:
            out["status"]["message"] = message_from_v1(status["message"])
    if isinstance(task.get("history"), list):
        out["history"] = [message_from_v1(m) for m in task["history"]]
    if isinstance(task.get("artifacts"), list):
        out["artifacts"] = [
            {**a, "parts": [part_from_v1(p) for p in a["parts"]]}
            if isinstance(a, dict) and isinstance(a.get("parts"), list)
            else a
            for a in task["artifacts"]
        ]
    return out
