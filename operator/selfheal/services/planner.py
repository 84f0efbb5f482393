"""The operator's own rounds: every second, queue what has come due from the indexes (policy status and catch-up,
log-watch looks in their order, ticket reconciles), never a job that is already queued or running."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import defaultdict
from datetime import datetime, timedelta

from selfheal.domain.schedule import Priority
from selfheal.errors import SelfHealError, TransientError
from selfheal.services import policies, remediation, triggers
from selfheal.services.indexes import PolicySeen
from selfheal.services.policies import PolicyRef
from selfheal.services.runtime import Runtime

log = logging.getLogger(__name__)

# How often the indexes are gone through; each kind of work has its own interval on top.
ROUND_SECONDS = 1.0


class Planner:
    """Decides, from the indexes and what it last did, which jobs are due, and hands them to the scheduler.

    A round is synchronous (no await): it reads copies of the indexes and only queues, so it costs a few
    milliseconds with a thousand Rollouts, and the queue decides what runs first.
    """

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        # When each policy's status and catch-up are due next, and at which spec generation it was last seen.
        self.policy_due: dict[tuple[str, str], datetime] = {}
        self.generations: dict[tuple[str, str], int] = {}
        # When each ticket is due next; a ticket not in it is due now (unless finished).
        self.ticket_due: dict[tuple[str, str], datetime] = {}
        # Finished tickets, with their version and their policy's generation when they were first seen so.
        self.finished: dict[tuple[str, str], tuple[str, int | None]] = {}

    async def rounds(self) -> None:
        """Plan once a second, once Kopf has listed everything (an index half filled would mislead)."""
        await self.rt.indexes.complete.wait()
        while True:
            try:
                self.plan(self.rt.clock())
            except Exception:  # a fault of ours in one round must not end the rounds
                log.exception("planning the operator's work failed; trying again in a second")
            await asyncio.sleep(ROUND_SECONDS)

    def plan(self, now: datetime) -> None:
        swept = self._policies(now)
        self._canaries(now, swept)
        self._tickets(now)

    # -- policies -------------------------------------------------------------------------------------

    def _policies(self, now: datetime) -> set[tuple[str, str]]:
        """Queue the status of each policy whose tick came or whose spec changed; the policies swept now."""
        seen: dict[tuple[str, str], PolicySeen] = {(p.namespace, p.name): p for p in self.rt.indexes.every_policy()}
        tick = timedelta(seconds=self.rt.config.policy_tick_seconds)
        swept = set()
        for key, policy in seen.items():
            changed = self.generations.get(key) != policy.generation
            if changed or self.policy_due.get(key, now) <= now:
                self.policy_due[key], self.generations[key] = now + tick, policy.generation
                job = functools.partial(self._refresh_policy, *key)
                self.rt.scheduler.submit(("policy", *key), Priority.POLICY, job)
                swept.add(key)
        for gone in set(self.policy_due) - set(seen):
            self.policy_due.pop(gone, None)
            self.generations.pop(gone, None)
        return swept

    async def _refresh_policy(self, namespace: str, name: str) -> None:
        try:
            await policies.refresh(self.rt, namespace, name)
            # The judgement ledger forgets the Rollouts the policy no longer governs (deleted, selected elsewhere).
            refs = self.rt.indexes.namespace_policies(namespace)
            mine = {
                view.name
                for view in self.rt.indexes.namespace_rollouts(namespace)
                if (chosen := triggers.governing_policy(view.labels, refs)) is not None and chosen.name == name
            }
            await self.rt.ledger.prune(namespace, name, mine)
        except TransientError as e:
            log.warning("status of policy %s/%s deferred: %s", namespace, name, e)
        except SelfHealError as e:
            log.error("status of policy %s/%s not written: %s", namespace, name, e)

    # -- canaries -------------------------------------------------------------------------------------

    def _canaries(self, now: datetime, swept: set[tuple[str, str]]) -> None:
        """For each governed Rollout: triggered work whose event was missed (when its policy's tick came),
        else a log-watch look when one is due, ranked by :func:`selfheal.domain.schedule.look_rank`."""
        by_namespace: dict[str, list[PolicyRef]] = defaultdict(list)
        for ref in self.rt.indexes.all_policies():
            by_namespace[ref.namespace].append(ref)
        submit = self.rt.scheduler.submit
        for view in self.rt.indexes.all_rollouts():
            policy = triggers.governing_policy(view.labels, by_namespace.get(view.namespace, ()))
            if policy is None:
                continue
            key = triggers.canary_key(view.namespace, view.name)
            if (policy.namespace, policy.name) in swept and triggers.catch_up_due(self.rt, view, policy, now):
                job = functools.partial(triggers.catch_up, self.rt, view.namespace, view.name)
                submit(key, Priority.TRIGGERED, job)
                continue
            rank = triggers.look_due(self.rt, view, policy, now)
            if rank is not None and not self.rt.scheduler.busy(key):
                look = functools.partial(triggers.look, self.rt, view.namespace, view.name)
                submit(triggers.look_key(view.namespace, view.name), Priority.LOG_WATCH, look, rank=rank)

    # -- tickets --------------------------------------------------------------------------------------

    def _tickets(self, now: datetime) -> None:
        """Queue each ticket whose reconcile is due. A finished one (resolved and reported, or closed) is not
        followed any more: it is reconciled again only when it changes or its policy's spec does."""
        present = set()
        for ticket in self.rt.indexes.all_tickets():
            key = (ticket.namespace, ticket.name)
            present.add(key)
            if ticket.finished:
                self.ticket_due.pop(key, None)
                seen = self.finished.setdefault(key, (ticket.version, self.generations.get((key[0], ticket.policy))))
                if seen == (ticket.version, self.generations.get((key[0], ticket.policy))):
                    continue
            elif self.ticket_due.get(key, now) > now:
                continue
            self.finished.pop(key, None)
            if self.rt.scheduler.busy(("ticket", *key)):
                continue
            job = functools.partial(self._reconcile_ticket, ticket.namespace, ticket.name, ticket.policy)
            self.rt.scheduler.submit(("ticket", *key), Priority.TICKET, job)
        for gone in set(self.ticket_due) - present:
            del self.ticket_due[gone]
        for gone in set(self.finished) - present:
            del self.finished[gone]

    async def _reconcile_ticket(self, namespace: str, name: str, policy_name: str) -> None:
        """One reconcile; the next one after the poll interval, or the delay GitHub or the apiserver asked for."""
        rt = self.rt
        delay = rt.config.ticket_poll_seconds
        try:
            retry = await remediation.reconcile_ticket(rt, namespace, name, rt.indexes.policy(namespace, policy_name))
            if retry is not None:
                delay = retry
                log.info("ticket %s/%s: GitHub refused; trying again in %.0fs", namespace, name, retry)
        except TransientError as e:  # RateLimitedError too: wait what GitHub or the apiserver asked for
            delay = e.delay
            log.warning("ticket %s/%s: %s; trying again in %.0fs", namespace, name, e, delay)
        except SelfHealError as e:
            log.error("ticket %s/%s could not be reconciled: %s", namespace, name, e)
        self.ticket_due[(namespace, name)] = rt.clock() + timedelta(seconds=delay)
