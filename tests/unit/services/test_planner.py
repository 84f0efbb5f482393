"""The operator's rounds: what comes due from the indexes, in which order, and what is never polled again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from selfheal.domain.argo import Rollout
from selfheal.domain.policy import PolicySpec
from selfheal.domain.schedule import Priority, look_rank
from selfheal.domain.views import RolloutView, TicketView, ticket_is_finished
from selfheal.services.indexes import PolicySeen
from selfheal.services.planner import Planner
from selfheal.services.policies import PolicyRef
from selfheal.services.runtime import Runtime
from selfheal.testing.fakes import FakeKube
from tests.unit.services.world import T0, rollout_obj

NS = "shop"


def policy(**triggers: Any) -> PolicyRef:
    spec = {"selector": {"matchLabels": {"app": "web"}}, "triggers": triggers}
    return PolicyRef(NS, "pay", PolicySpec.model_validate(spec))


def view(name: str, **status: Any) -> RolloutView:
    obj = rollout_obj(status=status)
    obj["metadata"] = {**obj["metadata"], "name": name, "uid": f"uid-{name}"}
    return RolloutView.of(Rollout.from_obj(obj))


def runtime(
    ref: PolicyRef, *rollouts: RolloutView, tickets: tuple[TicketView, ...] = (), generation: int = 1
) -> Runtime:
    rt = Runtime(api_client=None, kube=FakeKube(), clock=lambda: T0)  # type: ignore[arg-type]
    rt.indexes.policies = {NS: [ref]}
    rt.indexes.policy_names = {NS: [PolicySeen(NS, ref.name, generation)]}
    rt.indexes.rollouts = {(NS, v.name): [v] for v in rollouts}
    rt.indexes.tickets = {(NS, t.name): [t] for t in tickets}
    return rt


def ticket(name: str, phase: str, version: str = "1", **status: Any) -> TicketView:
    return TicketView.of(NS, name, {"rollout": "web", "policy": "pay"}, {"phase": phase, **status}, version)


def test_a_pause_waiting_for_a_verdict_is_queued_before_any_log_watch_look() -> None:
    progressing = {"pauseConditions": None, "controllerPause": False, "currentStepIndex": 2}
    rt = runtime(
        policy(indefinitePause=True, logWatch={"enabled": True}),
        view("paused"),
        view("moving", **progressing),
    )
    Planner(rt).plan(T0)
    assert rt.scheduler.depth()[Priority.TRIGGERED] == 1
    assert rt.scheduler.depth()[Priority.LOG_WATCH] == 1
    assert rt.scheduler.busy(("canary", NS, "paused")) and rt.scheduler.busy(("look", NS, "moving"))


def test_a_policy_status_is_queued_each_tick_and_at_once_when_its_spec_changes() -> None:
    rt = runtime(policy(logWatch={"enabled": False}))
    planner = Planner(rt)
    planner.plan(T0)
    assert rt.scheduler.busy(("policy", NS, "pay"))
    rt.scheduler = type(rt.scheduler)(1)  # a fresh queue: what the next rounds add
    planner.plan(T0 + timedelta(seconds=1))
    assert not rt.scheduler.busy(("policy", NS, "pay")), "not due again within the tick"
    rt.indexes.policy_names = {NS: [PolicySeen(NS, "pay", 2)]}
    planner.plan(T0 + timedelta(seconds=2))
    assert rt.scheduler.busy(("policy", NS, "pay")), "a changed spec is written at once"
    rt.scheduler = type(rt.scheduler)(1)
    planner.plan(T0 + timedelta(seconds=2 + rt.config.policy_tick_seconds))
    assert rt.scheduler.busy(("policy", NS, "pay")), "due again after the tick"


def test_finished_tickets_are_not_polled_until_they_change() -> None:
    open_ticket = ticket("open", "IssueOpened")
    finished = [
        ticket("closed", "Closed"),
        ticket("reported", "Resolved", issue={"number": 7}, verification={"reported": True}),
    ]
    rt = runtime(policy(logWatch={"enabled": False}), tickets=(open_ticket, *finished))
    planner = Planner(rt)
    planner.plan(T0)
    assert rt.scheduler.busy(("ticket", NS, "open"))
    assert not any(rt.scheduler.busy(("ticket", NS, t.name)) for t in finished)

    later = T0 + timedelta(seconds=10 * rt.config.ticket_poll_seconds)
    rt.scheduler = type(rt.scheduler)(1)
    planner.plan(later)
    assert not any(rt.scheduler.busy(("ticket", NS, t.name)) for t in finished), "never polled"

    # A new occurrence written on the closed ticket changes it: it is looked at once more.
    rt.indexes.tickets[(NS, "closed")] = [ticket("closed", "Closed", version="2")]
    planner.plan(later)
    assert rt.scheduler.busy(("ticket", NS, "closed"))
    assert not rt.scheduler.busy(("ticket", NS, "reported"))

    # The resolved ticket's policy changed (a new repository or token reference): looked at again.
    rt.indexes.policy_names = {NS: [PolicySeen(NS, "pay", 2)]}
    planner.plan(later)
    assert rt.scheduler.busy(("ticket", NS, "reported"))


def test_which_tickets_are_finished() -> None:
    assert ticket_is_finished("Closed", {})
    assert not ticket_is_finished("Failed", {})  # tried again after the refused-retry delay
    assert ticket_is_finished("Resolved", {})  # no issue to report the outcome on
    assert not ticket_is_finished("Resolved", {"issue": {"number": 3}})  # the outcome is still to be reported
    assert ticket_is_finished("Resolved", {"issue": {"number": 3}, "verification": {"reported": True}})
    for phase in ("Open", "IssueOpened", "FixProposed", "FixMerged", "Verifying", "Regressed", "Failed"):
        assert not ticket_is_finished(phase, {"issue": {"number": 3}, "verification": {"reported": True}})


def test_the_oldest_look_goes_first_and_nearness_to_promotion_counts_up_to_one_interval() -> None:
    interval = 60.0
    never = look_rank(None, 0.0, interval)
    old = look_rank(T0, 0.0, interval)
    recent_near_end = look_rank(T0 + timedelta(seconds=30), 1.0, interval)
    recent_at_start = look_rank(T0 + timedelta(seconds=30), 0.0, interval)
    much_later_near_end = look_rank(T0 + timedelta(seconds=120), 1.0, interval)
    assert never < old
    assert recent_near_end < old < recent_at_start  # half an interval less waiting, but about to be promoted
    assert old < much_later_near_end  # nearness never outweighs more than an interval of waiting
