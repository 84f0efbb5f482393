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


def normalise_template(template: str) -> str:
    """The first line of a template with every masked part (``<NUM>``, ``<IP>``, ``<*>``...) made one
    placeholder: the same failure keeps its name whichever parts the miner happened to generalise."""
    first = template.strip().splitlines()[0] if template.strip() else ""
    return _PLACEHOLDERS.sub("<*> ", first).strip()


def failure_signature(evidence: Evidence, diff: LogDiff) -> list[str]:
    """The normalised facts that identify a failure, in a stable order.

    Significant error/crash templates (already masked: no ids, numbers or timestamps), failed metric
    names, and pod failure reasons (CrashLoopBackOff, OOMKilled...). Image tags and pod hashes are
    left out so the same bug on the next revision has the same fingerprint.
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
            reasons.update(f"pod:{c.name}:{r}" for r in (c.waiting_reason, c.last_terminated_reason) if r)
    parts += sorted(reasons)
    return parts


def fingerprint(namespace: str, rollout: str, signature: Iterable[str]) -> str:
    """sha256 over the workload and its failure signature, as 32 hex characters."""
    material = "\n".join([f"{namespace}/{rollout}", *signature])
    return hashlib.sha256(material.encode()).hexdigest()[:32]
