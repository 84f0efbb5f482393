"""What the watches know: Kopf's live indexes of Rollouts, unsuccessful AnalysisRuns, policies and tickets, read as
copies.

Kopf updates its indexes between two awaits of ours; every accessor here copies what it returns, so a
caller may hold the result across awaits while Rollouts come and go.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from selfheal.domain.argo import AnalysisRun
from selfheal.domain.views import RolloutView, TicketView

if TYPE_CHECKING:
    from selfheal.services.policies import PolicyRef

T = TypeVar("T")
_EPOCH = datetime.min.replace(tzinfo=UTC)

# An index: a key to the values of the objects filed under it (Kopf's ``kopf.Index``; a dict of lists in tests).
Index = Mapping[Any, Collection[Any]]


@dataclass(frozen=True, slots=True)
class PolicySeen:
    """Any policy, valid or not, with the generation of its spec: its status is refreshed when that changes."""

    namespace: str
    name: str
    generation: int


class Indexes:
    """The indexes the handlers declare, bound at start-up; plain dictionaries until then (and in tests).

    ``rollouts``: (namespace, name) -> RolloutView; ``runs``: (namespace, Rollout uid) -> AnalysisRun
    (Failed, Error and Inconclusive runs only); ``policies``: namespace -> PolicyRef (valid policies);
    ``policy_names``: namespace -> PolicySeen (every policy); ``tickets``: (namespace, name) -> TicketView.
    """

    def __init__(self) -> None:
        self.rollouts: Index = {}
        self.runs: Index = {}
        self.policies: Index = {}
        self.policy_names: Index = {}
        self.tickets: Index = {}
        # Set once Kopf has listed every watched kind: until then an index may hold only part of them.
        self.complete = asyncio.Event()
        self.bound = False

    def bind(self, *, rollouts: Index, runs: Index, policies: Index, policy_names: Index, tickets: Index) -> None:
        self.rollouts, self.runs, self.policies = rollouts, runs, policies
        self.policy_names, self.tickets = policy_names, tickets
        self.bound = True

    # -- Rollouts and their runs ----------------------------------------------------------------------

    def all_rollouts(self) -> list[RolloutView]:
        return _values(self.rollouts)

    def namespace_rollouts(self, namespace: str) -> list[RolloutView]:
        return [view for view in _values(self.rollouts) if view.namespace == namespace]

    def rollout(self, namespace: str, name: str) -> RolloutView | None:
        return _last(self.rollouts.get((namespace, name)))

    def unsuccessful_runs(self, namespace: str, rollout_uid: str) -> list[AnalysisRun]:
        """The Rollout's Failed, Error and Inconclusive AnalysisRuns, oldest first."""
        runs = list(self.runs.get((namespace, rollout_uid)) or ())
        return sorted(runs, key=lambda r: (r.creation_timestamp or _EPOCH, r.name))

    def watched_runs(self, namespace: str, rollout_uid: str) -> list[AnalysisRun] | None:
        """:meth:`unsuccessful_runs` as the watch knows them; None without a watch (they are then listed)."""
        return self.unsuccessful_runs(namespace, rollout_uid) if self.bound else None

    # -- policies and tickets -------------------------------------------------------------------------

    def namespace_policies(self, namespace: str) -> list[PolicyRef]:
        return list(self.policies.get(namespace) or ())

    def all_policies(self) -> list[PolicyRef]:
        return _values(self.policies)

    def policy(self, namespace: str, name: str) -> PolicyRef | None:
        return next((p for p in self.namespace_policies(namespace) if p.name == name), None)

    def every_policy(self) -> list[PolicySeen]:
        """Every policy, valid or not."""
        return _values(self.policy_names)

    def all_tickets(self) -> list[TicketView]:
        return _values(self.tickets)

    def ticket_names(self, namespace: str, rollout: str) -> list[str] | None:
        """The names of a Rollout's tickets, sorted; None without a watch."""
        if not self.bound:
            return None
        return sorted(t.name for t in _values(self.tickets) if t.namespace == namespace and t.rollout == rollout)


def _values(index: Index) -> list[Any]:
    return [value for store in list(index.values()) for value in list(store)]


def _last(values: Iterable[T] | None) -> T | None:
    """The last value filed under a key (two objects of one name exist while one is being replaced)."""
    listed = list(values or ())
    return listed[-1] if listed else None
