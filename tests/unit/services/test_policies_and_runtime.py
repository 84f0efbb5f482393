"""A policy's readiness and spend (which survive a restart through its status), and the runtime's memory,
bounded by the live canaries."""

from __future__ import annotations

from typing import Any

from selfheal.adapters.github import BadCredentials
from selfheal.domain.timestamps import rfc3339
from selfheal.services import analysis, policies, triggers
from selfheal.services.analysis import Trigger
from tests.unit.services.test_remediation import GITHUB
from tests.unit.services.world import CANARY, NS, ROLLOUT, STABLE, T0, World, policy


async def reconcile(world: World, spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return await policies.reconcile(world.runtime, NS, "web-policy", spec, status or {}, {"generation": 1}, [], [])


def ready(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == "Ready")


LLM = {"llm": {"provider": "openai", "model": "m", "apiKeySecretRef": {"name": "llm", "key": "api-key"}}}


async def test_a_policy_whose_secret_is_missing_is_not_ready_and_names_it(world: World) -> None:
    status = await reconcile(world, {"analysis": LLM})
    assert status["phase"] == "NotReady"
    assert ready(status)["reason"] == "SecretNotFound" and "shop/llm" in ready(status)["message"]

    world.kube.secrets[(NS, "llm")] = {"api-key": "sk-example"}
    assert (await reconcile(world, {"analysis": LLM}))["phase"] == "Ready"


async def test_a_refused_github_token_is_not_ready_and_github_is_asked_once_per_while(world: World) -> None:
    world.kube.secrets[(NS, "github")] = {"token": "ghp_revoked"}
    world.github.access_error = BadCredentials("GitHub GET /repos/acme/shop: 401 Bad credentials", status=401)
    first = await reconcile(world, {"remediation": GITHUB})
    assert ready(first)["reason"] == "BadCredentials"

    world.clock.advance(60)
    again = await reconcile(world, {"remediation": GITHUB})
    assert ready(again)["reason"] == "BadCredentials" and world.github.calls["check_access"] == 1

    world.github.access_error = None
    world.clock.advance(world.runtime.config.github_refused_retry_seconds)
    assert (await reconcile(world, {"remediation": GITHUB}))["phase"] == "Ready"
    assert world.github.calls["check_access"] == 2


async def test_an_invalid_spec_is_reported_not_raised(world: World) -> None:
    status = await reconcile(world, {"decision": {"confidenceThreshold": 150}})
    assert status["phase"] == "NotReady" and ready(status)["reason"] == "InvalidSpec"
    assert "confidenceThreshold" in ready(status)["message"]


async def test_spend_recorded_in_the_status_survives_a_restart_and_keeps_the_budget(world: World) -> None:
    world.canary("canary-panic")
    tight = policy(budget={"analysesPerHour": 2}, decision={"dryRun": True})
    ro = world.kube.rollout(NS, ROLLOUT)
    assert await analysis.analyze(world.runtime, tight, ro, Trigger.INDEFINITE_PAUSE) is not None
    spent = await reconcile(world, {"budget": {"analysesPerHour": 2}})
    assert spent["analyses"]["thisHour"] == 1 and spent["analyses"]["total"] == 1

    restarted = world.restart()
    policies.load_usage(restarted.usage_of(NS, "web-policy"), spent)
    assert await analysis.analyze(restarted, tight, ro, Trigger.LOG_WATCH) is not None
    assert await analysis.analyze(restarted, tight, ro, Trigger.LOG_WATCH) is None, "budget forgotten on restart"
    after = await reconcile(world, {"budget": {"analysesPerHour": 2}}, spent)
    assert after["analyses"]["total"] == 2 and after["lastAnalysisTime"] == rfc3339(T0)


async def test_a_new_revision_drops_what_was_remembered_about_the_old_ones(world: World) -> None:
    world.canary("canary-panic")
    rt = world.runtime
    await triggers.on_rollout(rt, world.kube.rollout(NS, ROLLOUT), [policy()])
    record = await rt.ledger.get(NS, "web-policy", ROLLOUT)
    assert record is not None and record.pod_template_hash == CANARY and record.judged and record.acted
    assert (NS, ROLLOUT, CANARY) in rt.snapshots

    world.update_rollout(lambda obj: obj["status"].update(currentPodHash="next9f1", stableRS=STABLE, abort=False))
    await triggers.on_rollout(rt, world.kube.rollout(NS, ROLLOUT), [policy()])
    stored = world.kube.policies[(NS, "web-policy")]["status"]["canaries"]
    assert CANARY not in str(stored), "the old revision's record outlived its canary"
    assert not any(CANARY in key for key in rt.snapshots)


async def test_a_deleted_rollout_leaves_nothing_behind(world: World) -> None:
    world.canary("canary-panic")
    rt = world.runtime
    await triggers.on_rollout(rt, world.kube.rollout(NS, ROLLOUT), [policy()])
    rt.forget_revisions(NS, ROLLOUT, set())
    assert await rt.ledger.prune(NS, "web-policy", set()) == [ROLLOUT]
    assert not rt.snapshots and not world.kube.policies[(NS, "web-policy")]["status"].get("canaries")


async def test_the_canary_logs_seen_before_an_abort_are_used_once_its_pods_are_gone(world: World) -> None:
    world.canary("canary-http-500", step=2, status={"pauseConditions": None, "controllerPause": False})
    watched = policy(decision={"dryRun": True})
    await analysis.look_at_logs(world.runtime, watched, world.kube.rollout(NS, ROLLOUT))
    # the abort scales the canary down: its pods and their logs are gone
    world.kube.pods[NS] = [p for p in world.kube.pods[NS] if CANARY not in p["metadata"]["name"]]

    outcome = await analysis.analyze(
        world.runtime, watched, world.kube.rollout(NS, ROLLOUT), Trigger.ANALYSIS_FAILED, occurrence_key="r1"
    )
    assert outcome is not None
    canary_text = outcome.judgement.evidence.log_text(side="canary")
    assert " 500 " in canary_text and outcome.judgement.verdict.verdict == "unhealthy"


NOTIFY = {
    "slack": {"webhookURLSecretRef": {"name": "hooks"}},
    "webhook": {"urlSecretRef": {"name": "hooks", "key": "hook"}},
}


async def test_a_policy_tells_its_readiness_changes_as_events_and_names_missing_notification_secrets(
    world: World,
) -> None:
    status = await reconcile(world, {"notifications": NOTIFY})
    assert ready(status)["reason"] == "SecretNotFound" and "Slack webhook URL" in ready(status)["message"]
    world.kube.secrets[(NS, "hooks")] = {"url": "https://hooks.slack.com/services/T/B/x", "hook": "https://h.example"}
    status = await reconcile(world, {"notifications": NOTIFY}, status)
    assert ready(status)["status"] == "True"
    await reconcile(world, {"notifications": NOTIFY}, status)  # no change: no Event
    told = [(e.object_name, e.reason, e.type) for e in world.kube.posted]
    assert told == [("web-policy", "PolicyNotReady", "Warning"), ("web-policy", "PolicyReady", "Normal")]
    assert world.kube.posted[0].message.startswith(
        "Policy web-policy is not ready (SecretNotFound): webhook URL: Secret"
    )

    delivered = next(c for c in status["conditions"] if c["type"] == "NotificationsDelivered")
    assert delivered["status"] == "True"
    world.runtime.announcements.failures[(NS, "web-policy")] = (
        "slack: hooks.slack.com refused the notification (HTTP 410)"
    )
    status = await reconcile(world, {"notifications": NOTIFY}, status)
    delivered = next(c for c in status["conditions"] if c["type"] == "NotificationsDelivered")
    assert (delivered["status"], delivered["reason"]) == ("False", "NotificationFailed")
    assert "HTTP 410" in delivered["message"] and ready(status)["status"] == "True"
