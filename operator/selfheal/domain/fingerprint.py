"""The failure fingerprint: a stable hash of what failed, from normalised evidence and never from LLM text."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from selfheal.domain.evidence import Evidence
from selfheal.domain.logdiff import LogDiff

# How many of the top new/increased error templates identify a failure.
TOP_TEMPLATES = 5
_PLACEHOLDERS = re.compile(r"(?:<[A-Z*]+>[\s:/.,=-]*)+")
# A pod's name: <workload>-<pod-template hash>-<5 random characters>.
_POD_NAME = re.compile(r"\b([a-z][a-z0-9-]*?)-[a-z0-9]{6,10}-[a-z0-9]{5}\b")
# Stack lines that belong to the runtime or the framework, not to the failing code.
_FRAMEWORK_FRAME = re.compile(
    r"^(goroutine |panic\(|runtime[./]|net/http\.|created by |reflect\.|sync\.|"
    r"at (java|javax|jdk|sun|org\.springframework|io\.netty)\.|File \"/usr/|Traceback |During handling|"
    r"The above exception|\.\.\.|\[)"
)


def _normalise_line(line: str) -> str:
    line = _POD_NAME.sub(r"\1-<POD>", line.strip())
    return _PLACEHOLDERS.sub("<*> ", line).strip()


def normalise_template(template: str) -> str:
    """A template reduced to what names the failure: its first line, and for a multi-line event (a stack
    trace) the exception line or the first frame of the application's own code. Every masked part
    (``<NUM>``, ``<IP>``, ``<*>``...) becomes one placeholder and pod names lose their random suffix, so
    the same failure keeps its name whichever parts the miner happened to generalise."""
    lines = [line for line in template.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    first = _normalise_line(lines[0])
    rest = [line.strip() for line in lines[1:]]
    if not rest:
        return first
    if lines[0].strip().startswith("Traceback"):
        detail = rest[-1]  # Python: the exception and its message close the traceback
    else:
        detail = next(
            (
                line
                for line in rest
                if not line.startswith(("/", "\t")) and ".go:" not in line and not _FRAMEWORK_FRAME.match(line)
            ),
            "",
        )
    return f"{first} | {_normalise_line(detail)}" if detail else first


def failure_signature(evidence: Evidence, diff: LogDiff) -> list[str]:
    """The normalised facts that identify a failure, in a stable order.

    Significant error/crash templates (already masked: no ids, numbers or timestamps), failed metric
    names, and how canary containers last terminated (OOMKilled, Error). Image tags, pod hashes and
    passing states such as CrashLoopBackOff (present or not depending on the moment) are left out,
    so the same bug keeps its fingerprint on the next revision and at any moment it is looked at.
    """
    parts: list[str] = []
    errors = [t for t in diff.significant() if t.severity == "error" or t.crash_signature]
    parts += sorted({f"log:{normalise_template(t.template)}" for t in errors[:TOP_TEMPLATES]})
    parts += sorted({f"metric:{m.name}:{m.phase}" for m in evidence.failed_metrics})
    reasons: set[str] = set()
    for pod in evidence.pods:
        if pod.side.value != "canary":
            continue
        for c in pod.containers:
            if c.last_terminated_reason:
                reasons.add(f"pod:{c.name}:{c.last_terminated_reason}")
    parts += sorted(reasons)
    return parts


def fingerprint(namespace: str, rollout: str, signature: Iterable[str]) -> str:
    """sha256 over the workload and its failure signature, as 32 hex characters."""
    material = "\n".join([f"{namespace}/{rollout}", *signature])
    return hashlib.sha256(material.encode()).hexdigest()[:32]
