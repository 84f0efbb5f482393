"""`selfheal demo`: a throwaway control plane, simulated Argo Rollouts, the real operator, and a narrated canary."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from selfheal.testing import scenarios as argo_cli
from selfheal.testing.coding_agent import StandInCodingAgent
from selfheal.testing.demo_watch import (
    APP,
    NAMESPACE,
    POLICIES,
    REPO,
    Narrator,
    Watcher,
    rtk_table,
    ticket_summary,
)

TOKEN = "ghp_demo_standin_token"
SECRET = "selfheal-github"
VERDICT_SECRET = "selfheal-verdict"
VERDICT_TOKEN = "demo-verdict-token"
FAST_OPERATOR = {
    "SELFHEAL_POLICY_TICK_SECONDS": "1",
    "SELFHEAL_LOG_WATCH_SCALE": "0.1",
    "SELFHEAL_TICKET_POLL_SECONDS": "1",
}
SCENARIO_TIMEOUT = 45.0  # seconds from the new image to the verdict
ISSUE_PATIENCE = 20.0  # seconds a ticket is given to get its GitHub issue (and agent)
FIX_PATIENCE = 60.0  # seconds for each stage of the fix: pull request, merge, rollout, verification
TICK = 0.25


@dataclass(frozen=True)
class Scenario:
    """One story: the canary image, the Rollout's steps, its analysis, what selfheal should do, and the image
    of the fix a coding agent proposes (then merged, rolled out and verified)."""

    name: str
    image: str
    story: str
    steps: list[dict]
    expect_abort: bool
    template: dict | None = None
    starting_step: int | None = 1
    decision: dict = field(default_factory=dict)
    fix_image: str = ""
    # The AnalysisTemplates' web metric asks selfheal's verdict endpoint; Argo acts on its own analysis.
    inline: bool = False

    @property
    def expectation(self) -> str:
        if not self.expect_abort:
            return "the canary is promoted and no ticket is opened"
        fixed = ", and the fix a coding agent proposes is merged, rolled out and verified" if self.fix_image else ""
        by = "Argo aborts on selfheal's verdict in its own analysis" if self.inline else "the canary is aborted"
        return f"{by}, a RemediationTicket is opened{fixed}"


_SLOW: list[dict[str, Any]] = [
    {"setWeight": 40},
    {"pause": {"duration": "60s"}},
    {"setWeight": 80},
    {"pause": {"duration": "60s"}},
]
SCENARIOS: dict[str, Scenario] = {
    "panic": Scenario(
        "panic",
        "panic",
        "the new image panics ('index out of range') on red requests; a panic-rate analysis watches it",
        [{"setWeight": 40}, {"pause": {"duration": "3s"}}, *_SLOW[1:]],
        True,
        template=argo_cli.analysis_template("panic-rate", "panic-rate", "result < 0.01", interval="1s"),
        starting_step=2,
        decision={"onUnhealthy": "abort"},
        fix_image="green",
    ),
    "http500": Scenario(
        "http500",
        "bad-blue",
        "the new image answers HTTP 500 to most requests, but its only metric (restarts) keeps passing",
        _SLOW,
        True,
        template=argo_cli.analysis_template("restarts", "restarts", "result < 1", interval="1s"),
        decision={"onUnhealthy": "abort"},
        fix_image="green",
    ),
    "colors": Scenario(
        "colors",
        "random",
        "the new image serves random colours instead of blue: different, not broken; the steps pause indefinitely",
        [{"setWeight": 40}, {"pause": {}}, {"setWeight": 80}, {"pause": {}}],
        False,
        decision={"onUnhealthy": "abort", "onHealthy": "promote"},
    ),
    "inline": Scenario(
        "inline",
        "panic",
        "the new image panics; the Rollout's own analysis step asks selfheal's verdict endpoint every 2 s "
        "(an AnalysisTemplate with a web metric), so Argo itself aborts on selfheal's answer",
        [
            {"setWeight": 25},
            argo_cli.analysis_step("selfheal-step", argo_cli.verdict_args()),
            {"setWeight": 50},
            {"pause": {"duration": "2s"}},
        ],
        True,
        starting_step=None,
        decision={"onUnhealthy": "abort", "onHealthy": "promote"},
        fix_image="green",
        inline=True,
    ),
}


def _policy(gh_api_url: str, scenario: Scenario) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": APP}},
        "analysis": {"llm": {"provider": "none"}},
        "decision": scenario.decision,
        "remediation": {
            "github": {
                "repository": REPO,
                "apiURL": gh_api_url,
                "tokenSecretRef": {"name": SECRET, "key": "token"},
                "labels": ["selfheal", "canary-failure"],
                "agent": {"type": "copilot", "baseBranch": "main"},
            }
        },
    }
    if scenario.inline:  # Argo asks; selfheal does not watch the logs on its own meanwhile
        spec["triggers"] = {"logWatch": {"enabled": False}}
    return {"apiVersion": "selfheal.dev/v1alpha1", "kind": "SelfHealingPolicy", "metadata": {"name": APP}, "spec": spec}


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _signals(handler: Any) -> Iterator[None]:
    """SIGINT and SIGTERM go to ``handler`` meanwhile (set explicitly: a background shell job ignores SIGINT)."""
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _wait(watcher: Watcher, done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        watcher.poll()
        if done():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(TICK)


def run_demo(scenario: str = "panic", *, keep: bool = False, json_output: bool = False) -> int:
    """Run one scenario end to end; 0 when selfheal did what the scenario expects, 1 otherwise, 3 on setup errors."""
    from selfheal.testing.controlplane import ControlPlaneUnavailable, find_assets
    from selfheal.testing.operator import helm_binary

    chosen = SCENARIOS[scenario]
    try:
        find_assets()
        helm_binary()
    except (ControlPlaneUnavailable, FileNotFoundError) as e:
        print(f"selfheal demo: {e}", file=sys.stderr)
        return 3
    logging.basicConfig(level=logging.CRITICAL)  # the simulator's expected races are not news
    narrator = Narrator(quiet=json_output)
    summary: dict[str, Any] = {
        "scenario": chosen.name,
        "image": f"{argo_cli.DEMO_IMAGE}:{chosen.image}",
        "expectation": chosen.expectation,
    }
    # Teardown runs with Ctrl-C ignored, so a second Ctrl-C cannot leave an apiserver or an operator behind.
    with _signals(signal.SIG_IGN), contextlib.ExitStack() as stack, _signals(_interrupt):
        try:
            code = _run(chosen, narrator, summary, stack, keep)
        except KeyboardInterrupt:
            summary.update(ok=False, interrupted=True)
            code = 130
            keep = False
            if not json_output:
                print("\ninterrupted", flush=True)
        except Exception as e:
            summary.update(ok=False, error=f"{type(e).__name__}: {e}", keep_operator_log=True)
            code = 1
            if not json_output:
                print(f"selfheal demo failed: {type(e).__name__}: {e}", file=sys.stderr)
        summary["duration_seconds"] = narrator.elapsed()
        if json_output:
            summary["timeline"] = narrator.timeline
            print(json.dumps(summary, indent=2), flush=True)
        if keep and "kubeconfig" in summary:
            print(
                f"\nkept running: export KUBECONFIG={summary['kubeconfig']}\n"
                f"  kubectl -n {NAMESPACE} get rollouts,remediationtickets,events\n"
                f"operator log: {summary['operator_log']}\npress Ctrl-C to tear everything down",
                file=sys.stderr if json_output else sys.stdout,
                flush=True,
            )
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
        if not json_output:
            print("tearing everything down...", flush=True)
    return code


def _run(chosen: Scenario, n: Narrator, summary: dict[str, Any], stack: contextlib.ExitStack, keep: bool) -> int:
    from selfheal.testing.argosim import ArgoSimulator
    from selfheal.testing.controlplane import ControlPlane
    from selfheal.testing.github_server import GitHubStandIn
    from selfheal.testing.kubelet import TestKubelet
    from selfheal.testing.operator import OperatorProcess

    n.say("setup", f"scenario {chosen.name}: {chosen.story}")
    n.detail(f"expected: {chosen.expectation}")
    cp = stack.enter_context(ControlPlane())
    admin = cp.admin
    assert admin is not None, "a started control plane has an admin client"
    n.say("setup", f"control plane up: etcd + kube-apiserver at {cp.url}, with the Argo Rollouts and selfheal CRDs")
    kubelet = stack.enter_context(TestKubelet.for_control_plane(cp))
    kubelet.register_node(cp)
    cp.ensure_namespace(NAMESPACE)
    sim = stack.enter_context(ArgoSimulator(cp, kubelet, namespaces=[NAMESPACE]))
    n.say("setup", f"test kubelet and simulated Argo Rollouts controller running (namespace {NAMESPACE})")
    gh = stack.enter_context(GitHubStandIn(token=TOKEN, repos=[REPO]))
    n.say("setup", f"GitHub stand-in serving {REPO} at {gh.api_url}")
    operator = OperatorProcess.with_chart_rbac(
        cp, namespaces=[NAMESPACE], env=FAST_OPERATOR, verdicts=chosen.inline, verdict_token=VERDICT_TOKEN
    )
    stack.callback(_drop_log, operator, summary)
    stack.enter_context(operator)
    summary.update(kubeconfig=cp.kubeconfig, namespace=NAMESPACE, operator_log=str(operator.log_path))
    n.say("setup", "selfheal operator started (`selfheal run`, as a ServiceAccount with the Helm chart's RBAC)")

    admin.create(
        f"/api/v1/namespaces/{NAMESPACE}/secrets", {"metadata": {"name": SECRET}, "stringData": {"token": TOKEN}}
    )
    admin.create(POLICIES.format(ns=NAMESPACE), _policy(gh.api_url, chosen))
    n.say(
        "setup",
        f"Secret {SECRET} and SelfHealingPolicy {APP} created: statistical verdict, "
        + ", ".join(f"{k}={v}" for k, v in chosen.decision.items())
        + f", issues on {REPO} for copilot",
    )

    if chosen.inline:
        _serve_verdicts_to_argo(admin, operator.verdict_url, n)
    watcher = Watcher(cp, gh, n)
    if chosen.template is not None:
        argo_cli.create(admin, NAMESPACE, chosen.template)
    analysis = chosen.template["metadata"]["name"] if chosen.template else None
    manifest = argo_cli.demo_rollout(
        APP, "blue", steps=chosen.steps, replicas=5, starting_step=chosen.starting_step, background_analysis=analysis
    )
    argo_cli.create(admin, NAMESPACE, manifest)
    n.say("deploy", f"Rollout {APP} created: 5 replicas of {argo_cli.DEMO_IMAGE}:blue")
    if not _wait(watcher, lambda: (watcher.phase or ("",))[0] == "Healthy", 30):
        raise TimeoutError("the first revision (blue) did not become Healthy within 30s")
    stable = (watcher.rollout.get("status") or {}).get("stableRS")

    argo_cli.set_image(admin, NAMESPACE, APP, chosen.image)
    n.say("deploy", f"kubectl argo rollouts set image {APP} {APP}={argo_cli.DEMO_IMAGE}:{chosen.image}")
    _wait(watcher, lambda: _canary(watcher.rollout) not in (None, stable), 15)
    canary = _canary(watcher.rollout)

    def settled() -> bool:
        status = watcher.rollout.get("status") or {}
        if chosen.expect_abort:
            # Aborted as Argo Rollouts shows it (phase Degraded), with its ticket.
            if not (status.get("abort") and (watcher.phase or ("",))[0] == "Degraded" and watcher.tickets):
                return False
            ticket = next(iter(watcher.tickets.values()))
            issue = (ticket.get("status") or {}).get("issue") or {}
            if issue.get("disabled") or (issue.get("number") and (issue.get("agentAssigned") or _assigned(watcher))):
                return True
            return watcher.ticket_since is not None and time.monotonic() - watcher.ticket_since > ISSUE_PATIENCE
        return (watcher.phase or ("",))[0] == "Healthy" and status.get("stableRS") == canary != stable

    finished = _wait(watcher, settled, SCENARIO_TIMEOUT)
    if not chosen.expect_abort and finished:
        _wait(watcher, lambda: False, 2)  # a late ticket would still count against a promotion
    status = watcher.rollout.get("status") or {}
    phase = (watcher.phase or ("", "", None))[0]
    aborted = bool(status.get("abort"))
    promoted = canary is not None and status.get("stableRS") == canary and phase == "Healthy"
    argo_aborted = "analysis phase error/failed" in status.get("message", "")
    fix: dict[str, Any] = {}
    if finished and chosen.expect_abort and chosen.fix_image and watcher.issues:
        fix = _fix_story(watcher, StandInCodingAgent(gh, REPO), chosen.fix_image, n)
    tickets = [ticket_summary(t) for t in watcher.tickets.values()]
    issues = list(watcher.issues.values())
    issue_note = ""
    if tickets and not issues:
        note = next((t["issue_note"] for t in tickets if t["issue_note"]), "")
        issue_note = f"no GitHub issue yet: the ticket has none after {ISSUE_PATIENCE:.0f}s" + (
            f" ({note})" if note else " (is the ticket handler running?)"
        )
        n.say("issue", issue_note)
    ok = (aborted and bool(tickets)) if chosen.expect_abort else (promoted and not tickets)
    if chosen.inline:
        ok = ok and argo_aborted
    if chosen.fix_image and chosen.expect_abort:
        ok = ok and bool(fix.get("resolved"))
    summary.update(
        ok=ok,
        finished=finished,
        rollout={
            "name": APP,
            "phase": phase,
            "message": status.get("message", ""),
            "aborted": aborted,
            "promoted": promoted,
            "stableRS": status.get("stableRS"),
            "canaryPodHash": canary,
            "previousStableRS": stable,
            "abortedByArgoAnalysis": argo_aborted,
        },
        fix=fix or None,
        pulls=list(watcher.pulls.values()),
        events=watcher.events,
        tickets=tickets,
        ticket=tickets[0] if tickets else None,
        issues=issues,
        issue=issues[0] if issues else None,
        issue_note=issue_note,
        simulator_errors=len(sim.errors),
    )
    _narrate_summary(n, chosen, summary)
    if not ok or keep:
        summary["keep_operator_log"] = True
    else:
        summary["operator_log"] = None  # removed at teardown
    return 0 if ok else 1


def _serve_verdicts_to_argo(admin: Any, url: str, n: Narrator) -> None:
    """The token Secret and the AnalysisTemplate whose web metric asks selfheal (as in examples/inline)."""
    admin.create(
        f"/api/v1/namespaces/{NAMESPACE}/secrets",
        {"metadata": {"name": VERDICT_SECRET}, "stringData": {"token": VERDICT_TOKEN}},
    )
    template = argo_cli.verdict_template(
        "selfheal-step", url, secret=VERDICT_SECRET, initial_delay="4s", interval="2s", count=3, inconclusive_limit=2
    )
    argo_cli.create(admin, NAMESPACE, template)
    n.say("setup", f"AnalysisTemplate selfheal-step: after 4 s, 3 measurements 2 s apart, each a GET of {url}")
    n.detail('successCondition: result.healthy; failureCondition: result.verdict == "unhealthy"')
    n.detail(f"the bearer token comes from Secret {VERDICT_SECRET} (args.verdict-token, secretKeyRef)")


def _ticket_phase(watcher: Watcher) -> str:
    return next((str((t.get("status") or {}).get("phase") or "") for t in watcher.tickets.values()), "")


def _fix_story(watcher: Watcher, agent: StandInCodingAgent, image: str, n: Narrator) -> dict[str, Any]:
    """The rest of the loop: the agent's pull request, merged; the fixed image rolled out and verified."""
    admin, gh = watcher.cp.admin, watcher.gh
    fix: dict[str, Any] = {"image": f"{argo_cli.DEMO_IMAGE}:{image}", "resolved": False}

    def proposed() -> bool:
        for line in agent.work():
            n.say("agent", f"stand-in coding agent (Copilot): {line}")
        ready = any(p.ready for p in agent.proposals.values())
        return ready and _ticket_phase(watcher) == "FixProposed"

    if not _wait(watcher, proposed, FIX_PATIENCE):
        n.say("fix", f"no pull request proposed for the ticket within {FIX_PATIENCE:.0f}s")
        return fix
    proposal = next(iter(agent.proposals.values()))
    fix["pull"] = proposal.pull
    fix["mergeSHA"] = gh.merge_pull(proposal.pull, REPO)
    n.say("merge", f"the demo merges pull request #{proposal.pull} (merge commit {fix['mergeSHA'][:7]})")
    n.detail(f"'Fixes #{proposal.issue}' in its body closes the issue on merge, as GitHub does")
    if not _wait(watcher, lambda: _ticket_phase(watcher) == "FixMerged", FIX_PATIENCE):
        return fix
    failing = _canary(watcher.rollout)
    argo_cli.set_image(admin, NAMESPACE, APP, image)
    n.say("deploy", f"the merged fix is built: kubectl argo rollouts set image {APP} {APP}={fix['image']}")
    _wait(watcher, lambda: _canary(watcher.rollout) not in (None, failing), 15)
    fixed = fix["fixedPodHash"] = _canary(watcher.rollout)
    promoted: list[bool] = []

    def rolled_out() -> bool:
        status = watcher.rollout.get("status") or {}
        if (watcher.phase or ("",))[0] == "Healthy" and status.get("stableRS") == fixed:
            return True
        if not promoted and _passed_analysis(admin, fixed):
            argo_cli.promote(admin, NAMESPACE, APP, full=True)
            promoted.append(True)
            n.say("deploy", f"the fixed canary passes its analysis: kubectl argo rollouts promote {APP} --full")
        return False

    if not _wait(watcher, rolled_out, FIX_PATIENCE):
        n.say("fix", f"the fixed revision did not become stable within {FIX_PATIENCE:.0f}s")
        return fix

    def verified() -> bool:
        issues = watcher.issues.values()
        return _ticket_phase(watcher) == "Resolved" and all(i["state"] == "closed" for i in issues)

    fix["resolved"] = _wait(watcher, verified, FIX_PATIENCE)
    fix["issueState"] = next((i["state"] for i in watcher.issues.values()), "")
    for line in rtk_table(watcher.tickets.values()):
        n.detail(line)
    return fix


def _passed_analysis(admin: Any, pod_hash: str | None) -> bool:
    """The revision's analysis has measured it healthy twice and failed nothing (a finished step run counts)."""
    runs = [
        r
        for r in argo_cli.analysis_runs(admin, NAMESPACE, APP)
        if r["metadata"]["labels"].get("rollouts-pod-template-hash") == pod_hash
    ]
    results = [m for r in runs for m in (r.get("status") or {}).get("metricResults") or []]
    passed = sum(m.get("successful", 0) for m in results)
    return bool(runs) and passed >= 2 and not any(m.get("failed") or m.get("error") for m in results)


def _canary(rollout: dict[str, Any]) -> str | None:
    return (rollout.get("status") or {}).get("currentPodHash")


def _assigned(watcher: Watcher) -> bool:
    return any(issue["assignees"] for issue in watcher.issues.values())


def _drop_log(operator: Any, summary: dict[str, Any]) -> None:
    if not summary.get("keep_operator_log"):
        with contextlib.suppress(OSError):
            operator.log_path.unlink()


def _narrate_summary(n: Narrator, chosen: Scenario, summary: dict[str, Any]) -> None:
    if n.quiet:
        return
    ro = summary["rollout"]
    print("\n--- summary " + "-" * 60)
    print(f"scenario   {chosen.name} ({summary['image']}), {n.elapsed():.0f}s")
    outcome = "aborted" if ro["aborted"] else "promoted" if ro["promoted"] else "neither aborted nor promoted"
    print(f"rollout    {ro['phase']}: {outcome} (stable {ro['stableRS']}, canary {ro['canaryPodHash']})")
    reasons = [e["reason"] for e in summary["events"]]
    print(f"selfheal   {', '.join(reasons) or 'no Events'}")
    for t in summary["tickets"] or [None]:
        print(
            f"ticket     {t['name']}: {t['phase'] or '(new)'}, occurrences {t['occurrences']}, "
            f"fingerprint {t['fingerprint'][:16]}"
            if t
            else "ticket     none"
        )
    for i in summary["issues"]:
        print(
            f"issue      {REPO}#{i['number']} {i['title']!r} labels [{', '.join(i['labels'])}] "
            f"assignees [{', '.join(i['assignees'])}]"
        )
    if summary["issue_note"]:
        print(f"issue      {summary['issue_note']}")
    for p in summary["pulls"]:
        state = "merged" if p["merged"] else p["state"]
        print(f"pull       {REPO}#{p['number']} {p['title']!r} by {p['author']}: {state}")
    if summary["fix"]:
        fix = summary["fix"]
        outcome = "verified: the ticket is Resolved" if fix["resolved"] else "not verified"
        print(f"fix        {fix['image']} (revision {fix.get('fixedPodHash') or '-'}): {outcome}")
    verdict = "held" if summary["ok"] else "did NOT hold"
    print(f"expected   {chosen.expectation}: {verdict}")
    if not summary["ok"]:
        print(f"operator log kept in {summary['operator_log']}")
