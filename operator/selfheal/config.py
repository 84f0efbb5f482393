"""Operator-wide settings, read once from the environment (`SELFHEAL_*`), with production defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as e:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from e
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


def _count(name: str, default: int | None) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as e:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from e
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {raw!r}")
    return value


@dataclass(frozen=True)
class OperatorConfig:
    # How often each RemediationTicket is reconciled against GitHub and the Rollout.
    ticket_poll_seconds: float = 30.0
    # How often each policy's status is refreshed (Secrets appearing, matched Rollouts) and its Rollouts
    # are checked for a trigger whose event was missed; each policy's own logWatch.intervalSeconds
    # decides when its canaries' logs are looked at.
    policy_tick_seconds: float = 10.0
    # Scales every policy's logWatch interval (tests use a small factor to look often).
    log_watch_scale: float = 1.0
    # After GitHub refused for good (bad token, unknown repository, invalid label), how long until
    # the ticket and the policy's access check try again; a changed token is tried at once.
    github_refused_retry_seconds: float = 600.0
    # How many jobs (analyses, log-watch looks, ticket reconciles, policy status) run at once.
    concurrency: int = 16
    # Worker processes for the CPU-bound log work; None: one per core the operator may use; 0: a thread.
    cpu_workers: int | None = None
    # At shutdown, how long running jobs may finish before they are cancelled (within the pod's grace period).
    shutdown_grace_seconds: float = 10.0

    @classmethod
    def from_env(cls) -> OperatorConfig:
        return cls(
            ticket_poll_seconds=_seconds("SELFHEAL_TICKET_POLL_SECONDS", cls.ticket_poll_seconds),
            policy_tick_seconds=_seconds("SELFHEAL_POLICY_TICK_SECONDS", cls.policy_tick_seconds),
            log_watch_scale=_seconds("SELFHEAL_LOG_WATCH_SCALE", cls.log_watch_scale),
            github_refused_retry_seconds=_seconds(
                "SELFHEAL_GITHUB_REFUSED_RETRY_SECONDS", cls.github_refused_retry_seconds
            ),
            concurrency=_count("SELFHEAL_CONCURRENCY", cls.concurrency) or cls.concurrency,
            cpu_workers=_count("SELFHEAL_CPU_WORKERS", cls.cpu_workers),
            shutdown_grace_seconds=_seconds("SELFHEAL_SHUTDOWN_GRACE_SECONDS", cls.shutdown_grace_seconds),
        )


CONFIG = OperatorConfig.from_env()
