"""The failure fingerprint names the failure, not how or when it was seen: the same for another sample, another
revision, more pods, another trigger, another Rollout; different for another failure or another build."""

from __future__ import annotations

import random
import sys
from datetime import datetime
from pathlib import Path

import pytest

from selfheal.domain.evidence import ContainerState, Evidence, FailedMetric, PodEvidence, PodLog, Side
from selfheal.domain.fingerprint import FailureSignature, crash_name, failure_signature, mask, workload
from selfheal.domain.heuristic import statistical_verdict
from selfheal.domain.logdiff import diff_logs
from selfheal.domain.policy import LatencySpec

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "corpus"))

import traces
from catalogue import APPS
from generate import BAD, PLAN, STABLE_LINES, write_log

STABLE = "\n".join(f"2026/11/20 14:00:{i % 60:02d} 200 - blue" for i in range(300))
IMAGE = "ghcr.io/acme/web"


def panic_log(ip: str, seed: int, lines: int = 300) -> str:
    out = []
    for i in range(lines):
        if i % 6 == seed % 6:
            out += [
                f"2026/11/20 14:01:{i % 60:02d} http: panic serving {ip}.{i % 250}:{40000 + i}: runtime error: "
                "index out of range [0] with length 0",
                f"goroutine {i + seed} [running]:",
                "net/http.(*conn).serve.func1()",
                "\t/usr/local/go/src/net/http/server.go:1868 +0xb0",
                "main.getColor(...)",
                "\t/go/src/app/main.go:93 +0x1c5",
            ]
        else:
            out.append(f"2026/11/20 14:01:{i % 60:02d} 200 - green")
    return "\n".join(out)


def evidence(
    canary_logs: list[str],
    *,
    image: str = f"{IMAGE}:v2",
    namespace: str = "shop",
    rollout: str = "web",
    pod_hash: str = "abc",
    metrics: list[FailedMetric] | None = None,
    states: list[ContainerState] | None = None,
) -> Evidence:
    canary = [
        PodEvidence(
            name=f"{rollout}-{pod_hash}-p{i:04d}",
            side=Side.CANARY,
            containers=list(states or []),
            logs=[PodLog(pod=f"{rollout}-{pod_hash}-p{i:04d}", container="app", text=text)],
        )
        for i, text in enumerate(canary_logs)
    ]
    return Evidence(
        namespace=namespace,
        rollout=rollout,
        canary_hash=pod_hash,
        images=[image],
        pods=[*canary, PodEvidence(name="s", side=Side.STABLE, logs=[PodLog(pod="s", container="app", text=STABLE)])],
        failed_metrics=metrics or [],
    )


def signature(ev: Evidence) -> FailureSignature:
    return failure_signature(ev, diff_logs(ev.log_text(Side.CANARY), ev.log_text(Side.STABLE)))


def test_another_revision_sample_pod_count_trigger_or_rollout_names_the_same_failure() -> None:
    base = signature(evidence([panic_log("10.0.0", 1)]))
    variants = {
        "another revision, image tag and ids": evidence([panic_log("10.9.8", 4)], image=f"{IMAGE}:v3", pod_hash="def"),
        "five canary pods": evidence([panic_log(f"10.0.{i}", i, 120) for i in range(5)]),
        "a failed AnalysisRun besides": evidence(
            [panic_log("10.0.0", 2)],
            metrics=[FailedMetric(analysis_run="web-abc-2", name="panic-rate", phase="Failed")],
        ),
        "an inconclusive one": evidence(
            [panic_log("10.0.0", 3)], metrics=[FailedMetric(analysis_run="r", name="p95", phase="Inconclusive")]
        ),
        "a crash loop at that moment": evidence(
            [panic_log("10.0.0", 1)],
            states=[ContainerState(name="app", restart_count=2, waiting_reason="CrashLoopBackOff")],
        ),
        "another Rollout in another namespace": evidence([panic_log("10.1.1", 5)], namespace="eu", rollout="web-eu"),
    }
    for what, ev in variants.items():
        other = signature(ev)
        assert (other.signature, other.fingerprint) == (base.signature, base.fingerprint), what
    assert (
        base.primary
        == "http: panic serving <*> runtime error: index out of range [<*> with length <*> at main.getColor"
    )


def test_another_failure_or_another_build_is_another_name() -> None:
    panic = signature(evidence([panic_log("10.0.0", 1)]))
    errors = signature(evidence(["\n".join(f"2026/11/20 14:01:{i % 60:02d} 500 - green" for i in range(300))]))
    other_build = signature(evidence([panic_log("10.0.0", 1)], image="ghcr.io/acme/checkout:v2"))
    oom = signature(
        evidence(
            ["\n".join(f"2026/11/20 14:01:{i % 60:02d} 200 - green" for i in range(300))],
            states=[ContainerState(name="app", restart_count=1, last_terminated_reason="OOMKilled")],
        )
    )
    assert len({s.signature for s in (panic, errors, other_build, oom)}) == 4
    assert errors.primary == "HTTP 5xx responses"
    assert oom.primary == "container app: OOMKilled"


def test_only_failed_metrics_never_name_the_metric() -> None:
    quiet = ["\n".join(f"2026/11/20 14:01:{i % 60:02d} 200 - blue" for i in range(300))]
    a = signature(evidence(quiet, metrics=[FailedMetric(analysis_run="r1", name="error-rate", phase="Failed")]))
    b = signature(evidence(quiet, metrics=[FailedMetric(analysis_run="r2", name="success-ratio", phase="Error")]))
    assert a.primary == b.primary == "failed analysis metrics"


def test_the_workload_is_the_image_without_tag_or_digest() -> None:
    assert workload(["ghcr.io/acme/web:v1", "ghcr.io/acme/web@sha256:" + "a" * 64]) == ("ghcr.io/acme/web",)
    assert workload(["registry:5000/acme/web:2.1", "busybox"]) == ("busybox", "registry:5000/acme/web")


@pytest.mark.parametrize(
    ("trace", "exception", "frame"),
    [
        (
            "go_panic",
            "runtime error: invalid memory address",
            "github.com/acme/checkout/internal/cart.(*Service).Total",
        ),
        ("java_npe", "java.lang.NullPointerException", "com.acme.billing.InvoiceService.settle"),
        ("python_keyerror", "KeyError: 'sku'", "/app/orders/views.py in create"),
        ("node_typeerror", "TypeError: Cannot read properties of undefined", "computeTotal"),
        ("ruby_nomethod", "NoMethodError (undefined method", "app/models/line_item.rb in subtotal"),
        ("dotnet_nre", "System.NullReferenceException", "Catalog.Api.Services.PriceService.Quote"),
        ("elixir_crash", "** (RuntimeError) connection to redis lost", "Cart.Store.handle_call"),
    ],
)
def test_a_crash_is_named_by_its_exception_at_the_applications_own_frame(
    trace: str, exception: str, frame: str
) -> None:
    lines = getattr(traces, trace)(random.Random(1), datetime(2026, 3, 9, 14))
    name = crash_name("\n".join(lines))
    assert exception in name and f" at {frame}" in name, name
    for library in ("net/http", "org.springframework", "site-packages", "node_modules", "gen_server"):
        assert library not in name


def test_masking_keeps_the_shape_and_drops_what_varies() -> None:
    assert (
        mask("<TS> order <NUM> failed after 0x1f3a ms in web-6c8d9e7f5a-x2kq9")
        == "order <*> failed after <*> ms in web-<*>"
    )
    assert mask("<*> <*> payment refused") == "payment refused"


# --- the labelled corpus: every failing kind of software, other samples of the same failure -----------


def _corpus_cases() -> list[tuple[str, str]]:
    return [(app, scenario) for app, scenarios in PLAN.items() for scenario in scenarios if scenario in BAD]


@pytest.mark.parametrize(("app", "scenario"), _corpus_cases(), ids=lambda v: str(v))
def test_every_failing_corpus_case_keeps_its_name_across_samples_and_volumes(app: str, scenario: str) -> None:
    """Other seeds (other ids, timings and which lines were sampled) and other volumes (one pod or five):
    whenever the statistics call the canary unhealthy, the failure has one name."""
    names = set()
    for seed, volume in ((11, 0.5), (23, 1.0), (37, 0.3), (51, 2.0)):
        stable = write_log(APPS[app], None, random.Random(seed), STABLE_LINES)
        sc = BAD[scenario]
        canary = write_log(APPS[app], sc, random.Random(seed + 500), max(60, int(STABLE_LINES * sc.lines * volume)))
        ev = Evidence(namespace="n", rollout="r", canary_hash="h", images=[f"ghcr.io/acme/{app}:{seed}"])
        diff = diff_logs("\n".join(canary), "\n".join(stable))
        if statistical_verdict(ev, diff, latency=LatencySpec()).verdict != "unhealthy":
            continue
        names.add(failure_signature(ev, diff).signature)
    assert len(names) <= 1, f"{app}/{scenario}: {len(names)} names for one failure"


def test_the_corpus_failures_of_one_software_have_names_of_their_own() -> None:
    for app, scenarios in PLAN.items():
        seen: dict[str, str] = {}
        for scenario in (s for s in scenarios if s in BAD):
            sc = BAD[scenario]
            stable = write_log(APPS[app], None, random.Random(5), STABLE_LINES)
            canary = write_log(APPS[app], sc, random.Random(505), int(STABLE_LINES * sc.lines))
            ev = Evidence(namespace="n", rollout="r", canary_hash="h", images=[f"ghcr.io/acme/{app}:1"])
            diff = diff_logs("\n".join(canary), "\n".join(stable))
            if statistical_verdict(ev, diff, latency=LatencySpec()).verdict != "unhealthy":
                continue
            name = failure_signature(ev, diff).signature
            assert name not in seen, f"{app}: {scenario} and {seen.get(name)} share a name"
            seen[name] = scenario


def test_a_sample_showing_one_more_crash_names_the_same_failure() -> None:
    base = FailureSignature(("ghcr.io/acme/web",), "panic: boom at main.getColor", ("panic: boom at main.getColor",))
    more = FailureSignature(("ghcr.io/acme/web",), base.primary, (*base.crashes, "fatal error: concurrent map writes"))
    assert (more.fingerprint, more.signature) == (base.fingerprint, base.signature)
    assert more.lines() == [base.primary, "fatal error: concurrent map writes"]
    assert FailureSignature(("ghcr.io/acme/api",), base.primary).fingerprint != base.fingerprint
