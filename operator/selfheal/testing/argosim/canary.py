"""One reconcile of one canary Rollout by the simulated Argo Rollouts controller (rolloutCanary: steps, weights,
pause steps, full promotion)."""

from __future__ import annotations

import math
from typing import Any

from selfheal.testing.argosim.rollout import RolloutReconcile, rs_hash
from selfheal.testing.argosim.status import step_string
from selfheal.testing.argosim.util import go_duration, parse_ts, step_hash


class CanaryReconcile(RolloutReconcile):
    """rolloutCanary for one observed Rollout; build it fresh per reconcile and call :meth:`run`."""

    strategy = "canary"
    metadata_keys = ("canaryMetadata", "stableMetadata")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.canary: dict = self.strategy_spec
        self.steps: list[dict] = self.canary.get("steps") or []

    # -- derived state ------------------------------------------------------------------------------

    def step_index(self) -> int | None:
        if not self.steps:
            return None
        return int(self.status.get("currentStepIndex") or 0)

    def current_step(self) -> tuple[dict | None, int | None]:
        index = self.step_index()
        if index is None or index >= len(self.steps):
            return None, index
        return self.steps[index], index

    # -- entry point --------------------------------------------------------------------------------

    def run(self) -> None:
        if self.meta.get("deletionTimestamp"):
            return
        if self.fully_promoted() and self.is_aborted():
            self.remove_abort = True  # "Removing abort condition from fully promoted rollout"
        if not self.check_paused_conditions():
            return
        if self.template_or_steps_changed():
            self.sync_status()
            return
        if not self.ensure_new_rs():
            return
        self.reconcile_ephemeral_metadata()
        self.reconcile_analysis_runs()
        if self.reconcile_replica_sets():
            self.reconcile_pause()
        self.sync_status()

    def template_or_steps_changed(self) -> bool:
        if self.status.get("currentStepHash") and self.status["currentStepHash"] != step_hash(self.steps):
            return True
        if self.status.get("currentPodHash"):
            current = rs_hash(self.new_rs) if self.new_rs else self.computed_hash
            return self.status["currentPodHash"] != current
        return False

    # -- ReplicaSets ---------------------------------------------------------------------------------

    def current_set_weight(self) -> int:
        """GetCanaryReplicasOrWeight for a basic canary: promoteFull or fully promoted first, then abort."""
        if self.status.get("promoteFull") or self.fully_promoted():
            return 100
        if self.status.get("abort"):
            return 0
        step, index = self.current_step()
        if step is None or index is None:
            return 100
        for i in range(index, -1, -1):
            if "setWeight" in self.steps[i]:
                return int(self.steps[i]["setWeight"])
        return 0

    def desired_counts(self) -> tuple[int, int]:
        replicas = int(self.spec.get("replicas", 1))
        stable = self.stable_rs
        if stable is None or stable["metadata"]["uid"] == self.new["metadata"]["uid"]:
            return replicas, 0
        canary = min(replicas, math.ceil(replicas * self.current_set_weight() / 100))
        return canary, replicas - canary

    def others(self) -> list[dict]:
        keep = {self.new["metadata"]["uid"]} | ({self.stable_rs["metadata"]["uid"]} if self.stable_rs else set())
        return [rs for rs in self.all_rs if rs["metadata"]["uid"] not in keep]

    def at_desired_counts(self) -> bool:
        want_new, want_stable = self.desired_counts()

        def at(rs: dict, want: int) -> bool:
            return (
                int(rs["spec"].get("replicas") or 0) == want
                and int((rs.get("status") or {}).get("availableReplicas") or 0) == want
            )

        if not at(self.new, want_new):
            return False
        stable = self.stable_rs
        if (
            stable is not None
            and stable["metadata"]["uid"] != self.new["metadata"]["uid"]
            and not at(stable, want_stable)
        ):
            return False
        return all(int((rs.get("status") or {}).get("replicas") or 0) == 0 for rs in self.others())

    def reconcile_replica_sets(self) -> bool:
        """Scale new, stable and older ReplicaSets; True when no scaling occurred."""
        if self.spec.get("paused") and not self.is_aborted():
            return True
        want_new, want_stable = self.desired_counts()
        scaled = False
        stable = self.stable_rs
        if stable is not None and stable["metadata"]["uid"] != self.new["metadata"]["uid"]:
            scaled |= self._scale(stable, want_stable)
        scaled |= self._scale(self.new, want_new)
        for rs in self.others():
            scaled |= self._scale(rs, 0)
        return not scaled

    # -- pause steps ---------------------------------------------------------------------------------

    def reconcile_pause(self) -> None:
        if self.spec.get("paused"):
            return
        step, _ = self.current_step()
        if step is None or "pause" not in step:
            return
        if self.pause_condition("CanaryPauseStep") is None and not self.status.get("controllerPause"):
            self.add_pause.append("CanaryPauseStep")

    def completed_current_step(self) -> bool:
        if self.spec.get("paused"):
            return False
        step, _ = self.current_step()
        if step is None:
            return False
        if "pause" in step:
            condition = self.pause_condition("CanaryPauseStep")
            duration = (step.get("pause") or {}).get("duration")
            if duration is not None:
                if condition is None:
                    return False
                started = parse_ts(condition["startTime"])
                if started is None:
                    return False
                return (self.now - started).total_seconds() > go_duration(duration)
            return bool(self.status.get("controllerPause")) and condition is None
        if "setWeight" in step:
            return self.at_desired_counts()
        if "analysis" in step:
            current = self.sim.analysis_link(self, "Step")
            return current is not None and (current.get("status") or {}).get("phase") == "Successful"
        return "setCanaryScale" not in step and "experiment" not in step

    # -- AnalysisRuns --------------------------------------------------------------------------------

    def reconcile_analysis_runs(self) -> None:
        self.sim.reconcile_rollout_analysis(self)

    # -- status --------------------------------------------------------------------------------------

    def base_status(self) -> dict:
        status = super().base_status()
        status.update(
            currentStepHash=step_hash(self.steps),
            currentStepIndex=self.step_index(),
            canary=dict(self.run_statuses or {}),
        )
        return status

    def sync_status(self) -> None:
        """syncRolloutStatusCanary."""
        new = self.base_status()
        steps = len(self.steps)
        if self.template_or_steps_changed():
            self.clear_pause, self.remove_abort = True, True
            new["restartedAt"] = self.spec.get("restartAt")
            new["promoteFull"] = False
            new["canary"] = {}
            new["currentStepIndex"] = 0 if steps else None
            if self.new_rs is not None and self.status.get("stableRS") == rs_hash(self.new_rs) and steps:
                self.event("SkipSteps", "Rollback to stable ReplicaSets")
                new["currentStepIndex"] = steps
            self.persist(new)
            return
        if self.status.get("promoteFull"):
            self.clear_pause, self.remove_abort = True, True
            if steps:
                new["currentStepIndex"] = steps
        reason = self.should_full_promote(new)
        if reason:
            self.clear_pause, self.remove_abort = True, True
            new["currentStepIndex"] = steps if steps else None
            if new.get("stableRS") != new["currentPodHash"]:
                new["stableRS"] = new["currentPodHash"]
                self.event(
                    "RolloutCompleted",
                    f"Rollout completed update to revision {self.revision()} ({new['currentPodHash']}): {reason}",
                )
            self.persist(new)
            return
        if self.is_aborted():
            if steps:
                new["currentStepIndex"] = steps if new.get("stableRS") == new["currentPodHash"] else 0
            self.persist(new)
            return
        if self.completed_current_step():
            step, index = self.current_step()
            assert step is not None and index is not None, "a completed step exists"
            new["currentStepIndex"] = index + 1
            new["canary"] = {k: v for k, v in new["canary"].items() if k != "currentStepAnalysisRunStatus"}
            self.event("RolloutStepCompleted", f"Rollout step {index + 1}/{steps} completed ({step_string(step)})")
            self.remove_pause.append("CanaryPauseStep")
        self.persist(new)

    def should_full_promote(self, new: dict) -> str:
        if self.stable_rs is None:
            return "Initial deploy"
        if new.get("stableRS") == new["currentPodHash"]:
            return ""
        if self.is_aborted():
            return ""
        if self.status.get("promoteFull"):
            return "Full promotion requested"
        index = self.step_index()
        completed_all = not self.steps or index == len(self.steps)
        if self.new_rs is not None and completed_all and self.at_desired_counts():
            return f"Completed all {len(self.steps)} canary steps"
        return ""

    def is_available(self, new: dict) -> bool:
        return new.get("availableReplicas", 0) >= int(self.spec.get("replicas", 1))

    def is_healthy(self, new: dict) -> bool:
        replicas = int(self.spec.get("replicas", 1))
        executed_all = (
            not self.steps or new.get("currentStepIndex") is None or new.get("currentStepIndex") == len(self.steps)
        )
        complete = bool(new.get("stableRS")) and new.get("stableRS") == new["currentPodHash"]
        counts = ("updatedReplicas", "availableReplicas", "readyReplicas", "replicas")
        return all(new.get(k, 0) == replicas for k in counts) and executed_all and complete

    def strategy_progressed(self, new: dict) -> bool:
        old = self.status
        if old.get("stableRS") != new.get("stableRS") or old.get("currentStepHash") != new.get("currentStepHash"):
            return True
        return (
            old.get("currentStepIndex") is not None
            and new.get("currentStepIndex") is not None
            and old["currentStepIndex"] != new["currentStepIndex"]
        )
