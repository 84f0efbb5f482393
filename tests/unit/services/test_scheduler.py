"""The job queue: most urgent first, one entry per key, a bounded number at once, nothing before it is active,
and a shutdown that lets running jobs finish within the grace period."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from selfheal.domain.schedule import Priority
from selfheal.services.scheduler import Scheduler


def recorder(done: list[str], name: str, gate: asyncio.Event | None = None) -> Callable[[], Awaitable[None]]:
    async def work() -> None:
        if gate is not None:
            await gate.wait()
        done.append(name)

    return work


async def run_queued(s: Scheduler) -> None:
    s.start()
    s.active.set()
    try:
        await asyncio.wait_for(s.join(), 5)
    finally:
        await s.stop(1)


async def test_triggered_work_goes_before_tickets_policies_and_log_watch_looks() -> None:
    s, done = Scheduler(1), []
    s.submit("look-a", Priority.LOG_WATCH, recorder(done, "look-a"), rank=5)
    s.submit("look-b", Priority.LOG_WATCH, recorder(done, "look-b"), rank=1)
    s.submit("policy", Priority.POLICY, recorder(done, "policy"))
    s.submit("ticket", Priority.TICKET, recorder(done, "ticket"))
    s.submit("pause", Priority.TRIGGERED, recorder(done, "pause"))
    await run_queued(s)
    assert done == ["pause", "ticket", "policy", "look-b", "look-a"]


async def test_a_key_queued_twice_runs_once_with_the_newest_work_and_the_better_priority() -> None:
    s, done = Scheduler(1), []
    s.submit("canary", Priority.LOG_WATCH, recorder(done, "look"))
    s.submit("other", Priority.TICKET, recorder(done, "ticket"))
    s.submit("canary", Priority.TRIGGERED, recorder(done, "pause"))  # promoted ahead of the ticket
    s.submit("canary", Priority.LOG_WATCH, recorder(done, "look again"))  # a lesser ask changes nothing
    assert s.depth()[Priority.TRIGGERED] == 1 and s.depth()[Priority.LOG_WATCH] == 0
    await run_queued(s)
    assert done == ["pause", "ticket"]


async def test_a_key_submitted_while_it_runs_runs_again_after_never_beside_itself() -> None:
    s, done = Scheduler(4), []
    gate = asyncio.Event()
    s.start()
    s.active.set()
    s.submit("canary", Priority.TRIGGERED, recorder(done, "first", gate))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert s.running == 1
    s.submit("canary", Priority.TRIGGERED, recorder(done, "second"))
    s.submit("canary", Priority.TRIGGERED, recorder(done, "third"))
    await asyncio.sleep(0.05)
    assert done == [] and s.running == 1  # four workers, yet one canary is never worked on twice at once
    gate.set()
    await asyncio.wait_for(s.join(), 5)
    await s.stop(1)
    assert done == ["first", "third"]


async def test_no_more_than_the_worker_count_run_at_once() -> None:
    s = Scheduler(3)
    running = peak = 0

    async def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1

    for i in range(20):
        s.submit(i, Priority.TICKET, work)
    await run_queued(s)
    assert peak == 3


async def test_log_watch_looks_leave_half_the_workers_to_a_decision_somebody_waits_for() -> None:
    s, done = Scheduler(4), []
    gate = asyncio.Event()
    s.start()
    s.active.set()
    for i in range(10):
        s.submit(("look", i), Priority.LOG_WATCH, recorder(done, f"look-{i}", gate))
    await asyncio.sleep(0.05)
    assert s.running == 2, "looks take at most half the workers"
    s.submit("pause", Priority.TRIGGERED, recorder(done, "pause"))
    await asyncio.sleep(0.05)
    assert done == ["pause"], "the decision did not wait for a look to end"
    gate.set()
    await asyncio.wait_for(s.join(), 5)
    await s.stop(1)
    assert len(done) == 11


async def test_nothing_runs_until_the_scheduler_is_active() -> None:
    s, done = Scheduler(2), []
    s.start()
    s.submit("pause", Priority.TRIGGERED, recorder(done, "pause"))
    await asyncio.sleep(0.05)
    assert done == [] and s.busy("pause")
    s.active.set()
    await asyncio.wait_for(s.join(), 5)
    await s.stop(1)
    assert done == ["pause"]


async def test_a_job_that_raises_is_logged_and_the_next_one_runs(caplog: pytest.LogCaptureFixture) -> None:
    s, done = Scheduler(1), []

    async def broken() -> None:
        raise ZeroDivisionError("a fault of our own")

    s.submit("broken", Priority.TRIGGERED, broken)
    s.submit("fine", Priority.LOG_WATCH, recorder(done, "fine"))
    await run_queued(s)
    assert done == ["fine"]
    assert "job broken failed unexpectedly" in caplog.text


async def test_stop_lets_a_running_job_finish_within_the_grace_period() -> None:
    s, done = Scheduler(1), []
    s.start()
    s.active.set()

    async def short() -> None:
        await asyncio.sleep(0.1)
        done.append("short")

    s.submit("short", Priority.TRIGGERED, short)
    s.submit("queued", Priority.LOG_WATCH, recorder(done, "queued", asyncio.Event()))
    await asyncio.sleep(0.02)
    await asyncio.wait_for(s.stop(5), 5)
    assert done == ["short"]  # the running job finished; the queued one was never started
    s.submit("late", Priority.TRIGGERED, recorder(done, "late"))  # after stop: ignored
    assert not s.busy("late")


async def test_stop_cancels_a_job_that_outlives_the_grace_period(caplog: pytest.LogCaptureFixture) -> None:
    s = Scheduler(1)
    s.start()
    s.active.set()
    cancelled = asyncio.Event()

    async def endless() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    s.submit("endless", Priority.TRIGGERED, endless)
    await asyncio.sleep(0.02)
    await asyncio.wait_for(s.stop(0.1), 5)
    assert cancelled.is_set()
    assert "still running after" in caplog.text
