"""One reconcile of one blue-green Rollout by the simulated Argo Rollouts controller (rolloutBlueGreen: preview and
active Services, the promotion pause, pre- and post-promotion analysis, delayed scale-down, abort)."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from selfheal.testing.argosim.rollout import HASH_LABEL, RolloutReconcile, revision_of, rs_hash
from selfheal.testing.argosim.status import format_selector, set_condition
from selfheal.testing.argosim.util import parse_ts, ts
from selfheal.testing.rest import ApiError

MANAGED_BY = "argo-rollouts.argoproj.io/managed-by-rollouts"
SCALE_DOWN_DEADLINE = "scale-down-deadline"
# defaults.GetScaleDownDelaySecondsOrDefault and GetAbortScaleDownDelaySecondsOrDefault for blue-green.
DEFAULT_SCALE_DOWN_DELAY = 30
DEFAULT_ABORT_SCALE_DOWN_DELAY = 30


class BlueGreenReconcile(RolloutReconcile):
    """rolloutBlueGreen for one observed Rollout; build it fresh per reconcile and call :meth:`run`."""

    strategy = "blueGreen"
    metadata_keys = ("previewMetadata", "activeMetadata")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.active_svc: dict | None = None
        self.preview_svc: dict | None = None

    # -- entry point --------------------------------------------------------------------------------

    def run(self) -> None:
        if self.meta.get("deletionTimestamp"):
            return
        if self.fully_promoted() and self.is_aborted():
            self.remove_abort = True  # "Removing abort condition from fully promoted rollout"
        if not self.check_paused_conditions():
            return
        if not self.load_services():
            return
        if not self.ensure_new_rs():
            return
        self.reconcile_preview_service()
        if self.template_changed():
            self.sync_status()
            return
        self.reconcile_replica_sets()
        self.reconcile_pause()
        self.reconcile_active_service()
        self.sim.reconcile_rollout_analysis(self)
        self.reconcile_ephemeral_metadata()
        self.sync_status()

    def template_changed(self) -> bool:
        """CheckPodSpecChange: the recorded currentPodHash is not the new ReplicaSet's."""
        recorded = self.status.get("currentPodHash")
        return bool(recorded) and recorded != (rs_hash(self.new_rs) if self.new_rs else self.computed_hash)

    # -- Services (rollout/service.go) ---------------------------------------------------------------

    def _service_path(self, name: str) -> str:
        return f"/api/v1/namespaces/{self.ns}/services/{name}"

    def load_services(self) -> bool:
        """getPreviewAndActiveServices; a Service that does not exist makes the spec invalid (Degraded)."""
        names = {"activeService": self.strategy_spec.get("activeService") or ""}
        if self.strategy_spec.get("previewService"):
            names["previewService"] = self.strategy_spec["previewService"]
        found: dict[str, dict] = {}
        for field, name in names.items():
            try:
                found[field] = self.client.get(self._service_path(name)) if name else {}
            except ApiError as e:
                if e.status != 404:
                    raise
                found[field] = {}
            if not found[field]:
                self._invalid_spec(
                    f'The Rollout "{self.name}" is invalid: spec.strategy.blueGreen.{field}: '
                    f'Invalid value: "{name}": service "{name}" not found'
                )
                return False
        self.active_svc = found["activeService"]
        self.preview_svc = found.get("previewService")
        return True

    def _invalid_spec(self, message: str) -> None:
        conditions = copy.deepcopy(self.status.get("conditions") or [])
        if set_condition(conditions, "InvalidSpec", "True", "InvalidSpec", message, self.now_s):
            status = {
                "conditions": conditions,
                "observedGeneration": str(self.meta.get("generation")),
                "phase": "Degraded",
                "message": f"InvalidSpec: {message}",
            }
            self.write("/status", {"status": status})

    @staticmethod
    def selector_hash(service: dict | None) -> str:
        return ((service or {}).get("spec", {}).get("selector") or {}).get(HASH_LABEL, "")

    def switch(self, service: dict, pod_hash: str) -> None:
        """switchServiceSelector: point the Service at ``pod_hash`` (marking it as managed by this Rollout)."""
        old = self.selector_hash(service)
        managed = MANAGED_BY in ((service.get("metadata") or {}).get("annotations") or {})
        if not pod_hash or (old == pod_hash and managed):
            return
        patch: dict[str, Any] = {"spec": {"selector": {HASH_LABEL: pod_hash}}}
        if not managed:
            patch["metadata"] = {"annotations": {MANAGED_BY: self.name}}
        updated = self.client.patch(self._service_path(service["metadata"]["name"]), patch)
        service.clear()
        service.update(updated)
        self.event(
            "SwitchService",
            f"Switched selector for service '{updated['metadata']['name']}' from '{old}' to '{pod_hash}'",
        )

    def halted(self) -> bool:
        """haltProgress: paused by hand, or by an inconclusive analysis."""
        return bool(self.spec.get("paused")) or self.pause_condition("InconclusiveAnalysisRun") is not None

    def reconcile_preview_service(self) -> None:
        if self.preview_svc and not self.halted():
            self.switch(self.preview_svc, rs_hash(self.new))

    def reconcile_active_service(self) -> None:
        assert self.active_svc is not None, "load_services runs first"
        if self.halted() or not self.ready_for_pause() or not self.saturated(self.new):
            return
        target = self.selector_hash(self.active_svc)
        if self.fast_tracked() or (self.completed_pause() and self.completed_pre_promotion()):
            target = rs_hash(self.new)
        if self.status.get("abort"):
            target = self.status.get("stableRS") or ""
        self.switch(self.active_svc, target)

    # -- ReplicaSets (reconcileBlueGreenReplicaSets) -------------------------------------------------

    @property
    def replicas(self) -> int:
        return int(self.spec.get("replicas", 1))

    def saturated(self, rs: dict | None) -> bool:
        """annotations.IsSaturated: all the Rollout's replicas, wanted and available."""
        if rs is None:
            return False
        desired = (rs["metadata"].get("annotations") or {}).get("rollout.argoproj.io/desired-replicas")
        return (
            int(rs["spec"].get("replicas") or 0) == self.replicas
            and desired == str(self.replicas)
            and int((rs.get("status") or {}).get("availableReplicas") or 0) == self.replicas
        )

    def ready_for_pause(self) -> bool:
        """ReadyForPause: the new ReplicaSet has all its replicas, available."""
        new = self.new
        return (
            int(new["spec"].get("replicas") or 0) == self.replicas
            and int((new.get("status") or {}).get("availableReplicas") or 0) == self.replicas
        )

    def has_scale_down_deadline(self, rs: dict | None) -> bool:
        return SCALE_DOWN_DEADLINE in (((rs or {}).get("metadata") or {}).get("annotations") or {})

    def _deadline_passed(self, rs: dict) -> bool:
        deadline = parse_ts((rs["metadata"].get("annotations") or {}).get(SCALE_DOWN_DEADLINE))
        return deadline is not None and self.now >= deadline

    def _set_deadline(self, rs: dict, seconds: int | None) -> None:
        value = None if seconds is None else ts(self.now + timedelta(seconds=seconds))
        updated = self.client.patch(
            f"/apis/apps/v1/namespaces/{self.ns}/replicasets/{rs['metadata']['name']}",
            {"metadata": {"annotations": {SCALE_DOWN_DEADLINE: value}}},
        )
        self.all_rs = [updated if r["metadata"]["uid"] == updated["metadata"]["uid"] else r for r in self.all_rs]
        if self.new["metadata"]["uid"] == updated["metadata"]["uid"]:
            self.new_rs = updated

    def _abort_delay(self) -> int | None:
        """abortScaleDownDelaySeconds (default 30); 0 keeps the preview up for good (None)."""
        value = self.strategy_spec.get("abortScaleDownDelaySeconds")
        value = DEFAULT_ABORT_SCALE_DOWN_DELAY if value is None else int(value)
        return value or None

    def delays_scale_down_on_abort(self) -> bool:
        return self.is_aborted() and self.stable_rs is not None and self._abort_delay() is not None

    def reconcile_replica_sets(self) -> None:
        stable = self.stable_rs
        for rs in [self.new] if not self.delays_scale_down_on_abort() else []:
            if self.has_scale_down_deadline(rs):
                self._set_deadline(rs, None)
        if stable is not None and stable["metadata"]["uid"] != self.new["metadata"]["uid"]:
            if self.has_scale_down_deadline(stable):
                self._set_deadline(stable, None)
            self._scale(stable, self.replicas)
        self._reconcile_new_rs()
        self._scale_down_others()

    def _reconcile_new_rs(self) -> None:
        replicas = self.replicas
        if self.delays_scale_down_on_abort():
            if self.has_scale_down_deadline(self.new):
                if not self._deadline_passed(self.new):
                    return
                replicas = 0
            else:
                stable = self.stable_rs
                if int(((stable or {}).get("status") or {}).get("availableReplicas") or 0) == self.replicas:
                    self._set_deadline(self.new, self._abort_delay())
                return
        self._scale(self.new, replicas)

    def _referenced(self, rs: dict) -> bool:
        """isReplicaSetReferenced: the stable, current, active or preview pods."""
        status = self.status
        blue_green = status.get("blueGreen") or {}
        return rs_hash(rs) in {
            status.get("stableRS"),
            status.get("currentPodHash"),
            blue_green.get("activeSelector"),
            blue_green.get("previewSelector"),
        } - {None, ""}

    def _scale_down_others(self) -> None:
        """scaleDownOldReplicaSetsForBlueGreen: old ReplicaSets get a scale-down-deadline annotation
        (``scaleDownDelaySeconds``, default 30) and are scaled to zero once it has passed."""
        if self.pause_condition("InconclusiveAnalysisRun") is not None:
            return
        post = self.sim.analysis_link(self, "PostPromotion")
        if (
            (self.strategy_spec.get("postPromotionAnalysis") or {}).get("templates")
            and self.strategy_spec.get("scaleDownDelaySeconds") is None
            and not self.skip_post_promotion(post)
            and (post is None or (post.get("status") or {}).get("phase") != "Successful")
        ):
            return
        keep = {self.new["metadata"]["uid"]} | ({self.stable_rs["metadata"]["uid"]} if self.stable_rs else set())
        others = sorted((rs for rs in self.all_rs if rs["metadata"]["uid"] not in keep), key=revision_of, reverse=True)
        limit = self.strategy_spec.get("scaleDownDelayRevisionLimit")
        delay = self.strategy_spec.get("scaleDownDelaySeconds")
        delay = DEFAULT_SCALE_DOWN_DELAY if delay is None else int(delay)
        annotated = 0
        for rs in others:
            current = int(rs["spec"].get("replicas") or 0)
            if self._referenced(rs) or current == 0:
                continue
            desired = 0
            if not self.has_scale_down_deadline(rs):
                if limit is None or annotated < int(limit):
                    annotated += 1
                    desired = current
                    self._set_deadline(rs, delay)
            else:
                annotated += 1
                if (limit is None or annotated <= int(limit)) and not self._deadline_passed(rs):
                    desired = self.replicas
            if current != desired:
                self._scale(rs, desired)

    # -- the promotion pause (reconcileBlueGreenPause) ------------------------------------------------

    def fast_tracked(self) -> bool:
        """isBlueGreenFastTracked: a full promotion, a rollback to the stable pods, or nothing active yet."""
        active = self.selector_hash(self.active_svc)
        new_hash = rs_hash(self.new)
        return (
            bool(self.status.get("promoteFull"))
            or not active
            or active == new_hash
            or (new_hash == self.status.get("stableRS"))
        )

    def controller_pauses(self) -> bool:
        """needsBlueGreenControllerPause: auto promotion off, or after ``autoPromotionSeconds``."""
        if self.strategy_spec.get("autoPromotionEnabled") is False:
            return True
        return int(self.strategy_spec.get("autoPromotionSeconds") or 0) > 0

    def completed_pre_promotion(self) -> bool:
        if not (self.strategy_spec.get("prePromotionAnalysis") or {}).get("templates"):
            return True
        run = self.sim.analysis_link(self, "PrePromotion")
        return run is not None and (run.get("status") or {}).get("phase") == "Successful"

    def completed_pause(self) -> bool:
        """CompletedBlueGreenPause: promoted by a human (the pause condition cleared, controllerPause left),
        or, with auto promotion, ``autoPromotionSeconds`` after the pause began."""
        if self.add_pause:
            return False
        condition = self.pause_condition("BlueGreenPause")
        if self.strategy_spec.get("autoPromotionEnabled") is not False:
            seconds = int(self.strategy_spec.get("autoPromotionSeconds") or 0)
            if seconds == 0:
                return True
            started = parse_ts((condition or {}).get("startTime"))
            return started is not None and self.now > started + timedelta(seconds=seconds)
        return bool(self.status.get("controllerPause")) and condition is None

    def reconcile_pause(self) -> None:
        if self.status.get("abort") or not self.ready_for_pause() or self.halted():
            return
        if self.fast_tracked() or not self.controller_pauses():
            self.remove_pause.append("BlueGreenPause")
            return
        if not self.completed_pre_promotion():
            return
        if self.pause_condition("BlueGreenPause") is not None:
            if self.completed_pause():
                self.remove_pause.append("BlueGreenPause")
        elif not self.status.get("controllerPause"):
            self.add_pause.append("BlueGreenPause")

    # -- analysis (rollout/analysis.go) ---------------------------------------------------------------

    def skip_pre_promotion(self, run: dict | None) -> bool:
        """skipPrePromotionAnalysisRun: nothing to promote to, already active, or the preview not saturated."""
        new_hash = rs_hash(self.new)
        active = (self.status.get("blueGreen") or {}).get("activeSelector")
        if self.status.get("stableRS") == new_hash or not active or active == new_hash:
            return True
        return run is None and not self.saturated(self.new)

    def skip_post_promotion(self, run: dict | None) -> bool:
        """skipPostPromotionAnalysisRun: before the active switch, or once the new pods are stable."""
        new_hash = rs_hash(self.new)
        active = (self.status.get("blueGreen") or {}).get("activeSelector")
        if self.status.get("stableRS") == new_hash or active != new_hash:
            return True
        return run is None and not self.saturated(self.new)

    # -- status (syncRolloutStatusBlueGreen) ----------------------------------------------------------

    def sync_status(self) -> None:
        new = self.base_status()
        blue_green: dict[str, Any] = dict(self.run_statuses or {})
        if self.template_changed():
            # resetRolloutStatus
            self.clear_pause, self.remove_abort = True, True
            new["restartedAt"] = self.spec.get("restartAt")
            new["promoteFull"] = False
            blue_green = {}
        if self.status.get("promoteFull"):
            self.clear_pause, self.remove_abort = True, True
        # Go's omitempty: a Service that selects no revision yet leaves its field out.
        for key, service in (("previewSelector", self.preview_svc), ("activeSelector", self.active_svc)):
            if self.selector_hash(service):
                blue_green[key] = self.selector_hash(service)
        new["blueGreen"] = blue_green
        reason = self.should_full_promote(new)
        if reason:
            self.clear_pause, self.remove_abort = True, True
            new["promoteFull"] = False
            if new.get("stableRS") != new["currentPodHash"]:
                new["stableRS"] = new["currentPodHash"]
                self.event(
                    "RolloutCompleted",
                    f"Rollout completed update to revision {self.revision()} ({new['currentPodHash']}): {reason}",
                )
        active = next((rs for rs in self.all_rs if rs_hash(rs) == blue_green.get("activeSelector")), None)
        if active is not None:
            status = active.get("status") or {}
            new["HPAReplicas"] = int(status.get("replicas") or 0)
            new["selector"] = format_selector(active["spec"].get("selector"))
            new["availableReplicas"] = int(status.get("availableReplicas") or 0)
            new["readyReplicas"] = int(status.get("readyReplicas") or 0)
        self.persist(new)

    def should_full_promote(self, new: dict) -> str:
        active = new["blueGreen"].get("activeSelector")
        if self.stable_rs is None or not active:
            return "Initial deploy"
        if active != new["currentPodHash"]:
            return ""
        if self.status.get("promoteFull"):
            return "Full promotion requested"
        if self.is_aborted():
            return ""
        if (self.strategy_spec.get("postPromotionAnalysis") or {}).get("templates"):
            if self.new_rs is not None and self.has_scale_down_deadline(self.new_rs):
                return f"Rollback to '{self.new_rs['metadata']['name']}' within scaleDownDelay"
            post = self.sim.analysis_link(self, "PostPromotion")
            if post is None or (post.get("status") or {}).get("phase") != "Successful":
                return ""
        return "Completed blue-green update"

    # -- conditions ----------------------------------------------------------------------------------

    def is_available(self, new: dict) -> bool:
        active = new.get("blueGreen", {}).get("activeSelector")
        return self.saturated(next((rs for rs in self.all_rs if active and rs_hash(rs) == active), None))

    def is_healthy(self, new: dict) -> bool:
        """RolloutHealthy: every replica updated and available, the active (and preview) Service on them."""
        blue_green = new.get("blueGreen") or {}
        current = new.get("currentPodHash")
        preview_done = not self.strategy_spec.get("previewService") or blue_green.get("previewSelector") == current
        return (
            new.get("updatedReplicas", 0) == self.replicas
            and new.get("availableReplicas", 0) == self.replicas
            and self.status.get("observedGeneration") == str(self.meta.get("generation"))
            and blue_green.get("activeSelector") == current
            and preview_done
        )

    def strategy_progressed(self, new: dict) -> bool:
        old, now = self.status.get("blueGreen") or {}, new.get("blueGreen") or {}
        return any(old.get(key, "") != now.get(key, "") for key in ("activeSelector", "previewSelector"))
