"""What `selfheal demo` shows: a narrator with the seconds since the start, and a watcher that polls the Rollout,
selfheal's Events, the RemediationTickets (as `kubectl get rtk` shows them), the GitHub issues and pull requests."""

from __future__ import annotations

import textwrap
import time
from typing import Any

from selfheal.testing import scenarios as argo_cli

NAMESPACE = "demo"
APP = "canary-demo"
REPO = "acme/rollouts-demo"
POLICIES = "/apis/selfheal.dev/v1alpha1/namespaces/{ns}/selfhealingpolicies"
TICKETS = "/apis/selfheal.dev/v1alpha1/namespaces/{ns}/remediationtickets"


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
        self.pulls: dict[int, dict[str, Any]] = {}
        self.ticket_since: float | None = None
        self.policy_ready: tuple[str, str] | None = None

    def poll(self) -> None:
        self._policy()
        self._rollout()
        self._events()
        self._tickets()
        self._issues()
        self._pulls()

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
            table = rtk_table(self.tickets.values())
            self.n.say(
                "ticket",
                f"RemediationTicket {name} {verb}: phase {summary['phase'] or '(new)'}, "
                f"occurrences {summary['occurrences']}, issue {summary['issue'] or '-'}",
                ticket=summary,
                rtk=table,
            )
            if first:
                self.n.detail(f"fingerprint {summary['fingerprint']}")
                for line in _wrap(f"verdict: {summary['verdict']}" if summary["verdict"] else "", lines=3):
                    self.n.detail(line)
            for line in table:
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

    def _pulls(self) -> None:
        for pull in self.gh.pulls(REPO):
            view = pull_summary(pull)
            if self.pulls.get(view["number"]) == view:
                continue
            first = view["number"] not in self.pulls
            self.pulls[view["number"]] = view
            state = "merged" if view["merged"] else "a draft" if view["draft"] else view["state"]
            self.n.say(
                "pull",
                f"GitHub pull request {REPO}#{view['number']} by {view['author']} "
                f"{'opened' if first else 'now'}: {view['title']!r} ({state})",
                pull=view,
            )
            if first:
                self.n.detail(view["body"].splitlines()[0] if view["body"] else "")


def rtk_table(tickets: Any) -> list[str]:
    """The tickets as `kubectl get remediationtickets` (`rtk`) prints them, from the CRD's printer columns."""
    rows: list[tuple[str, ...]] = [("NAME", "ROLLOUT", "REVISION", "PHASE", "ISSUE", "PR")]
    for t in tickets:
        spec, status = t.get("spec") or {}, t.get("status") or {}
        cells = (
            t["metadata"]["name"],
            spec.get("rollout"),
            spec.get("revision"),
            status.get("phase"),
            (status.get("issue") or {}).get("number"),
            status.get("pullRequest"),
        )
        rows.append(tuple("" if c is None else str(c) for c in cells))
    widths = [max(len(r[i]) for r in rows) + 3 for i in range(len(rows[0]))]
    return ["$ kubectl get rtk"] + ["".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def pull_summary(pull: dict[str, Any]) -> dict[str, Any]:
    return {
        "number": pull["number"],
        "title": pull["title"],
        "state": pull["state"],
        "draft": bool(pull.get("draft")),
        "merged": bool(pull.get("merged_at")),
        "author": (pull.get("user") or {}).get("login", ""),
        "body": pull.get("body") or "",
    }


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
