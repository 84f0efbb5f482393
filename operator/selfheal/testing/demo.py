"""`selfheal demo`: a throwaway control plane, simulated Argo Rollouts, the real operator, and a narrated canary."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from selfheal.testing import scenarios as argo_cli

NAMESPACE = "demo"
APP = "canary-demo"
REPO = "acme/rollouts-demo"
TOKEN = "ghp_demo_standin_token"
SECRET = "selfheal-github"
POLICIES = "/apis/selfheal.dev/v1alpha1/namespaces/{ns}/selfhealingpolicies"
TICKETS = "/apis/selfheal.dev/v1alpha1/namespaces/{ns}/remediationtickets"
FAST_OPERATOR = {
    "SELFHEAL_POLICY_TICK_SECONDS": "1",
    "SELFHEAL_LOG_WATCH_SCALE": "0.1",
    "SELFHEAL_TICKET_POLL_SECONDS": "1",
}
SCENARIO_TIMEOUT = 45.0  # seconds from the new image to the verdict
ISSUE_PATIENCE = 20.0  # seconds a ticket is given to get its GitHub issue (and agent)
TICK = 0.25


@dataclass(frozen=True)
class Scenario:
    """One story: the canary image, the Rollout's steps, its analysis, and what selfheal should do."""

    name: str
    image: str
    story: str
    steps: list[dict]
    expect_abort: bool
    template: dict | None = None
    starting_step: int | None = 1
    decision: dict = field(default_factory=dict)

    @property
    def expectation(self) -> str:
        return (
            "the canary is aborted and a RemediationTicket is opened"
            if self.expect_abort
            else "the canary is promoted and no ticket is opened"
        )


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
    ),
    "http500": Scenario(
        "http500",
        "bad-blue",
        "the new image answers HTTP 500 to most requests, but its only metric (restarts) keeps passing",
        _SLOW,
        True,
        template=argo_cli.analysis_template("restarts", "restarts", "result < 1", interval="1s"),
        decision={"onUnhealthy": "abort"},
    ),
    "colors": Scenario(
        "colors",
        "random",
        "the new image serves random colours instead of blue: different, not broken; the steps pause indefinitely",
        [{"setWeight": 40}, {"pause": {}}, {"setWeight": 80}, {"pause": {}}],
        False,
        decision={"onUnhealthy": "abort", "onHealthy": "promote"},
    ),
}


class Narrator:
    """Prints what happens with the seconds since the start, and keeps it for the JSON summary."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.start = time.monotonic()
        self.timeline: list[dict[str, Any]] = []

    def elapsed(self) -> float:
        return round(time.monotonic() - self.start, 1)

    def say(self, kind: str, text: str, **data: Any) -> None:
        at = self.elapsed()
        self.timeline.append({"t": at, "kind": kind, "text": text, **data})
        if not self.quiet:
            print(f"[{at:5.1f}s] {text}", flush=True)

    def detail(self, text: str) -> None:
        if not self.quiet:
            print(f"         {text}", flush=True)


class Watcher:
    """Polls the Rollout, selfheal's Events, the tickets and the GitHub stand-in; narrates every change."""

    def __init__(self, cp: Any, gh: Any, narrator: Narrator) -> None:
        self.cp, self.gh, self.n = cp, gh, narrator
        self.phase: tuple[str, str, Any] | None = None
        self.rollout: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        self._seen_events: set[tuple[str, Any]] = set()
        self.tickets: dict[str, dict[str, Any]] = {}
        self._ticket_view: dict[str, tuple] = {}
        self.issues: dict[int, dict[str, Any]] = {}
        self.ticket_since: float | None = None
        self.policy_ready: tuple[str, str] | None = None

    def poll(self) -> None:
        self._policy()
        self._rollout()
        self._events()
        self._tickets()
        self._issues()

    def _policy(self) -> None:
        obj = self.cp.admin.get_or_none(f"{POLICIES.format(ns=NAMESPACE)}/{APP}") or {}
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "Ready" and (cond["status"], cond.get("message", "")) != self.policy_ready:
                self.policy_ready = (cond["status"], cond.get("message", ""))
                self.n.say(
                    "policy",
                    f"SelfHealingPolicy {APP}: Ready={cond['status']} ({cond.get('reason', '')})"
                    + (f": {cond['message']}" if cond.get("message") else ""),
                )

    def _rollout(self) -> None:
        obj = self.cp.admin.get_or_none(argo_cli.rollout_path(NAMESPACE, APP))
        if not obj:
            return
        self.rollout = obj
        status = obj.get("status") or {}
        phase, message = argo_cli.rollout_phase(obj)
        if not phase:
            return
        steps = ((obj["spec"].get("strategy") or {}).get("canary") or {}).get("steps") or []
        step = status.get("currentStepIndex")
        view = (phase, message, step)
        if view == self.phase:
            return
        self.phase = view
        where = f", step {step}/{len(steps)}" if step is not None and steps else ""
        weight = ((status.get("canary") or {}).get("weights") or {}).get("canary", {}).get("weight")
        weight_text = f", canary weight {weight}%" if weight is not None else ""
        self.n.say(
            "rollout",
            f"Rollout {APP}: {phase}{where}{weight_text}" + (f" - {message}" if message else ""),
            phase=phase,
            message=message,
            step=step,
        )

    def _events(self) -> None:
        found = argo_cli.events(self.cp.admin, NAMESPACE, name=APP)
        found.sort(
            key=lambda e: (
                e.get("lastTimestamp") or e.get("eventTime") or "",
                int(e["metadata"].get("resourceVersion") or 0),
            )
        )
        for event in found:
            if (event.get("source") or {}).get("component") != "selfheal" and event.get(
                "reportingComponent"
            ) != "selfheal":
                continue
            key = (event["metadata"]["uid"], event.get("count"))
            if key in self._seen_events:
                continue
            self._seen_events.add(key)
            record = {"type": event.get("type"), "reason": event["reason"], "message": event.get("message", "")}
            self.events.append(record)
            repeat = f" (x{event['count']})" if (event.get("count") or 1) > 1 else ""
            self.n.say("event", f"selfheal Event {event.get('type', 'Normal')} {event['reason']}{repeat}", **record)
            for line in _wrap(record["message"]):
                self.n.detail(line)

    def _tickets(self) -> None:
        for ticket in self.cp.admin.items(TICKETS.format(ns=NAMESPACE)):
            name = ticket["metadata"]["name"]
            self.tickets[name] = ticket
            if self.ticket_since is None:
                self.ticket_since = time.monotonic()
            summary = ticket_summary(ticket)
            view = (summary["phase"], summary["occurrences"], summary["issue"])
            if self._ticket_view.get(name) == view:
                continue
            first = name not in self._ticket_view
            self._ticket_view[name] = view
            verb = "opened" if first else "now"
            self.n.say(
                "ticket",
                f"RemediationTicket {name} {verb}: phase {summary['phase'] or '(new)'}, "
                f"occurrences {summary['occurrences']}, issue {summary['issue'] or '-'}",
                ticket=summary,
            )
            if first:
                self.n.detail(f"fingerprint {summary['fingerprint']}")
                for line in _wrap(f"verdict: {summary['verdict']}" if summary["verdict"] else "", lines=3):
                    self.n.detail(line)

    def _issues(self) -> None:
        for issue in self.gh.issues(REPO):
            view = issue_summary(issue)
            if self.issues.get(view["number"]) == view:
                continue
            first = view["number"] not in self.issues
            self.issues[view["number"]] = view
            self.n.say(
                "issue",
                f"GitHub issue {REPO}#{view['number']} {'opened' if first else 'updated'}: {view['title']!r}",
                issue=view,
            )
            self.n.detail(
                f"labels: {', '.join(view['labels']) or '-'}; "
                f"assignees: {', '.join(view['assignees']) or '-'}; state: {view['state']}"
            )


def ticket_summary(ticket: dict[str, Any]) -> dict[str, Any]:
    spec, status = ticket.get("spec") or {}, ticket.get("status") or {}
    issue = status.get("issue") or {}
    verdict = spec.get("verdict") or {}
    return {
        "name": ticket["metadata"]["name"],
        "phase": status.get("phase") or "",
        "occurrences": status.get("occurrences"),
        "fingerprint": spec.get("fingerprint", ""),
        "issue": issue.get("number"),
        "issue_note": issue.get("reason", ""),
        "verdict": (
            f"{verdict.get('verdict')} ({verdict.get('confidence')}%, {verdict.get('analyzer')}): "
            f"{verdict.get('summary', '')}"
        )
        if verdict
        else "",
    }


def issue_summary(issue: dict[str, Any]) -> dict[str, Any]:
    return {
        "number": issue["number"],
        "title": issue["title"],
        "state": issue["state"],
        "url": issue["html_url"],
        "labels": [label["name"] for label in issue.get("labels") or []],
        "assignees": [a["login"] for a in issue.get("assignees") or []],
    }


def _wrap(text: str, width: int = 100, lines: int = 6) -> list[str]:
    out = [line for raw in text.splitlines() or [""] for line in textwrap.wrap(raw, width) or [""]]
    return out[:lines] + (["..."] if len(out) > lines else [])


def _policy(gh_api_url: str, scenario: Scenario) -> dict[str, Any]:
    return {
        "apiVersion": "selfheal.dev/v1alpha1",
        "kind": "SelfHealingPolicy",
        "metadata": {"name": APP},
        "spec": {
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
        },
    }


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
    operator = OperatorProcess.with_chart_rbac(cp, namespaces=[NAMESPACE], env=FAST_OPERATOR)
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
        },
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
    verdict = "held" if summary["ok"] else "did NOT hold"
    print(f"expected   {chosen.expectation}: {verdict}")
    if not summary["ok"]:
        print(f"operator log kept in {summary['operator_log']}")
