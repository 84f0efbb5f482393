"""The simulated controller's informer: others' changes seen late, its own writes at once."""

from __future__ import annotations

from selfheal.testing.argosim.informer import RolloutInformer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ro(version: int, uid: str = "u-1", **status: object) -> dict:
    return {"metadata": {"uid": uid, "resourceVersion": str(version)}, "status": dict(status)}


def versions(objs: list[dict]) -> list[str]:
    return [o["metadata"]["resourceVersion"] for o in objs]


def test_without_lag_the_view_is_the_list() -> None:
    informer = RolloutInformer(0)
    listed = [ro(5)]
    assert informer.view(listed) is listed


def test_a_change_is_seen_only_after_the_lag() -> None:
    clock = Clock()
    informer = RolloutInformer(2.0, clock=clock)
    assert informer.view([ro(1)]) == []  # a new Rollout reaches the controller late too
    clock.now += 2.0
    assert versions(informer.view([ro(1)])) == ["1"]
    clock.now += 0.5
    assert versions(informer.view([ro(2, pauseConditions=None)])) == ["1"]  # a human promoted
    clock.now += 1.9
    assert versions(informer.view([ro(2)])) == ["1"]
    clock.now += 0.1
    assert versions(informer.view([ro(3)])) == ["2"]  # version 3 was listed 0.1 s ago: not yet
    clock.now += 2.0
    assert versions(informer.view([ro(3)])) == ["3"]


def test_its_own_writes_are_seen_at_once_with_what_came_before() -> None:
    clock = Clock()
    informer = RolloutInformer(5.0, clock=clock)
    informer.view([ro(1)])
    clock.now += 5
    assert versions(informer.view([ro(2)])) == ["1"]
    # the controller patches status; the answer (version 3) carries the change of version 2 as well
    informer.wrote(ro(3, phase="Paused"))
    assert informer.view([ro(3)]) == [ro(3, phase="Paused")]
    # a later change by someone else is again seen late
    clock.now += 1
    assert versions(informer.view([ro(4)])) == ["3"]
    clock.now += 5
    assert versions(informer.view([ro(4)])) == ["4"]


def test_a_deleted_rollout_is_forgotten() -> None:
    clock = Clock()
    informer = RolloutInformer(1.0, clock=clock)
    informer.view([ro(1), ro(1, uid="u-2")])
    clock.now += 1
    assert len(informer.view([ro(1), ro(1, uid="u-2")])) == 2
    assert versions(informer.view([ro(1)])) == ["1"]
    assert informer.view([ro(7, uid="u-2")]) == []  # created again: a new object, seen late
