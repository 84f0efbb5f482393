"""The worker processes for the log work: the work runs in another process, the pool is sized to the cores the
operator may use, and a worker that dies costs only its job."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from selfheal.domain.evidence import Side
from selfheal.errors import TransientError
from selfheal.services.gather import gather_evidence
from selfheal.services.judge import assess
from selfheal.services.workers import CpuPool, available_cores
from tests.unit.services.world import NS, ROLLOUT, World, policy


def _pid() -> int:
    return os.getpid()


def _die() -> None:
    os._exit(3)


async def test_the_statistical_verdict_is_computed_in_a_worker_process(world: World) -> None:
    world.canary("canary-panic")
    ro = world.kube.rollout(NS, ROLLOUT)
    spec = policy().spec
    evidence = await gather_evidence(world.kube, ro, spec.analysis.logs, trigger="IndefinitePause", now=world.clock())
    assert evidence.side(Side.CANARY)
    pool = CpuPool(1)
    pool.start()
    try:
        (worker,) = await pool.warm_up()
        assert worker != os.getpid() and pool.pids() == [worker]
        assert await pool.run(_pid) == worker
        _, _, verdict = await pool.run(assess, evidence, spec.analysis)
        _, _, here = assess(evidence, spec.analysis)
        assert verdict.verdict == here.verdict == "unhealthy"
    finally:
        pool.close()


async def test_a_worker_that_dies_loses_its_job_only() -> None:
    pool = CpuPool(1)
    pool.start()
    try:
        await pool.warm_up()
        with pytest.raises(TransientError):
            await pool.run(_die)
        assert await pool.run(_pid) == os.getpid()  # meanwhile in a thread: nothing waits for the new pool
        await pool.warm_up()
        assert await pool.run(_pid) != os.getpid()  # the pool was built again
    finally:
        pool.close()


async def test_until_the_workers_are_up_the_work_runs_in_a_thread() -> None:
    pool = CpuPool(1)
    pool.start()
    try:
        assert await pool.run(_pid) == os.getpid()
        await pool.warm_up()
        assert await pool.run(_pid) != os.getpid()
    finally:
        pool.close()


async def test_without_workers_the_work_runs_in_a_thread() -> None:
    pool = CpuPool(0)
    pool.start()
    assert await pool.run(_pid) == os.getpid()
    assert pool.pids() == []


def test_the_cores_are_capped_by_the_pods_cpu_limit(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert available_cores(tmp_path) == min(2, len(os.sched_getaffinity(0)))
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cores(tmp_path) == len(os.sched_getaffinity(0))
    assert available_cores(tmp_path / "missing") == len(os.sched_getaffinity(0))
