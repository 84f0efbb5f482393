"""Operator start-up, readiness and clean-up: Kopf settings, the runtime built once into the memo with the indexes
bound and its work started, the metrics endpoint, and the probe that makes /healthz answer "ready" once they exist."""

from __future__ import annotations

import logging
import re
from typing import Any

import kopf

from selfheal import GROUP
from selfheal.errors import ConfigError
from selfheal.handlers import verdicts
from selfheal.services.planner import Planner
from selfheal.services.runtime import build_runtime

# Kopf's own line for each handler that succeeded ("Handler 'rollout-triggers' succeeded.") names no Rollout,
# verdict or action; selfheal logs what it decided itself. These lines stay at --log-level debug.
_KOPF_SUCCESS = re.compile(r"^\w+ '[^']*' succeeded\.$|^\w+ is processed: \d+ succeeded; \d+ failed\.$")
# What Kopf's last-handled annotation leaves out of a ticket: the verdict and evidence, written once and
# never diffed (no handler reacts to a ticket's spec changing). Policies have no such fields.
_NOT_DIFFED = ("spec.verdict", "spec.evidence", "spec.images")


class QuietKopfSuccess(logging.Filter):
    """Drops Kopf's per-handler success lines unless the operator logs at debug."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not record.name.startswith("kopf"):
            return True
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            return True
        return not _KOPF_SUCCESS.match(record.getMessage())


def quiet_chatter() -> None:
    """Below debug, the log says what selfheal decided: Kopf's success lines and the HTTP clients' request
    lines are left out (installed once, on the handlers Kopf configured)."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        return
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, QuietKopfSuccess) for f in handler.filters):
            handler.addFilter(QuietKopfSuccess())


# Kopf hands indices over as keyword arguments that its callback protocols do not declare.
@kopf.on.startup(id="selfheal-startup")  # type: ignore[arg-type]
async def configure(
    settings: kopf.OperatorSettings,
    memo: kopf.Memo,
    rollouts: kopf.Index,
    unsuccessful_runs: kopf.Index,
    policies: kopf.Index,
    policy_names: kopf.Index,
    tickets: kopf.Index,
    **_: Any,
) -> None:
    # Kopf's bookkeeping on our own objects lives in annotations under our prefix. No handler of ours
    # needs a finalizer (periodic work is the runtime's, not Kopf timers), so Kopf adds none, and removes
    # this one wherever an earlier version left it: uninstalling never leaves an object stuck.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled", ignored_fields=list(_NOT_DIFFED)
    )
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.posting.level = logging.WARNING
    quiet_chatter()
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    runtime = await build_runtime()
    runtime.indexes.bind(
        rollouts=rollouts, runs=unsuccessful_runs, policies=policies, policy_names=policy_names, tickets=tickets
    )
    memo.runtime = runtime
    port = memo.get("metrics_port") or 0  # `selfheal run --metrics-port`, handed over by the runner
    if port:
        try:
            await runtime.serve_metrics(port)
        except ConfigError as e:
            raise kopf.PermanentError(str(e)) from e
    await verdicts.start(memo, policies)  # `selfheal run --verdict-port`
    await runtime.start(Planner(runtime).rounds())
    # The one seam with replica coordination: jobs run only while this is set. Start-up runs once the
    # process may act (standalone, or delayed until it is the active replica).
    runtime.scheduler.active.set()


@kopf.on.probe(id="runtime")
def runtime_ready(memo: Any, **_: Any) -> str:
    """Read by the pod's readiness and liveness probes at ``--liveness`` (/healthz): HTTP 500 until start-up
    has built the runtime (API client, metrics endpoint), then "ready"."""
    if getattr(memo, "runtime", None) is None:
        raise kopf.PermanentError("starting: the runtime is not built yet")
    return "ready"


@kopf.on.cleanup(id="selfheal-cleanup")
async def close(memo: kopf.Memo, **_: Any) -> None:
    """Stop planning, let running jobs finish within the grace period, then close the clients."""
    await verdicts.stop(memo)
    runtime = getattr(memo, "runtime", None)
    if runtime is not None:
        await runtime.aclose()
