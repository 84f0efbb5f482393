"""Log formats of the labelled corpus: how each kind of software writes a request or an event."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

START = datetime(2026, 3, 9, 14, 0, 0, tzinfo=UTC)


@dataclass
class Request:
    method: str
    path: str
    status: int
    latency: float  # seconds
    size: int
    ip: str
    agent: str
    request_id: str
    user: str


@dataclass
class Event:
    level: str  # debug, info, warn, error, fatal
    message: str
    fields: dict[str, object] = field(default_factory=dict)
    logger: str = "main"


@dataclass
class App:
    """One piece of software: its routes, what it logs between requests, how it crashes, and its format."""

    name: str
    kind: str  # web, worker, daemon, database, queue
    routes: list[tuple[str, str]]
    chatter: list[tuple[float, Callable[[random.Random], Event]]]
    errors: list[tuple[float, Callable[[random.Random], Event]]]
    new_error: Callable[[random.Random], Event]
    exception: Callable[[random.Random, datetime], list[str]]
    startup: list[Event]
    fatal: Event
    render_request: Callable[[Request, datetime, random.Random], str] | None
    render_event: Callable[[Event, datetime, random.Random], str]
    base_latency: float = 0.05


def rid(rng: random.Random, n: int = 16) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def ip(rng: random.Random) -> str:
    return f"10.{rng.randint(0, 3)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"


USERS = [
    f"{a}{b}"
    for a in ("ana", "ben", "chen", "dara", "eli", "fay", "gus", "hana", "ivo", "jun")
    for b in ("", "k", "m", "r", "s")
]
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
    "okhttp/4.12.0",
    "curl/8.5.0",
    "Go-http-client/2.0",
    "kube-probe/1.30",
]


def make_request(app: App, rng: random.Random, *, latency_factor: float = 1.0) -> Request:
    method, path = rng.choice(app.routes)
    path = path.replace("{id}", str(rng.randint(1, 99999))).replace("{sku}", f"SKU-{rng.randint(1000, 9999)}")
    latency = app.base_latency * math.exp(rng.gauss(0, 0.45)) * latency_factor
    status = 200 if method == "GET" else rng.choice([200, 201])
    if rng.random() < 0.02:
        status = rng.choice([404, 400, 401])
    if rng.random() < 0.003:
        status = 500
    return Request(
        method, path, status, latency, rng.randint(120, 48000), ip(rng), rng.choice(AGENTS), rid(rng), rng.choice(USERS)
    )


# --- formats ---------------------------------------------------------------------------------------


def iso(t: datetime, ms: bool = True) -> str:
    return t.isoformat(timespec="milliseconds" if ms else "seconds").replace("+00:00", "Z")


def nginx_combined(r: Request, t: datetime, rng: random.Random) -> str:
    ts = t.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'{r.ip} - - [{ts}] "{r.method} {r.path} HTTP/1.1" {r.status} {r.size} "-" "{r.agent}" {r.latency:.3f}'


def apache_common(r: Request, t: datetime, rng: random.Random) -> str:
    ts = t.strftime("%d/%b/%Y:%H:%M:%S +0000")
    user = r.user if rng.random() < 0.5 else "-"
    return f'{r.ip} - {user} [{ts}] "{r.method} {r.path} HTTP/1.1" {r.status} {r.size} {int(r.latency * 1e6)}'


def logfmt_event(e: Event, t: datetime, rng: random.Random) -> str:
    parts = [f"time={iso(t)}", f"level={e.level}", f'msg="{e.message}"']
    parts += [f"{k}={v}" for k, v in e.fields.items()]
    return " ".join(parts)


def logfmt_request(r: Request, t: datetime, rng: random.Random) -> str:
    return logfmt_event(
        Event(
            "info" if r.status < 500 else "error",
            "request handled",
            {
                "method": r.method,
                "path": r.path,
                "status": r.status,
                "duration": f"{r.latency * 1000:.1f}ms",
                "request_id": r.request_id,
            },
        ),
        t,
        rng,
    )


def zap_event(e: Event, t: datetime, rng: random.Random) -> str:
    body: dict[str, object] = {
        "level": e.level,
        "ts": round(t.timestamp(), 3),
        "caller": f"{e.logger}.go:{rng.randint(20, 400)}",
        "msg": e.message,
    }
    body.update(e.fields)
    return json.dumps(body)


def zap_request(r: Request, t: datetime, rng: random.Random) -> str:
    return zap_event(
        Event(
            "info" if r.status < 500 else "error",
            "request",
            {
                "method": r.method,
                "path": r.path,
                "status": r.status,
                "latency": round(r.latency, 6),
                "request_id": r.request_id,
            },
            "server",
        ),
        t,
        rng,
    )


PINO_LEVELS = {"debug": 20, "info": 30, "warn": 40, "error": 50, "fatal": 60}


def pino_event(e: Event, t: datetime, rng: random.Random) -> str:
    body: dict[str, object] = {
        "level": PINO_LEVELS[e.level],
        "time": int(t.timestamp() * 1000),
        "pid": 1,
        "hostname": "cart-7f9c6d5b8-x2k4p",
    }
    body.update(e.fields)
    body["msg"] = e.message
    return json.dumps(body)


def pino_request(r: Request, t: datetime, rng: random.Random) -> str:
    return pino_event(
        Event(
            "info" if r.status < 500 else "error",
            "request completed",
            {
                "req": {"id": r.request_id, "method": r.method, "url": r.path},
                "res": {"statusCode": r.status},
                "responseTime": int(r.latency * 1000),
            },
        ),
        t,
        rng,
    )


def bunyan_event(e: Event, t: datetime, rng: random.Random) -> str:
    body: dict[str, object] = {
        "name": "search",
        "hostname": "search-5c8d-qq2",
        "pid": 7,
        "level": PINO_LEVELS[e.level],
        "msg": e.message,
        "time": iso(t),
        "v": 0,
    }
    body.update(e.fields)
    return json.dumps(body)


def bunyan_request(r: Request, t: datetime, rng: random.Random) -> str:
    return bunyan_event(
        Event(
            "info" if r.status < 500 else "error",
            "handled request",
            {
                "req_id": r.request_id,
                "route": r.path,
                "method": r.method,
                "statusCode": r.status,
                "latency": int(r.latency * 1000),
            },
        ),
        t,
        rng,
    )


def python_event(e: Event, t: datetime, rng: random.Random) -> str:
    level = {"warn": "WARNING", "fatal": "CRITICAL"}.get(e.level, e.level.upper())
    extra = " ".join(f"{k}={v}" for k, v in e.fields.items())
    return f"{t.strftime('%Y-%m-%d %H:%M:%S')},{t.microsecond // 1000:03d} {level} [{e.logger}] {e.message}" + (
        f" {extra}" if extra else ""
    )


def python_request(r: Request, t: datetime, rng: random.Random) -> str:
    return (
        python_event(
            Event(
                "info" if r.status < 500 else "error",
                f'"{r.method} {r.path} HTTP/1.1" {r.status} {r.size}',
                {},
                "django.server",
            ),
            t,
            rng,
        )
        + f" in {r.latency * 1000:.0f}ms"
    )


def spring_event(e: Event, t: datetime, rng: random.Random) -> str:
    level = {"warn": "WARN", "fatal": "ERROR"}.get(e.level, e.level.upper())
    extra = " ".join(f"{k}={v}" for k, v in e.fields.items())
    thread = f"http-nio-8080-exec-{rng.randint(1, 10)}"
    return (
        f"{t.strftime('%Y-%m-%d %H:%M:%S')}.{t.microsecond // 1000:03d} {level:>5} 1 --- [{thread}] {e.logger:<40} : {e.message}"
        + (f" {extra}" if extra else "")
    )


def spring_request(r: Request, t: datetime, rng: random.Random) -> str:
    return spring_event(
        Event(
            "info" if r.status < 500 else "error",
            f"{r.method} {r.path} -> {r.status} in {int(r.latency * 1000)} ms",
            {},
            "c.e.billing.web.AccessLogFilter",
        ),
        t,
        rng,
    )


def dotnet_event(e: Event, t: datetime, rng: random.Random) -> str:
    level = {"debug": "dbug", "info": "info", "warn": "warn", "error": "fail", "fatal": "crit"}[e.level]
    extra = " ".join(f"{k}={v}" for k, v in e.fields.items())
    return f"{level}: {e.logger}[{rng.choice([0, 1, 14])}]\n      {e.message}" + (f" {extra}" if extra else "")


def dotnet_request(r: Request, t: datetime, rng: random.Random) -> str:
    return dotnet_event(
        Event(
            "info" if r.status < 500 else "error",
            f"Request finished HTTP/1.1 {r.method} http://catalog{r.path} - {r.status} {r.size} application/json {r.latency * 1000:.4f}ms",
            {},
            "Microsoft.AspNetCore.Hosting.Diagnostics",
        ),
        t,
        rng,
    )


def rails_event(e: Event, t: datetime, rng: random.Random) -> str:
    letter = e.level[0].upper()
    level = {"warn": "WARN", "fatal": "FATAL"}.get(e.level, e.level.upper())
    extra = " ".join(f"{k}={v}" for k, v in e.fields.items())
    return (
        f"{letter}, [{t.strftime('%Y-%m-%dT%H:%M:%S')}.{t.microsecond:06d} #{rng.choice([12, 13, 14])}] {level:>5} -- : [{rid(rng, 8)}-{rid(rng, 4)}] {e.message}"
        + (f" {extra}" if extra else "")
    )


def rails_request(r: Request, t: datetime, rng: random.Random) -> str:
    word = {
        200: "OK",
        201: "Created",
        400: "Bad Request",
        401: "Unauthorized",
        404: "Not Found",
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Unavailable",
    }.get(r.status, "OK")
    return rails_event(
        Event(
            "info" if r.status < 500 else "error",
            f"Completed {r.status} {word} in {int(r.latency * 1000)}ms (Views: {rng.randint(1, 30)}.{rng.randint(0, 9)}ms | ActiveRecord: {rng.randint(1, 80)}.{rng.randint(0, 9)}ms)",
        ),
        t,
        rng,
    )


def klog_event(e: Event, t: datetime, rng: random.Random) -> str:
    letter = {"debug": "I", "info": "I", "warn": "W", "error": "E", "fatal": "F"}[e.level]
    extra = " ".join(f'{k}="{v}"' for k, v in e.fields.items())
    return (
        f'{letter}{t.strftime("%m%d %H:%M:%S")}.{t.microsecond:06d}       1 {e.logger}.go:{rng.randint(40, 900)}] "{e.message}"'
        + (f" {extra}" if extra else "")
    )


def syslog3164_event(e: Event, t: datetime, rng: random.Random) -> str:
    proc = e.logger
    return f"{t.strftime('%b %d %H:%M:%S').replace(' 0', '  ', 1) if t.day < 10 else t.strftime('%b %d %H:%M:%S')} node-7 {proc}[{rng.randint(300, 9000)}]: {e.message}"


SYSLOG_SEVERITY = {"debug": 7, "info": 6, "warn": 4, "error": 3, "fatal": 2}


def syslog5424_event(e: Event, t: datetime, rng: random.Random) -> str:
    pri = 8 * 1 + SYSLOG_SEVERITY[e.level]
    sd = "[meta " + " ".join(f'{k}="{v}"' for k, v in e.fields.items()) + "]" if e.fields else "-"
    return f"<{pri}>1 {iso(t)} mq-2 {e.logger} {rng.randint(100, 999)} - {sd} {e.message}"


def ecs_event(e: Event, t: datetime, rng: random.Random) -> str:
    body: dict[str, object] = {
        "@timestamp": iso(t),
        "log.level": e.level,
        "message": e.message,
        "service.name": "ledger",
        "ecs.version": "8.11.0",
    }
    body.update(e.fields)
    return json.dumps(body)


def ecs_request(r: Request, t: datetime, rng: random.Random) -> str:
    return ecs_event(
        Event(
            "info" if r.status < 500 else "error",
            "request",
            {
                "http": {"request": {"method": r.method}, "response": {"status_code": r.status}},
                "url": {"path": r.path},
                "event": {"duration": int(r.latency * 1e9)},
                "trace.id": rid(rng, 32),
            },
        ),
        t,
        rng,
    )


def postgres_event(e: Event, t: datetime, rng: random.Random) -> str:
    level = {"debug": "DEBUG", "info": "LOG", "warn": "WARNING", "error": "ERROR", "fatal": "FATAL"}[e.level]
    return f"{t.strftime('%Y-%m-%d %H:%M:%S')}.{t.microsecond // 1000:03d} UTC [{rng.randint(100, 9999)}] {level}:  {e.message}"


def redis_event(e: Event, t: datetime, rng: random.Random) -> str:
    mark = {"debug": ".", "info": "*", "warn": "#", "error": "#", "fatal": "#"}[e.level]
    return f"1:M {t.strftime('%d %b %Y %H:%M:%S')}.{t.microsecond // 1000:03d} {mark} {e.message}"


def kafka_event(e: Event, t: datetime, rng: random.Random) -> str:
    level = {"warn": "WARN", "fatal": "ERROR"}.get(e.level, e.level.upper())
    return f"[{t.strftime('%Y-%m-%d %H:%M:%S')},{t.microsecond // 1000:03d}] {level} {e.message} ({e.logger})"


def php_event(e: Event, t: datetime, rng: random.Random) -> str:
    level = {"debug": "DEBUG", "info": "INFO", "warn": "WARNING", "error": "ERROR", "fatal": "CRITICAL"}[e.level]
    ctx = json.dumps(e.fields) if e.fields else "[]"
    return f"[{t.strftime('%Y-%m-%dT%H:%M:%S')}.{t.microsecond:06d}+00:00] app.{level}: {e.message} {ctx} []"


def php_request(r: Request, t: datetime, rng: random.Random) -> str:
    return (
        f'{r.ip} -  {t.strftime("%d/%b/%Y:%H:%M:%S +0000")} "{r.method} {r.path}" {r.status} - {r.latency * 1000:.3f}ms'
    )


def elixir_event(e: Event, t: datetime, rng: random.Random) -> str:
    extra = " ".join(f"{k}={v}" for k, v in e.fields.items())
    return f"{t.strftime('%H:%M:%S')}.{t.microsecond // 1000:03d} request_id={rid(rng, 20)} [{e.level}] {e.message}" + (
        f" {extra}" if extra else ""
    )


def elixir_request(r: Request, t: datetime, rng: random.Random) -> str:
    return elixir_event(
        Event("info" if r.status < 500 else "error", f"Sent {r.status} in {int(r.latency * 1000)}ms"), t, rng
    )
