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
            lines += [
                f"2026/11/20 14:01:{i % 60:02d} http: panic serving {ip}.{i % 250}:{40000 + i}: runtime error: "
                "index out of range [0] with length 0",
                f"goroutine {i + seed} [running]:",
                "main.getColor(...)",
                "\t/go/src/app/main.go:93 +0x1c5",
            ]
        else:
            lines.append(f"2026/11/20 14:01:{i % 60:02d} 200 - green")
    return "\n".join(lines)


def evidence(canary: str, *, rollout: str = "web", pod_hash: str = "abc", metrics: list | None = None) -> Evidence:
    return Evidence(
        namespace="shop",
        rollout=rollout,
        canary_hash=pod_hash,
        pods=[
            PodEvidence(name="c", side=Side.CANARY, logs=[PodLog(pod="c", container="app", text=canary)]),
            PodEvidence(name="s", side=Side.STABLE, logs=[PodLog(pod="s", container="app", text=STABLE)]),
        ],
        failed_metrics=metrics or [],
    )


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
    metric = fp(
        evidence(panic_log("10.0.0", 1), metrics=[FailedMetric(analysis_run="r", name="error-rate", phase="Failed")])
    )
    assert len({panic, errors, other_rollout, metric}) == 4


def test_normalised_templates_ignore_which_parts_were_generalised() -> None:
    assert normalise_template("<TS> payment failed for order <NUM> after <DUR>") == normalise_template(
        "<TS> payment failed for order <*> after <*>"
    )
    assert normalise_template("<TS> panic: boom\ngoroutine <NUM> [running]:") == "<*> panic: boom"


def test_different_exceptions_in_tracebacks_have_different_names() -> None:
    key_error = "Traceback (most recent call last):\n  File \"/app/a.py\", line <NUM>, in handle\nKeyError: 'user'"
    zero = 'Traceback (most recent call last):\n  File "/app/b.py", line <NUM>, in ratio\nZeroDivisionError: division by zero'
    assert normalise_template(key_error) != normalise_template(zero)
    assert normalise_template(key_error).endswith("KeyError: 'user'")


def test_different_go_panics_name_their_own_code() -> None:
    def panic(frame: str) -> str:
        return (
            "<TS> panic: runtime error: invalid memory address or nil pointer dereference\n"
            "goroutine <NUM> [running]:\nnet/http.(*conn).serve.func1()\n\t/usr/local/go/src/net/http/server.go:<NUM>\n"
            f"panic({{<*>}})\n\t/usr/local/go/src/runtime/panic.go:<NUM>\n{frame}\n\t/go/src/app/main.go:<NUM>"
        )

    cart, pay = panic("main.(*Cart).Total(...)"), panic("main.chargeCard(...)")
    assert normalise_template(cart) != normalise_template(pay)
    assert normalise_template(cart).endswith("main.(*Cart).Total(...)")


def test_pod_names_lose_their_random_suffix() -> None:
    assert normalise_template("<TS> checkout-6c8d9e7f5a-x2kq9 lost its lease") == normalise_template(
        "<TS> checkout-6c8d9e7f5a-p7zrt lost its lease"
    )


def test_a_crash_loop_seen_or_not_at_the_moment_keeps_the_fingerprint() -> None:
    from selfheal.domain.evidence import ContainerState

    def with_state(waiting: str) -> Evidence:
        ev = evidence(panic_log("10.0.0", 1))
        ev.pods[0].containers = [
            ContainerState(name="app", restart_count=2, waiting_reason=waiting, last_terminated_reason="Error")
        ]
        return ev

    assert fp(with_state("CrashLoopBackOff")) == fp(with_state(""))
