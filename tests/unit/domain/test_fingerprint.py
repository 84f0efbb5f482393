"""The failure fingerprint: stable across revisions and incidental differences, different for different failures."""

from __future__ import annotations

from selfheal.domain.evidence import Evidence, FailedMetric, PodEvidence, PodLog, Side
from selfheal.domain.fingerprint import failure_signature, fingerprint, normalise_template
from selfheal.domain.logdiff import diff_logs

STABLE = "\n".join(f"2026/11/20 14:00:{i % 60:02d} 200 - blue" for i in range(300))


def panic_log(ip: str, seed: int) -> str:
    lines = []
    for i in range(300):
        if i % 6 == seed % 6:
            lines += [f"2026/11/20 14:01:{i % 60:02d} http: panic serving {ip}.{i % 250}:{40000 + i}: runtime error: "
                      "index out of range [0] with length 0",
                      f"goroutine {i + seed} [running]:", "main.getColor(...)", "\t/go/src/app/main.go:93 +0x1c5"]
        else:
            lines.append(f"2026/11/20 14:01:{i % 60:02d} 200 - green")
    return "\n".join(lines)


def evidence(canary: str, *, rollout: str = "web", pod_hash: str = "abc", metrics: list | None = None) -> Evidence:
    return Evidence(namespace="shop", rollout=rollout, canary_hash=pod_hash, pods=[
        PodEvidence(name="c", side=Side.CANARY, logs=[PodLog(pod="c", container="app", text=canary)]),
        PodEvidence(name="s", side=Side.STABLE, logs=[PodLog(pod="s", container="app", text=STABLE)]),
    ], failed_metrics=metrics or [])


def fp(ev: Evidence) -> str:
    diff = diff_logs(ev.log_text(Side.CANARY), ev.log_text(Side.STABLE))
    return fingerprint(ev.namespace, ev.rollout, failure_signature(ev, diff))


def test_same_failure_on_another_revision_with_other_ids_has_the_same_fingerprint() -> None:
    first = fp(evidence(panic_log("10.0.0", 1), pod_hash="abc"))
    second = fp(evidence(panic_log("10.9.8", 4), pod_hash="def"))
    assert first == second


def test_a_different_failure_or_workload_has_another_fingerprint() -> None:
    panic = fp(evidence(panic_log("10.0.0", 1)))
    errors = fp(evidence("\n".join(f"2026/11/20 14:01:{i % 60:02d} 500 - green" for i in range(300))))
    other_rollout = fp(evidence(panic_log("10.0.0", 1), rollout="checkout"))
    metric = fp(evidence(panic_log("10.0.0", 1), metrics=[FailedMetric(analysis_run="r", name="error-rate",
                                                                        phase="Failed")]))
    assert len({panic, errors, other_rollout, metric}) == 4


def test_normalised_templates_ignore_which_parts_were_generalised() -> None:
    assert normalise_template("<TS> payment failed for order <NUM> after <DUR>") == \
        normalise_template("<TS> payment failed for order <*> after <*>")
    assert normalise_template("<TS> panic: boom\ngoroutine <NUM> [running]:") == "<*> panic: boom"
