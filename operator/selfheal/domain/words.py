"""What selfheal says to people: Event messages, log lines and short labels, each a sentence a person would write."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from selfheal.domain.verdict import VerdictKind

# The apiserver keeps at most this much of an Event message.
EVENT_MAX = 1024
# An Event keeps at least this much of the evidence, however long the rest is.
MIN_EVIDENCE = 200
# A headline (issue title, printer column) is at most this long.
HEADLINE_MAX = 90
SHORT_FINGERPRINT = 12

# --- numbers --------------------------------------------------------------------------------------

# A number with more decimals than anyone reads: 0.15591397849462366, 12.000000001, 1.5e-07.
_LONG_NUMBER = re.compile(
    r"(?<![\w.:/])-?\d+\.\d{4,}(?:[eE][-+]?\d+)?(?![\w:]|\.\w)"
    r"|(?<![\w.:/])-?\d+(?:\.\d+)?[eE][-+]?\d+(?![\w:]|\.\w)"
)


def number(value: float) -> str:
    """A measured value as people write it: three significant digits, no exponent for everyday sizes."""
    if value != value:  # NaN
        return "NaN"
    magnitude = abs(value)
    if magnitude >= 1000 or value == int(value):
        return f"{value:.0f}"
    if magnitude >= 0.001:
        text = f"{value:.3g}"
        return text if "e" not in text else f"{value:.0f}"
    return f"{value:.2g}"


def plain_numbers(text: str) -> str:
    """``text`` with every long float shortened to three significant digits."""
    return _LONG_NUMBER.sub(lambda m: number(float(m.group(0))), text)


# --- one log line, as a headline --------------------------------------------------------------------

_MESSAGE_KEYS = ("msg", "message", "error", "err", "exception", "log", "text", "event", "@message")
_TIMESTAMP = (
    r"\d{4}-\d{2}-\d{2}(?:[T_ ]\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2}| ?UTC)?"
    r"|\d{1,2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|\d{4}/\d{2}/\d{2}|\d{2}/[A-Z][a-z]{2}/\d{4}(?::\d{2}){3}(?: [+-]\d{4})?"
    r"|(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),? |(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2}"
    r"|1\d{9}(?:\.\d{1,9})?|1\d{12}"
)
# Levels in capitals, or in lower case inside brackets; "panic:" and "error:" are kept, they say what happened.
_LEVEL = r"TRACE|DEBUG|INFO|NOTICE|WARN(?:ING)?|ERROR|ERR|FATAL|CRIT(?:ICAL)?|PANIC|SEVERE|EMERG|ALERT"
_LOWER_LEVEL = r"trace|debug|info|notice|warn(?:ing)?|error|err|fatal|crit(?:ical)?|panic"
# What a log line starts with before the words that say what happened, one kind of prefix a line.
_PREFIXES = (
    r"<\d{1,3}>",  # syslog priority
    r"\d+:[XCSM] \d{1,2} [A-Z][a-z]{2} \d{4} [\d:.]+ [#*.-] ",  # redis
    r"[DIWEFAU], \[[^\]]{0,60}\] +\w+ -- [^:]{0,60}: ",  # ruby Logger
    r"\S+ \S+ \S+ \[\d{2}/[A-Z][a-z]{2}/\d{4}[^\]]{0,30}\]",  # access logs: host, ident, user, time
    rf"\[(?:{_TIMESTAMP})[^\]]{{0,40}}\]",
    rf"(?:{_TIMESTAMP})",
    r"[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d+ +\d+ [\w./-]+:\d+\]",  # klog
    rf"[\[(<]?(?:{_LEVEL})[\])>]?:?(?=\s)",
    rf"[\[(<](?:{_LOWER_LEVEL})[\])>]:?(?=\s)",
    r"(?:trce|dbug|info|warn|fail|crit):(?=\s)",  # .NET console
    r"\S{1,160}\s{2,}:(?=\s)",  # a padded logger name (Spring Boot)
    r"\d+#\d+: (?:\*\d+ )?",  # nginx pid#tid and connection
    r"\[[\w .:/-]{1,40}\]",  # thread, request id
    r"\d{1,7}(?=\s)",  # process id
    r"[\w.$]{1,80} - ",  # logger name and dash
    r"[\w.$]{1,80}: (?=\w+:)",
    r"(?:level|lvl|severity|ts|time|timestamp|caller|logger)=(?:\"[^\"]*\"|\S+)",
)
_PREFIX = re.compile("^(?:" + "|".join(_PREFIXES) + r")[\s,|:-]*")
_LOGFMT_MESSAGE = re.compile(r"(?:^|\s)(?:msg|message|error|err)=(\"(?:[^\"\\]|\\.)*\"|\S+)")
_PY_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning)\b.*$")
_MASK_WORDS = (
    ("<IP>:<PORT>", "an address"),
    ("<IP>", "an address"),
    ("<PORT>", "a port"),
    ("<EMAIL>", "an email address"),
    ("<URL>", "a URL"),
    ("<UUID>", "an id"),
    ("<HEX>", "an id"),
    ("<ID>", "an id"),
    ("<LONG>", "a value"),
    ("<DUR>", "a while"),
    ("<NUM>", "N"),
    ("<*>", "…"),
)
_TS_MASK = re.compile(r"<TS>[\s,]*")
_ANY_MASK = re.compile(r"<(?:IP|PORT|NUM|TS|DUR|HEX|UUID|URL|EMAIL|ID|LONG|\*)>")


def _json_message(line: str) -> str | None:
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    for key in _MESSAGE_KEYS:
        value = record.get(key)
        if isinstance(value, dict):
            value = value.get("message") or value.get("msg")
        if isinstance(value, str) and value.strip():
            extra = record.get("error") or record.get("err")
            if key not in ("error", "err") and isinstance(extra, str) and extra.strip() and extra not in value:
                return f"{value.strip()}: {extra.strip()}"
            return value.strip()
    return None


def _strip_prefix(line: str) -> str:
    for _ in range(12):
        stripped = _PREFIX.sub("", line, count=1)
        if stripped == line or not stripped.strip():
            break
        line = stripped
    return line


def readable_line(text: str) -> str:
    """What one log record says, without its timestamp, level or logger: the message of a JSON or
    logfmt record, the exception of a Python traceback, the first line of anything else."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    first = lines[0]
    if first.startswith("Traceback (most recent call last)"):
        last = next((line for line in reversed(lines) if _PY_EXCEPTION.match(line)), "")
        return last or first
    message = _json_message(first)
    if message is not None:
        return " ".join(message.split("\n", 1)[0].split())
    logfmt = _LOGFMT_MESSAGE.search(first)
    if logfmt and re.search(r"(?:^|\s)(?:level|lvl|ts|time)=", first):
        found = [v[1:-1].replace('\\"', '"') if v.startswith('"') else v for v in _LOGFMT_MESSAGE.findall(first)]
        return ": ".join(dict.fromkeys(found))
    return " ".join(_strip_prefix(first).split()) or first


def humanised_template(template: str) -> str:
    """A masked template with words where the masks were (``<IP>:<PORT>`` is "an address")."""
    text = _TS_MASK.sub("", template)
    for mask, word in _MASK_WORDS:
        text = text.replace(mask, word)
    return _ANY_MASK.sub("…", text)


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a word where one is near, ending in an ellipsis when cut."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


def headline(template: str, examples: list[str], limit: int = HEADLINE_MAX) -> str:
    """One log template as a short line people read: a redacted example without its timestamp and
    level, or the template with words for its masks when there is no example."""
    for example in examples:
        line = plain_numbers(readable_line(example))
        if line:
            return clip(line, limit)
    return clip(readable_line(humanised_template(template)), limit)


# --- what selfheal did, as Events ---------------------------------------------------------------


@dataclass(frozen=True)
class EventText:
    """One Event: its reason (CamelCase), type (Normal or Warning) and message."""

    reason: str
    type: str
    message: str


VERDICT_REASONS = {
    VerdictKind.UNHEALTHY: "CanaryUnhealthy",
    VerdictKind.HEALTHY: "CanaryHealthy",
    VerdictKind.INCONCLUSIVE: "CanaryInconclusive",
}
_TRIGGER_WORDS = {
    "analysisFailed": "after its analysis failed",
    "analysisInconclusive": "after its analysis was inconclusive",
    "indefinitePause": "at a pause that waits for a promotion",
    "logWatch": "while selfheal watched its logs",
    "inline": "when Argo's analysis asked through its web metric",
}
_ANALYZER_WORDS = {
    "statistical": "by the statistics",
    "llm": "by the LLM",
    "a2a": "by the A2A agent",
    "combined": "by the statistics and the analyzer",
}
_DONE = {"abort": "aborted it", "pause": "paused it", "promote": "promoted it", "none": "left it as it is"}
_SUMMARY_OPENINGS = re.compile(
    r"^(?:Canary is unhealthy|Canary looks healthy|Cannot judge the canary|Canary is not shown healthy)[:,]?\s*",
    re.IGNORECASE,
)
_OUTCOME = re.compile(r"(?:^|; )(\w+) \([^)]*\) -> (\w+) by ([\w=.-]+)\.(?P<dry> Dry run: nothing is done\.)?$")


def action_words(taken: str) -> str:
    """What selfheal did to the Rollout, as the end of a sentence ("aborted it")."""
    if taken.startswith("dry-run:"):
        return f"would have {_DONE.get(taken.split(':', 1)[1], 'acted on it')} (dry run: nothing was done)"
    if taken.startswith("skipped: already "):
        return f"found it {taken.removeprefix('skipped: ')}"
    if taken.startswith("skipped:"):
        return f"did nothing ({taken.split(':', 1)[1].strip()})"
    if taken.startswith("answered "):  # the verdict endpoint's answer to Argo's web metric
        return taken
    return _DONE.get(taken, f"did {taken}")


def last_action(taken: str) -> str:
    """What the ticket's Last Action column shows for what was done: ``abort``, ``dry-run:abort``,
    ``already aborted`` (Argo was first), ``skipped``; empty when the action was already recorded."""
    if taken == "skipped: already done":
        return ""
    if taken.startswith("skipped: already "):
        return taken.removeprefix("skipped: ")
    return "skipped" if taken.startswith("skipped") else taken


def _evidence(summary: str) -> str:
    """The verdict's summary without its opening words (the Event says the verdict already)."""
    body = _SUMMARY_OPENINGS.sub("", " ".join(summary.split()))
    # An analyzer that read masked templates may quote their masks back: words instead.
    body = plain_numbers(humanised_template(body)).rstrip(".")
    return body[:1].upper() + body[1:] if body else ""


def _rule(reason: str) -> tuple[str, str]:
    """The decision's notes (why) and the policy rule that chose the action."""
    m = _OUTCOME.search(reason)
    if m is None:
        return plain_numbers(reason).rstrip("."), ""
    notes = reason[: m.start()].strip("; ").rstrip(".")
    return plain_numbers(notes), m.group(3)


def verdict_event(
    *,
    verdict: VerdictKind,
    confidence: int,
    analyzer: str,
    summary: str,
    revision: str,
    trigger: str,
    taken: str,
    decision_reason: str,
    analyzer_error: str | None = None,
) -> EventText:
    """The Event on a Rollout that says what selfheal judged and did, and why."""
    when = _TRIGGER_WORDS.get(trigger, f"on {trigger}")
    by = _ANALYZER_WORDS.get(analyzer, f"by {analyzer}")
    which = f"revision {revision}" if revision else "the canary"
    if verdict == VerdictKind.UNHEALTHY:
        opening = f"Canary of {which} is unhealthy ({confidence} % sure {by}) {when}"
    elif verdict == VerdictKind.HEALTHY:
        opening = f"Canary of {which} is healthy ({confidence} % sure {by}) {when}"
    else:
        opening = f"Could not tell whether the canary of {which} is healthy ({confidence} % confidence {by}) {when}"
    notes, rule = _rule(decision_reason)
    by_rule = f" by the policy's {rule}" if rule and not taken.startswith("skipped") else ""
    head = f"{opening}; selfheal {action_words(taken)}{by_rule}. "
    tail = f" {notes[:1].upper()}{notes[1:]}." if notes else ""
    if analyzer_error and analyzer_error not in notes:
        tail += f" The analyzer was unavailable: {clip(analyzer_error, 200)}."
    label = "Evidence" if verdict != VerdictKind.HEALTHY else "Seen"
    room = max(MIN_EVIDENCE, EVENT_MAX - len(head) - len(tail) - len(label) - 3)
    evidence = _evidence(summary)
    body = f"{label}: {clip(evidence, room)}." if evidence else ""
    message = clip(head + body + tail, EVENT_MAX)
    kind = "Warning" if verdict == VerdictKind.UNHEALTHY else "Normal"
    return EventText(VERDICT_REASONS[verdict], kind, message)


def budget_event(policy: str, per_hour: int, trigger: str, revision: str) -> EventText:
    """The analysis a policy's hourly budget did not allow."""
    when = _TRIGGER_WORDS.get(trigger, f"on {trigger}")
    return EventText(
        "AnalysisBudgetExhausted",
        "Warning",
        f"Canary of revision {revision or '?'} was not analyzed {when}: policy {policy} already spent its "
        f"{per_hour} analyses this hour.",
    )


def action_failed_event(action: str, revision: str, error: str) -> EventText:
    """An abort, pause or promote the apiserver refused."""
    return EventText(
        "SelfHealActionFailed",
        "Warning",
        clip(f"Could not {action} revision {revision or '?'}: {error}", EVENT_MAX),
    )


def ticket_opened_event(ticket: str, revision: str, fingerprint: str, headline: str) -> EventText:
    """A new RemediationTicket for a failing revision."""
    what = f": {headline}" if headline else ""
    return EventText(
        "RemediationTicketOpened",
        "Warning",
        clip(
            f"Opened RemediationTicket {ticket} for the failure of revision {revision or '?'}{what} "
            f"(failure fingerprint {fingerprint[:SHORT_FINGERPRINT]}, shared by every ticket of the same bug).",
            EVENT_MAX,
        ),
    )


# --- a ticket's phases ----------------------------------------------------------------------------

_PHASE_WORDS = {
    "Open": "is open; no GitHub issue yet",
    "IssueOpened": "has a GitHub issue",
    "FixProposed": "has a proposed fix",
    "FixMerged": "has a merged fix, waiting for the next rollout",
    "Verifying": "is verifying the fix on a new revision",
    "Resolved": "is resolved: the fixed revision is stable and healthy",
    "Regressed": "regressed: the fixed revision failed the same way",
    "Closed": "was closed without a merged fix",
    "Failed": "failed",
}
WARNING_PHASES = frozenset({"Regressed", "Failed", "Closed"})


def phase_event(
    ticket: str,
    rollout: str,
    phase: str,
    *,
    previous: str = "",
    issue: int | None = None,
    pull_request: int | None = None,
    revision: str = "",
) -> EventText:
    """A ticket that moved to another phase, said on the ticket and on its Rollout."""
    parts = []
    if issue:
        parts.append(f"issue #{issue}")
    if pull_request:
        parts.append(f"pull request #{pull_request}")
    if revision:
        parts.append(f"revision {revision}")
    facts = f" ({', '.join(parts)})" if parts else ""
    since = f", was {previous}" if previous else ""
    words = _PHASE_WORDS.get(phase, f"is now {phase}")
    message = f"Ticket {ticket} for Rollout {rollout} {words}{facts}{since}."
    return EventText(f"Ticket{phase}", "Warning" if phase in WARNING_PHASES else "Normal", clip(message, EVENT_MAX))


def agent_not_started_event(who: str, issue: int) -> EventText:
    """The coding agent the policy names did not take the issue."""
    return EventText(
        "AgentNotStarted",
        "Warning",
        f"The coding agent did not start: {who} does not show on issue #{issue} after the hand-over (the token "
        "must be a user token and the agent enabled for the repository).",
    )


def agent_stalled_event(issue: int, hours: int) -> EventText:
    """No pull request within the policy's patience."""
    return EventText(
        "AgentStalled", "Warning", f"No pull request for issue #{issue} after {hours} hour(s): the agent seems stuck."
    )


def notification_failed_event(phase: str, why: str) -> EventText:
    """A webhook or Slack that did not take a phase's notification (``why`` names hosts, never URLs)."""
    return EventText("NotificationFailed", "Warning", clip(f"Could not announce phase {phase}: {why}.", EVENT_MAX))


def readiness_event(policy: str, ready: bool, reason: str, message: str) -> EventText:
    """A policy that became ready, or stopped being ready, and why."""
    if ready:
        return EventText("PolicyReady", "Normal", clip(f"Policy {policy} is ready: {message}.", EVENT_MAX))
    return EventText(
        "PolicyNotReady", "Warning", clip(f"Policy {policy} is not ready ({reason}): {message}.", EVENT_MAX)
    )


# --- log lines ------------------------------------------------------------------------------------


def decision_log(
    *,
    namespace: str,
    rollout: str,
    revision: str,
    trigger: str,
    verdict: str,
    confidence: int,
    analyzer: str,
    action: str,
    reason: str,
) -> tuple[str, dict[str, Any]]:
    """One info line per decision: the message for plain logs, and the same facts as structured keys."""
    fields: dict[str, Any] = {
        "namespace": namespace,
        "rollout": rollout,
        "revision": revision,
        "trigger": trigger,
        "verdict": verdict,
        "confidence": confidence,
        "analyzer": analyzer,
        "action": action,
        "reason": reason,
    }
    message = (
        f"decided on {namespace}/{rollout} revision {revision or '?'} ({trigger}): {verdict} at {confidence} % "
        f"({analyzer}), action {action}; {reason}"
    )
    return message, fields


def github_log(step: str, *, namespace: str, ticket: str, detail: str = "", **facts: Any) -> tuple[str, dict[str, Any]]:
    """One info line per GitHub step of a ticket (issue opened or found, agent asked, pull request seen,
    merged, verified, reopened)."""
    fields: dict[str, Any] = {"namespace": namespace, "ticket": ticket, "step": step, **facts}
    extra = f": {detail}" if detail else ""
    return f"ticket {namespace}/{ticket}: {step.replace('-', ' ')}{extra}", fields
