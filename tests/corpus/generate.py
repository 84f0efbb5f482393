"""Writes the labelled corpus: canary and stable logs of real kinds of software, each with its expected verdict.

Run: python tests/corpus/generate.py  (rewrites tests/corpus/cases/; deterministic)
"""

from __future__ import annotations

import json
import random
import re
import shutil
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from catalogue import APPS
from formats import START, App, Event, Request, make_request

CASES = Path(__file__).resolve().parent / "cases"
STABLE_LINES = 500


@dataclass
class Scenario:
    """How the canary differs from the stable (all defaults: it does not)."""

    name: str
    expected: str
    what: str
    lines: float = 0.5  # canary volume relative to the stable
    status_burst: float = 0.0
    latency_factor: float = 1.0
    error_factor: float = 1.0
    new_errors: int = 0
    exceptions: int = 0
    crash_loop: bool = False
    chatter: str = ""
    extra_field: bool = False
    reorder: bool = False
    ansi: bool = False
    seed_offset: int = 0


BAD = {
    "5xx-burst": Scenario("5xx-burst", "unhealthy", "about 12 % of canary requests answer 502/503", status_burst=0.12),
    "latency-regression": Scenario(
        "latency-regression", "unhealthy", "every canary request is about 2.6 times slower", latency_factor=2.6
    ),
    "crash-loop": Scenario(
        "crash-loop", "unhealthy", "the canary starts, logs a fatal error and exits, three times", crash_loop=True
    ),
    "rare-new-error": Scenario(
        "rare-new-error", "unhealthy", "a new error the stable never logs, 6 times", new_errors=6
    ),
    "new-exception": Scenario(
        "new-exception", "unhealthy", "a new exception with its stack trace, 8 times", exceptions=8
    ),
    "error-increase": Scenario(
        "error-increase", "unhealthy", "a known error, sixteen times as often", error_factor=16.0
    ),
}
GOOD = {
    "same-traffic": Scenario(
        "same-traffic", "healthy", "the same software on the same traffic, another sample", seed_offset=7
    ),
    "new-info-chatter": Scenario(
        "new-info-chatter", "healthy", "the canary logs a new informational message", chatter="feature flag"
    ),
    "format-change": Scenario(
        "format-change", "healthy", "the canary adds a version field to every line", extra_field=True
    ),
    "reordered-fields": Scenario(
        "reordered-fields", "healthy", "the canary writes its JSON fields in another order", reorder=True
    ),
    "ansi-colours": Scenario("ansi-colours", "healthy", "the canary colours its levels for a terminal", ansi=True),
    "fewer-errors": Scenario("fewer-errors", "healthy", "the canary fixes most of a known error", error_factor=0.2),
    "faster": Scenario("faster", "healthy", "the canary answers faster", latency_factor=0.7),
    "less-traffic": Scenario("less-traffic", "healthy", "the canary gets a small share of the traffic", lines=0.15),
}

# (app, scenario) pairs: every app has bad and good canaries; JSON apps get reordered fields, text apps colours.
PLAN = {
    "nginx-ingress": ["5xx-burst", "latency-regression", "crash-loop", "same-traffic", "less-traffic"],
    "apache-httpd": ["5xx-burst", "same-traffic", "faster"],
    "checkout-go": ["new-exception", "crash-loop", "error-increase", "same-traffic", "format-change", "ansi-colours"],
    "payments-zap": ["latency-regression", "rare-new-error", "reordered-fields", "new-info-chatter"],
    "inventory-slog": ["rare-new-error", "crash-loop", "same-traffic", "format-change"],
    "cart-node": ["new-exception", "5xx-burst", "reordered-fields", "same-traffic"],
    "search-node": ["crash-loop", "rare-new-error", "new-info-chatter"],
    "orders-django": ["new-exception", "latency-regression", "same-traffic", "ansi-colours", "fewer-errors"],
    "billing-spring": ["new-exception", "crash-loop", "same-traffic", "new-info-chatter"],
    "catalog-dotnet": ["new-exception", "5xx-burst", "same-traffic"],
    "storefront-rails": ["new-exception", "crash-loop", "same-traffic", "less-traffic"],
    "backup-operator": ["new-exception", "error-increase", "same-traffic", "new-info-chatter"],
    "mail-relay": ["new-exception", "rare-new-error", "same-traffic"],
    "queue-consumer": ["crash-loop", "rare-new-error", "same-traffic"],
    "ledger-ecs": ["5xx-burst", "rare-new-error", "reordered-fields", "same-traffic"],
    "postgres": ["crash-loop", "new-exception", "rare-new-error", "same-traffic"],
    "redis": ["new-exception", "crash-loop", "same-traffic"],
    "kafka-broker": ["new-exception", "rare-new-error", "same-traffic"],
    "shop-php": ["new-exception", "crash-loop", "same-traffic"],
    "cart-phoenix": ["new-exception", "crash-loop", "same-traffic", "ansi-colours"],
}

_ANSI_LEVEL = re.compile(r"\b(INFO|WARN|WARNING|ERROR|DEBUG|FATAL|info|warn|error|debug|fail|dbug)\b")
_COLOURS = {
    "INFO": 32,
    "info": 32,
    "WARN": 33,
    "WARNING": 33,
    "warn": 33,
    "ERROR": 31,
    "error": 31,
    "fail": 31,
    "DEBUG": 36,
    "debug": 36,
    "dbug": 36,
    "FATAL": 35,
}


def _colour(line: str) -> str:
    return _ANSI_LEVEL.sub(lambda m: f"\x1b[{_COLOURS.get(m.group(1), 37)}m{m.group(1)}\x1b[0m", line, count=1)


def _with_field(line: str) -> str:
    if line.startswith("{"):
        body = json.loads(line)
        body["version"] = "2.5.0"
        return json.dumps(body)
    return f"{line} version=2.5.0"


def _reordered(line: str, rng: random.Random) -> str:
    if not line.startswith("{"):
        return line
    body = json.loads(line)
    keys = list(body)
    rng.shuffle(keys)
    return json.dumps({k: body[k] for k in keys})


def _pick(rng: random.Random, weighted: list[tuple[float, object]]) -> object | None:
    r = rng.random()
    for weight, item in weighted:
        if r < weight:
            return item
        r -= weight
    return None


def _chatter_event(rng: random.Random) -> Event:
    return Event(
        "info",
        "feature flag checkout_v2 evaluated",
        {"enabled": rng.choice(["true", "false"]), "user": f"u{rng.randint(1, 5000)}"},
    )


def write_log(app: App, sc: Scenario | None, rng: random.Random, n: int) -> list[str]:
    """``n`` lines of ``app`` on the stable (``sc`` None) or canary side."""
    lines: list[str] = []
    t = START
    if sc is not None and sc.crash_loop:
        for attempt in range(3):
            for e in app.startup:
                lines.append(app.render_event(e, t, rng))
                t += timedelta(milliseconds=rng.randint(20, 300))
            lines.append(app.render_event(app.fatal, t, rng))
            t += timedelta(seconds=10 * 2**attempt)
        return lines
    for e in app.startup:
        lines.append(app.render_event(e, t, rng))
    error_factor = sc.error_factor if sc else 1.0
    latency_factor = sc.latency_factor if sc else 1.0
    new_at = set(rng.sample(range(n), sc.new_errors)) if sc and sc.new_errors else set()
    exc_at = set(rng.sample(range(n), sc.exceptions)) if sc and sc.exceptions else set()
    while len(lines) < n:
        t += timedelta(milliseconds=rng.randint(5, 120))
        i = len(lines)
        if i in exc_at:
            lines.extend(app.exception(rng, t))
            continue
        if i in new_at:
            lines.append(app.render_event(app.new_error(rng), t, rng))
            continue
        error = _pick(rng, [(w * error_factor, f) for w, f in app.errors])
        if error is not None:
            lines.append(app.render_event(error(rng), t, rng))  # type: ignore[operator]
            continue
        if sc is not None and sc.chatter and rng.random() < 0.06:
            lines.append(app.render_event(_chatter_event(rng), t, rng))
            continue
        if app.render_request is not None and rng.random() < 0.8:
            req: Request = make_request(app, rng, latency_factor=latency_factor)
            if sc is not None and sc.status_burst and rng.random() < sc.status_burst:
                req.status = rng.choice([502, 503, 502])
            lines.append(app.render_request(req, t, rng))
            continue
        chatter = _pick(rng, app.chatter)
        if chatter is not None:
            lines.append(app.render_event(chatter(rng), t, rng))  # type: ignore[operator]
        elif app.render_request is None and app.chatter:
            lines.append(app.render_event(app.chatter[0][1](rng), t, rng))
    if sc is not None:
        if sc.extra_field:
            lines = [_with_field(line) if line and not line[0].isspace() else line for line in lines]
        if sc.reorder:
            lines = [_reordered(line, rng) for line in lines]
        if sc.ansi:
            lines = [_colour(line) for line in lines]
    return lines


def cases() -> list[tuple[str, App, Scenario]]:
    out = []
    for app_name, scenario_names in PLAN.items():
        for name in scenario_names:
            sc = BAD.get(name) or GOOD[name]
            out.append((f"{app_name}--{name}", APPS[app_name], sc))
    return out


def generate(root: Path = CASES, seed_base: int = 1000) -> list[str]:
    if root.exists():
        shutil.rmtree(root)
    names = []
    for index, (case, app, sc) in enumerate(cases()):
        seed = seed_base + index
        stable = write_log(app, None, random.Random(seed), STABLE_LINES)
        canary = write_log(app, sc, random.Random(seed + 500 + sc.seed_offset), int(STABLE_LINES * sc.lines))
        folder = root / case
        folder.mkdir(parents=True)
        (folder / "stable.log").write_text("\n".join(stable) + "\n")
        (folder / "canary.log").write_text("\n".join(canary) + "\n")
        (folder / "expected.json").write_text(
            json.dumps(
                {
                    "verdict": sc.expected,
                    "software": app.name,
                    "kind": app.kind,
                    "scenario": sc.name,
                    "canary": sc.what,
                },
                indent=2,
            )
            + "\n"
        )
        names.append(case)
    return names


if __name__ == "__main__":
    written = generate()
    print(f"{len(written)} cases in {CASES}")
