"""The operator dies right after any write of an analysis (the write done, its answer lost), then starts again:
the canary is judged once, aborted once, ticketed once and explained once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from selfheal.services import triggers
from selfheal.testing.fakes import FakeKube, SentPatch
from tests.unit.services.world import NS, ROLLOUT, World, make_world, policy

ABORT = SentPatch("rollout/status", NS, ROLLOUT, {"status": {"abort": True}})
# Every call that changes the cluster.
WRITES = (
    "create_ticket",
    "patch_ticket_status",
    "patch_rollout_status",
    "patch_rollout",
    "create_event",
    "patch_policy_status",
)


class Crash(BaseException):
    """The process is gone: nothing after this point runs (no handler catches it)."""


def die_after(kube: FakeKube, n: int, seen: list[tuple[str, Any]]) -> None:
    """The ``n``-th write (1-based) is carried out, then the process dies before hearing back; every write is
    logged in ``seen``. ``n`` 0: nobody dies."""

    def wrap(name: str, original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def write(*args: Any, **kwargs: Any) -> Any:
            result = await original(*args, **kwargs)
            seen.append((name, args))
            if len(seen) == n:
                raise Crash(f"killed after write {n} ({name})")
            return result

        return write

    for name in WRITES:
        setattr(kube, name, wrap(name, getattr(kube, name)))


async def run_through(world: World, n: int) -> list[tuple[str, Any]]:
    """One look at the paused canary, dying after the ``n``-th write; then a restart and two more looks.
    The writes of the first look."""
    seen: list[tuple[str, Any]] = []
    die_after(world.kube, n, seen)
    try:
        await triggers.on_rollout(world.runtime, world.kube.rollout(NS, ROLLOUT), [policy()])
    except Crash:
        world.restart()
    first = list(seen)
    for _ in range(2):
        await triggers.on_rollout(world.runtime, world.kube.rollout(NS, ROLLOUT), [policy()])
    return first


def judged_at(writes: list[tuple[str, Any]]) -> int:
    """The position (1-based) of the write that records the judgement in the policy's status."""
    for i, (name, args) in enumerate(writes, 1):
        if name == "patch_policy_status" and "Judged" in str(args):
            return i
    raise AssertionError("the judgement was never recorded")


async def clean_run() -> tuple[list[tuple[str, Any]], int]:
    world = make_world()
    world.canary("canary-panic")
    writes = await run_through(world, 0)
    return writes, world.kube.calls["read_log"]


async def test_a_crash_after_any_write_repeats_nothing() -> None:
    writes, reads = await clean_run()
    assert judged_at(writes) == 2, "the judgement is recorded by the first write after the evidence is read"
    assert len(writes) >= 5, writes
    for n in range(1, len(writes) + 1):
        world = make_world()
        world.canary("canary-panic")
        await run_through(world, n)
        where = f"killed after write {n} ({writes[n - 1][0]})"
        assert world.kube.rollout_patches() == [ABORT], where
        [ticket] = world.kube.tickets.values()
        assert ticket["status"]["occurrences"] == 1, where
        for reason in ("CanaryUnhealthy", "RemediationTicketOpened"):
            # an Event posted again has the same content, hence the same name: the same object
            assert len({e.message for e in world.kube.posted if e.reason == reason}) == 1, (where, reason)
        # judged once: a crash before the judgement's record came before its evidence was gathered
        assert world.kube.calls["read_log"] == reads, where


@pytest.fixture
def world() -> World:
    return make_world()
