"""Start Kopf with the operator's handlers: what `selfheal run` does."""

from __future__ import annotations

import random
from collections.abc import Sequence

import kopf


def run_operator(
    *,
    namespaces: Sequence[str],
    all_namespaces: bool,
    standalone: bool,
    peering: str | None,
    priority: int | None,
    liveness: str | None,
    log_level: str,
    log_format: str,
    metrics_port: int = 0,
    verdict_port: int = 0,
    verdict_token: str = "",
) -> None:
    kopf.configure(
        debug=log_level == "debug",
        quiet=log_level in ("warning", "error"),
        log_format=kopf.LogFormat[log_format.upper()],
    )
    import selfheal.main  # noqa: F401  (registers the handlers)

    if not standalone and priority is None:
        # Replicas of equal priority pause each other; a random one makes exactly one of them active.
        priority = random.randint(1, 10_000)

    kopf.run(
        standalone=standalone,
        peering_name=None if standalone else peering,
        priority=priority,
        namespaces=list(namespaces),
        clusterwide=all_namespaces,
        liveness_endpoint=liveness,
        # read by the startup handler
        memo=kopf.Memo(metrics_port=metrics_port, verdict_port=verdict_port, verdict_token=verdict_token),
    )
