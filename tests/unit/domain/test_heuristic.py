"""The statistical verdict on the demo scenarios and on pod and metric facts."""

from __future__ import annotations

import random
import re

import pytest

from selfheal.domain.evidence import ContainerState, EventRecord, Evidence, FailedMetric, PodEvidence, PodLog, Side
from selfheal.domain.heuristic import statistical_verdict
from selfheal.domain.logdiff import diff_logs
from selfheal.domain.policy import LatencySpec
from selfheal.domain.verdict import Analyzer, Verdict, VerdictKind

COLORS = ["red", "orange", "yellow", "green", "blue", "purple"]

PANIC = """{ts} http: panic serving 10.0.0.{a}:{port}: runtime error: index out of range [0] with length 0
goroutine {g} [running]:
net/http.(*conn).serve.func1()
\t/usr/local/go/src/net/http/server.go:1868 +0xb0
panic({{0x6c2b60?, 0xc000016150?}})
\t/usr/local/go/src/runtime/panic.go:920 +0x270
main.getColor(...)
\t/go/src/app/main.go:93
main.colorHandler({{0x7a1b40, 0xc0000a2000}}, 0xc0000b4000)
\t/go/src/app/main.go:120 +0x3c5
created by net/http.(*Server).Serve in goroutine 1
\t/usr/local/go/src/net/http/server.go:3086 +0x4cc"""


def demo_log(
    n: int,
    *,
    color: str | None = None,
    seed: int = 0,
    panic_on_red: bool = False,
    error_rate: float = 0.0,
    latency: bool = False,
    extra: str = "",
    extra_rate: float = 0.0,
) -> str:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        t = f"2025/10/09 14:{i // 60 % 60:02d}:{i % 60:02d}"
        c = color or rnd.choice(COLORS)
        delay = " (2.000000s)" if latency else ""
        if extra and rnd.random() < extra_rate:
            out.append(f"{t} {extra}")
        elif panic_on_red and c == "red":
            out.append(PANIC.format(ts=t, a=rnd.randint(1, 250), port=rnd.randint(30000, 60000), g=rnd.randint(1, 999)))
        elif rnd.random() < error_rate:
            out.append(f"{t} 500 - {c}{delay}")
        else:
            out.append(f"{t} 200 - {c}{delay}")
    return "\n".join(out)


def pod(
    name: str, side: Side, log: str = "", restarts: int = 0, waiting: str = "", terminated: str = ""
) -> PodEvidence:
    return PodEvidence(
        name=name,
        side=side,
        phase="Running",
        ready=not waiting,
        containers=[
            ContainerState(
                name="app", restart_count=restarts, waiting_reason=waiting, last_terminated_reason=terminated
            )
        ],
        logs=[PodLog(pod=name, container="app", text=log)] if log else [],
    )


def judge(
    canary_log: str,
    stable_log: str,
    *,
    canary_pods: list[PodEvidence] | None = None,
    stable_pods: list[PodEvidence] | None = None,
    metrics: list[FailedMetric] | None = None,
    events: list[EventRecord] | None = None,
) -> Verdict:
    pods = (canary_pods if canary_pods is not None else [pod("demo-canary-1", Side.CANARY, canary_log)]) + (
        stable_pods if stable_pods is not None else [pod("demo-stable-1", Side.STABLE, stable_log)]
    )
    ev = Evidence(
        namespace="demo",
        rollout="canary-demo",
        canary_hash="6b7c9d8f5",
        stable_hash="5f4d8c7b6",
        pods=pods,
        failed_metrics=metrics or [],
        events=events or [],
    )
    return statistical_verdict(ev, diff_logs(ev.log_text(Side.CANARY), ev.log_text(Side.STABLE)))


def assert_one_sentence(v: Verdict) -> None:
    assert v.summary and "\n" not in v.summary and v.summary.endswith(".")


# --- scenarios a-e of the demo --------------------------------------------------------------------------


def test_panicking_canary_is_unhealthy_with_hard_evidence() -> None:
    v = judge(demo_log(600, panic_on_red=True, seed=1), demo_log(600, color="blue", seed=2))
    assert v.verdict == VerdictKind.UNHEALTHY
    assert v.analyzer == Analyzer.STATISTICAL
    assert v.hard_evidence
    assert v.confidence >= 90
    assert v.evidence_refs[0] == "T1"
    assert "index out of range" in v.summary and "index out of range" in v.root_cause
    assert_one_sentence(v)


def test_panic_with_color_red_every_request_panics() -> None:
    v = judge(demo_log(200, color="red", panic_on_red=True, seed=3), demo_log(200, color="blue", seed=4))
    assert v.verdict == VerdictKind.UNHEALTHY and v.hard_evidence


def test_bad_image_with_85_percent_500s_is_unhealthy_with_hard_evidence() -> None:
    v = judge(demo_log(800, color="green", error_rate=0.85, seed=5), demo_log(800, color="green", seed=6))
    assert v.verdict == VerdictKind.UNHEALTHY
    assert v.confidence >= 90
    assert v.hard_evidence  # a 5xx share users see: no LLM may overrule it
    assert v.evidence_refs[0] == "F1"
    assert "HTTP 500 in 85.9 % of canary requests vs 0 % of stable" in v.summary
    assert v.root_cause.startswith("HTTP 500 in 85.9 %")
    assert_one_sentence(v)


def test_latency_only_the_canary_logs_is_a_finding() -> None:
    # Every canary request takes 2 s ("200 - green (2.000000s)"); the stable's lines carry no latency.
    v = judge(demo_log(500, color="green", latency=True, seed=7), demo_log(500, color="green", seed=8))
    assert v.verdict == VerdictKind.UNHEALTHY
    assert "request latency logged only by the canary: p50 2.0 s, p95 2.0 s" in v.summary


def test_random_colours_against_one_colour_is_healthy() -> None:
    v = judge(demo_log(1500, seed=9), demo_log(1500, color="blue", seed=10))
    assert v.verdict == VerdictKind.HEALTHY
    assert not v.hard_evidence
    assert v.evidence_refs == []
    assert_one_sentence(v)


def test_missing_canary_pods_are_inconclusive_not_healthy() -> None:
    v = judge("", demo_log(500, color="blue"), canary_pods=[])
    assert v.verdict == VerdictKind.INCONCLUSIVE
    assert "no canary pods" in v.summary
    assert_one_sentence(v)


# --- baselines and volume ---------------------------------------------------------------------------------


def test_pre_existing_errors_at_the_stable_rate_are_healthy() -> None:
    extra = 'level=error msg="cache backend timeout" after=500ms'
    v = judge(
        demo_log(3000, color="blue", extra=extra, extra_rate=0.05, error_rate=0.02, seed=11),
        demo_log(3000, color="blue", extra=extra, extra_rate=0.05, error_rate=0.02, seed=12),
    )
    assert v.verdict == VerdictKind.HEALTHY
    assert "error log pattern" in v.summary


def test_no_canary_logs_is_inconclusive() -> None:
    v = judge("", demo_log(500, color="blue"))
    assert v.verdict == VerdictKind.INCONCLUSIVE
    assert "no logs" in v.summary


def test_too_few_canary_events_is_inconclusive() -> None:
    v = judge(demo_log(5, color="blue"), demo_log(500, color="blue"))
    assert v.verdict == VerdictKind.INCONCLUSIVE
    assert "5 events" in v.summary


def test_healthy_confidence_grows_with_volume() -> None:
    small = judge(demo_log(40, seed=13), demo_log(40, color="blue", seed=14))
    large = judge(demo_log(3000, seed=15), demo_log(3000, color="blue", seed=16))
    assert small.verdict == large.verdict == VerdictKind.HEALTHY
    assert 50 <= small.confidence < large.confidence <= 95


def test_without_a_stable_baseline_healthy_is_held_at_low_confidence() -> None:
    v = judge(demo_log(3000, seed=17), "", stable_pods=[])
    assert v.verdict == VerdictKind.HEALTHY and v.confidence <= 60
    assert "baseline" in v.summary


# --- pod and metric facts ---------------------------------------------------------------------------------


def test_canary_restarts_are_hard_evidence() -> None:
    clean = demo_log(500, color="blue", seed=18)
    v = judge(clean, clean, canary_pods=[pod("demo-canary-1", Side.CANARY, clean, restarts=3, terminated="Error")])
    assert v.verdict == VerdictKind.UNHEALTHY and v.hard_evidence
    assert "restarts:demo-canary-1" in v.evidence_refs
    assert_one_sentence(v)


def test_a_canary_restart_is_hard_evidence_whatever_the_stable_pods_count() -> None:
    # Canary pods were born with the canary; stable pods' counts span weeks and cannot excuse them.
    clean = demo_log(500, color="blue", seed=19)
    v = judge(
        clean,
        clean,
        canary_pods=[pod("demo-canary-1", Side.CANARY, clean, restarts=1)],
        stable_pods=[
            pod("demo-stable-1", Side.STABLE, clean, restarts=3),
            pod("demo-stable-2", Side.STABLE, restarts=3),
        ],
    )
    assert v.verdict == VerdictKind.UNHEALTHY and v.hard_evidence
    assert "restarts:demo-canary-1" in v.evidence_refs


@pytest.mark.parametrize(
    ("waiting", "terminated", "ref"),
    [
        ("", "OOMKilled", "oomkilled:demo-canary-1"),
        ("CrashLoopBackOff", "", "crashloop:demo-canary-1"),
        ("ImagePullBackOff", "", "imagepull:demo-canary-1"),
        ("ErrImagePull", "", "imagepull:demo-canary-1"),
    ],
)
def test_container_failures_are_hard_evidence(waiting: str, terminated: str, ref: str) -> None:
    v = judge(
        "",
        demo_log(300, color="blue"),
        canary_pods=[pod("demo-canary-1", Side.CANARY, waiting=waiting, terminated=terminated)],
    )
    assert v.verdict == VerdictKind.UNHEALTHY and v.hard_evidence
    assert ref in v.evidence_refs


def test_back_off_event_on_a_canary_pod_is_hard_evidence() -> None:
    clean = demo_log(300, color="blue")
    events = [
        EventRecord(
            object_name="demo-canary-1",
            type="Warning",
            reason="BackOff",
            message="Back-off restarting failed container",
            count=4,
        )
    ]
    v = judge(clean, clean, events=events)
    assert v.verdict == VerdictKind.UNHEALTHY and v.hard_evidence


def test_failed_metric_is_hard_evidence_even_with_clean_logs() -> None:
    clean = demo_log(500, color="blue", seed=20)
    metric = FailedMetric(
        analysis_run="canary-demo-6b7c9d8f5-2", name="error-rate", phase="Failed", values=["0.31", "0.42"]
    )
    v = judge(clean, clean, metrics=[metric])
    assert v.verdict == VerdictKind.UNHEALTHY and v.hard_evidence
    assert v.evidence_refs == ["metric:error-rate"]
    assert "error-rate" in v.summary


def test_failed_metric_decides_even_without_canary_pods() -> None:
    metric = FailedMetric(analysis_run="r", name="success-rate", phase="Failed")
    v = judge("", "", canary_pods=[], stable_pods=[], metrics=[metric])
    assert v.verdict == VerdictKind.UNHEALTHY and "metric:success-rate" in v.evidence_refs


def test_metric_provider_error_alone_does_not_make_it_unhealthy() -> None:
    clean = demo_log(500, color="blue", seed=21)
    v = judge(
        clean,
        clean,
        metrics=[FailedMetric(analysis_run="r", name="latency", phase="Error", message="prometheus unreachable")],
    )
    assert v.verdict == VerdictKind.HEALTHY
    assert "latency" in v.summary


def test_canary_logging_secrets_never_leaks_them_into_the_verdict() -> None:
    canary = demo_log(
        300,
        color="blue",
        extra='level=error msg="auth failed" password=hunter2 token=abc123xyz',
        extra_rate=0.3,
        seed=22,
    )
    v = judge(canary, demo_log(300, color="blue", seed=23))
    assert v.verdict == VerdictKind.UNHEALTHY
    text = v.summary + v.root_cause
    assert "hunter2" not in text and "abc123xyz" not in text


# --- what the issue found, and more of the same kinds ------------------------------------------------------


def nginx_log(n: int, *, bad_share: float, seed: int, slow: float = 1.0) -> str:
    rnd = random.Random(seed)
    out = []
    paths = ["/", "/api/cart", "/api/products/{}", "/static/app.{}.js", "/healthz"]
    for i in range(n):
        status = 502 if rnd.random() < bad_share else rnd.choice([200, 200, 200, 200, 304, 404])
        path = rnd.choice(paths).format(rnd.randint(1, 9999))
        rt = rnd.lognormvariate(-1.0, 0.4) * slow
        out.append(
            f"10.0.{rnd.randint(0, 9)}.{rnd.randint(2, 250)} - - [09/Oct/2025:14:{i // 60 % 60:02d}:{i % 60:02d} +0000] "
            f'"GET {path} HTTP/1.1" {status} {rnd.randint(200, 9000)} "-" "Mozilla/5.0" {rt:.3f}'
        )
    return "\n".join(out)


def test_an_nginx_canary_with_a_502_burst_is_unhealthy_with_the_rates_named() -> None:
    # 11.6 % of canary requests answer 502 against 0.4 % on the stable.
    canary, stable = nginx_log(3000, bad_share=0.116, seed=1), nginx_log(3000, bad_share=0.004, seed=2)
    v = judge(canary, stable)
    assert v.verdict == VerdictKind.UNHEALTHY and v.hard_evidence
    assert re.search(r"HTTP 502 in 1[12]\.\d % of canary requests vs 0\.\d % of stable", v.summary), v.summary


def test_an_nginx_latency_regression_beyond_the_policy_is_unhealthy() -> None:
    canary, stable = nginx_log(2000, bad_share=0.0, seed=3, slow=2.0), nginx_log(2000, bad_share=0.0, seed=4)
    v = judge(canary, stable)
    assert v.verdict == VerdictKind.UNHEALTHY and v.hard_evidence
    assert re.search(r"request latency p95 1\.\d s vs 0\.\d\d s", v.summary), v.summary
    assert "request_time of T" not in v.summary


def test_a_latency_regression_within_the_policy_is_not_unhealthy() -> None:
    canary, stable = nginx_log(2000, bad_share=0.0, seed=5, slow=1.3), nginx_log(2000, bad_share=0.0, seed=6)
    ev = _evidence(canary, stable)
    strict = statistical_verdict(ev, diff_logs(canary, stable), latency=LatencySpec(p95Ratio=1.2))
    lenient = statistical_verdict(ev, diff_logs(canary, stable), latency=LatencySpec(p95Ratio=2.0))
    assert strict.verdict == VerdictKind.UNHEALTHY and strict.hard_evidence
    assert lenient.verdict == VerdictKind.HEALTHY
    assert "within the policy's latency bounds" in lenient.summary


CRASH_LOOP = """2025-10-09T14:00:00Z starting cart-service v2.4.0
2025-10-09T14:00:00Z loading configuration from /etc/cart/config.yaml
2025-10-09T14:00:00Z FATAL: required configuration key DATABASE_URL is not set
2025-10-09T14:00:00Z exiting with status 1
"""


def test_a_crash_loop_of_fifteen_lines_is_unhealthy_whatever_the_volume() -> None:
    canary = "\n".join((CRASH_LOOP * 4).splitlines()[:15])
    stable = "\n".join(
        f"2025-10-09T14:{i // 60 % 60:02d}:{i % 60:02d}Z served cart {i} in {i % 40 + 3}ms" for i in range(600)
    )
    v = judge(canary, stable)
    assert v.verdict == VerdictKind.UNHEALTHY and v.hard_evidence
    assert "required configuration key DATABASE_URL is not set" in v.summary
    assert "too few" not in v.summary and "fewer than" not in v.summary


def test_too_few_events_still_applies_when_nothing_decisive_was_seen() -> None:
    v = judge("2025-10-09T14:00:00Z starting cart-service v2.4.0\n2025-10-09T14:00:01Z ready", demo_log(300))
    assert v.verdict == VerdictKind.INCONCLUSIVE


def test_two_hundred_new_ansi_coloured_error_lines_are_errors() -> None:
    stable = demo_log(1500, color="blue", seed=30)
    lines = demo_log(1500, color="blue", seed=31).split("\n")
    for i in range(0, 1500, 7)[:200]:
        lines[i] = (
            "\x1b[90m2025-10-09T14:00:00Z\x1b[0m \x1b[31;1mERROR\x1b[0m inventory sync failed: upstream returned garbage"
        )
    v = judge("\n".join(lines), stable)
    assert v.verdict == VerdictKind.UNHEALTHY
    assert "inventory sync failed" in v.summary and "\x1b" not in v.summary


def test_five_megabytes_of_random_bytes_are_never_healthy() -> None:
    rnd = random.Random(9)
    garbage = rnd.randbytes(5 * 2**20).decode("utf-8", errors="replace")
    v = judge(garbage, demo_log(500, color="blue"))
    assert v.verdict == VerdictKind.INCONCLUSIVE
    assert "not readable text" in v.summary


def _evidence(canary: str, stable: str, **kw: object) -> Evidence:
    return Evidence(
        namespace="demo",
        rollout="canary-demo",
        canary_hash="6b7c9d8f5",
        stable_hash="5f4d8c7b6",
        pods=[pod("demo-canary-1", Side.CANARY, canary), pod("demo-stable-1", Side.STABLE, stable)],
        **kw,  # type: ignore[arg-type]
    )


def _unread(name: str, side: Side, **kw: object) -> PodEvidence:
    p = pod(name, side, **kw)  # type: ignore[arg-type]
    p.logs.append(PodLog(pod=name, container="app", error="the server is currently unable to handle the request"))
    return p


def test_a_failed_log_read_is_named_and_never_healthy() -> None:
    clean = demo_log(800, color="blue", seed=40)
    v = judge(
        clean,
        clean,
        canary_pods=[pod("demo-canary-1", Side.CANARY, clean), _unread("demo-canary-2", Side.CANARY)],
    )
    assert v.verdict == VerdictKind.INCONCLUSIVE
    assert "demo-canary-2/app" in v.summary and "could not be read" in v.summary


def test_a_failed_stable_read_is_never_healthy_either() -> None:
    clean = demo_log(800, color="blue", seed=41)
    v = judge(
        clean, clean, stable_pods=[pod("demo-stable-1", Side.STABLE, clean), _unread("demo-stable-2", Side.STABLE)]
    )
    assert v.verdict == VerdictKind.INCONCLUSIVE and "demo-stable-2/app" in v.summary


def test_panicking_canaries_whose_logs_cannot_be_read_are_not_healthy() -> None:
    # Under load, every canary read failed: nothing was read, nothing is healthy.
    v = judge(
        "",
        demo_log(800, color="blue", seed=42),
        canary_pods=[_unread("demo-canary-1", Side.CANARY), _unread("demo-canary-2", Side.CANARY)],
    )
    assert v.verdict == VerdictKind.INCONCLUSIVE
    assert "demo-canary-1/app, demo-canary-2/app" in v.summary


def test_hard_evidence_from_pods_stays_unhealthy_when_logs_cannot_be_read() -> None:
    v = judge(
        "", demo_log(300), canary_pods=[_unread("demo-canary-1", Side.CANARY, restarts=4, waiting="CrashLoopBackOff")]
    )
    assert v.verdict == VerdictKind.UNHEALTHY and v.hard_evidence
    assert "could not be read" in v.summary


def test_a_new_info_event_is_listed_but_never_counts_against_the_canary() -> None:
    lines = demo_log(1500, color="blue", seed=50).split("\n")
    for i in range(0, 1500, 25):
        lines[i] = "2025/10/09 14:00:00 feature flag new-palette enabled"
    v = judge("\n".join(lines), demo_log(1500, color="blue", seed=51))
    assert v.verdict == VerdictKind.HEALTHY
    assert "new informational log patterns" in v.summary
