"""Canary-vs-stable log diff: statuses, the statistical test, ranking and redaction of the output."""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import pytest

from selfheal.domain.logdiff import LogDiff, binom_cdf, binom_sf, compare_counts, diff_logs
from selfheal.domain.logs import parse_events
from selfheal.domain.redaction import Redactor

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
net/http.HandlerFunc.ServeHTTP(0x0?, {{0x7a1b40?, 0xc0000a2000?}}, 0x0?)
\t/usr/local/go/src/net/http/server.go:2136 +0x29
net/http.(*ServeMux).ServeHTTP(0x0?, {{0x7a1b40, 0xc0000a2000}}, 0xc0000b4000)
\t/usr/local/go/src/net/http/server.go:2514 +0x142
net/http.serverHandler.ServeHTTP({{0xc000098150?}}, {{0x7a1b40?, 0xc0000a2000?}}, 0x6?)
\t/usr/local/go/src/net/http/server.go:2938 +0x8e
net/http.(*conn).serve(0xc0000a0000, {{0x7a1f40, 0xc000096210}})
\t/usr/local/go/src/net/http/server.go:2009 +0x5f4
created by net/http.(*Server).Serve in goroutine 1
\t/usr/local/go/src/net/http/server.go:3086 +0x4cc"""


def ts(i: int) -> str:
    return f"2025/10/09 14:{i // 60 % 60:02d}:{i % 60:02d}"


def demo_log(
    n: int,
    *,
    color: str | None = None,
    seed: int = 0,
    panic_on_red: bool = False,
    error_rate: float = 0.0,
    extra: list[tuple[float, str]] | None = None,
) -> str:
    """The rollouts-demo app: one line per request, random colour unless ``color`` is set."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        c = color or rnd.choice(COLORS)
        picked = False
        for rate, line in extra or []:
            if rnd.random() < rate:
                out.append(f"{ts(i)} {line}")
                picked = True
                break
        if picked:
            continue
        if panic_on_red and c == "red":
            out.append(
                PANIC.format(ts=ts(i), a=rnd.randint(1, 250), port=rnd.randint(30000, 60000), g=rnd.randint(1, 999))
            )
        elif rnd.random() < error_rate:
            out.append(f"{ts(i)} 500 - {c}")
        else:
            out.append(f"{ts(i)} 200 - {c}")
    return "\n".join(out)


def rising(diff: LogDiff) -> list[str]:
    return [t.severity for t in diff.significant()]


# --- the statistical test ------------------------------------------------------------------------


def _exact_sf(x: int, n: int, p: float) -> float:
    return sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(x, n + 1))


@pytest.mark.parametrize("n", [1, 5, 30, 200])
@pytest.mark.parametrize("p", [0.01, 0.2, 0.5, 0.93])
def test_binomial_tails_match_the_definition(n: int, p: float) -> None:
    for x in range(0, n + 2):
        assert binom_sf(x, n, p) == pytest.approx(_exact_sf(x, n, p), rel=1e-6, abs=1e-250)
        assert binom_cdf(x, n, p) == pytest.approx(1.0 - _exact_sf(x + 1, n, p), rel=1e-9, abs=1e-12)


def test_binomial_tails_for_large_counts_are_fast_and_sane() -> None:
    # 200k trials: mean 100k, sd ~224. 2 sd above the mean ~ 2.3 %.
    assert binom_sf(100_448, 200_000, 0.5) == pytest.approx(0.0228, abs=0.002)
    assert binom_sf(200_000, 200_000, 0.5) == pytest.approx(0.5**200_000, abs=1e-300)
    assert binom_cdf(99_552, 200_000, 0.5) == pytest.approx(0.0228, abs=0.002)


def test_comparison_is_normalised_by_volume() -> None:
    # The same 1 % error rate on a canary that logs ten times less is no change.
    direction, p = compare_counts(10, 100, 1_000, 10_000)
    assert p > 0.3
    # Ten errors in 1k canary events vs ten in 10k stable events is a tenfold rate: significant.
    direction, p = compare_counts(10, 10, 1_000, 10_000)
    assert direction == "up" and p < 1e-4


def test_a_new_template_seen_three_times_is_listed_but_not_significant() -> None:
    stable = demo_log(400, color="blue", seed=4)
    lines = demo_log(400, color="blue", seed=3).split("\n")
    for i in (50, 150, 250):
        lines[i] = f'{ts(i)} level=error msg="cache miss storm"'
    diff = diff_logs("\n".join(lines), stable)
    storm = next(t for t in diff.templates if "storm" in t.template)
    assert (storm.canary_count, storm.stable_count, storm.status) == (3, 0, "new")
    assert storm.p_value is not None and storm.p_value > 0.01
    assert diff.significant() == [storm]


def test_twice_is_not_yet_a_new_event_type() -> None:
    lines = demo_log(400, color="blue", seed=3).split("\n")
    for i in (50, 150):
        lines[i] = f'{ts(i)} level=error msg="cache miss storm"'
    diff = diff_logs("\n".join(lines), demo_log(400, color="blue", seed=4))
    assert diff.significant() == []


# --- the demo scenarios ----------------------------------------------------------------------------


def test_panicking_canary_ranks_the_new_crash_first() -> None:
    canary = demo_log(600, panic_on_red=True, seed=1)
    stable = demo_log(1200, color="blue", seed=2)
    diff = diff_logs(canary, stable)
    top = diff.significant()[0]
    assert top.id == "T1"
    assert top.crash_signature and top.severity == "error" and top.status == "new"
    assert top.stable_count == 0 and top.canary_count > 50
    assert top.p_value is not None and top.p_value < 1e-10
    assert "index out of range" in top.template
    assert 1 <= len(top.examples) <= 3
    assert all(len(e) <= 500 for e in top.examples)
    assert top.examples[0].startswith("2025/10/09 14:")
    assert "goroutine" in top.examples[0]
    assert diff.canary_events == 600 and diff.stable_events == 1200
    assert top.canary_rate == pytest.approx(1000 * top.canary_count / 600, rel=1e-3)


def test_bad_image_with_85_percent_500s_is_a_significant_error() -> None:
    canary = demo_log(500, color="green", error_rate=0.85, seed=5)
    stable = demo_log(500, color="green", seed=6)
    diff = diff_logs(canary, stable)
    sig = diff.significant()
    assert sig and sig[0].severity == "error" and "500" in sig[0].template
    assert sig[0].status == "new"


def test_error_rate_increase_over_an_existing_error_is_increased() -> None:
    canary = demo_log(2000, color="green", error_rate=0.30, seed=7)
    stable = demo_log(2000, color="green", error_rate=0.02, seed=8)
    sig = diff_logs(canary, stable).significant()
    assert sig[0].status == "increased" and sig[0].severity == "error"
    assert sig[0].canary_rate > 5 * sig[0].stable_rate


def test_random_colours_against_one_colour_are_not_a_regression() -> None:
    diff = diff_logs(demo_log(3000, seed=9), demo_log(3000, color="blue", seed=10))
    assert [t for t in diff.significant() if t.severity != "info"] == []
    assert all(t.severity == "info" for t in diff.templates)


def test_pre_existing_errors_at_the_same_rate_are_unchanged() -> None:
    extra = [(0.05, 'level=error msg="cache backend timeout" after=500ms'), (0.03, 'level=warn msg="slow upstream"')]
    canary = demo_log(4000, color="blue", extra=extra, seed=11)
    stable = demo_log(4000, color="blue", extra=extra, seed=12)
    diff = diff_logs(canary, stable)
    errors = [t for t in diff.templates if t.severity == "error"]
    assert len(errors) == 1 and errors[0].canary_count > 100 and errors[0].stable_count > 100
    assert errors[0].status == "unchanged"
    assert errors[0].p_value is not None and errors[0].p_value > 0.01
    assert rising(diff) == []


def test_ranking_puts_crashes_then_errors_then_warnings() -> None:
    extra = [
        (0.02, 'level=warn msg="deprecated flag --foo"'),
        (0.03, 'level=error msg="failed to decode payload" size=12'),
    ]
    canary = demo_log(3000, extra=extra, panic_on_red=True, seed=13)
    stable = demo_log(3000, seed=14)
    sig = diff_logs(canary, stable).significant()
    kinds = [("crash" if t.crash_signature else t.severity) for t in sig]
    assert kinds[:3] == ["crash", "error", "warning"]


def test_gone_templates_and_empty_sides() -> None:
    stable = demo_log(1000, color="blue", extra=[(0.05, 'level=error msg="legacy job failed"')], seed=15)
    diff = diff_logs(demo_log(1000, color="blue", seed=16), stable)
    legacy = next(t for t in diff.templates if "legacy" in t.template)
    assert legacy.status == "gone" and legacy.canary_count == 0
    assert diff.significant() == []

    empty = diff_logs("", stable)
    assert empty.canary_events == 0 and empty.significant() == []
    no_base = diff_logs(demo_log(100, panic_on_red=True, seed=17), "")
    assert no_base.stable_events == 0
    assert no_base.significant() and no_base.significant()[0].crash_signature
    assert all(t.p_value is None for t in no_base.templates)


def test_ids_are_contiguous_and_deterministic() -> None:
    canary = demo_log(800, panic_on_red=True, error_rate=0.1, seed=18)
    stable = demo_log(800, color="blue", seed=19)
    a = diff_logs(canary, stable)
    b = diff_logs(canary, stable)
    assert a == b
    assert [t.id for t in a.templates] == [f"T{i}" for i in range(1, len(a.templates) + 1)]


# --- redaction of what leaves the diff ---------------------------------------------------------------

SECRETS = {
    "token": "login ok Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlLXNpZw",
    "aws": "s3 client key=AKIAIOSFODNN7EXAMPLE secret aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "github": "clone with ghp_1234567890abcdefghijABCDEFGHIJ123456",
    "url": "db postgres://app:s3cr3tP4ss@db.internal:5432/orders unreachable",
    "password": 'level=error msg="auth failed" password=hunter2 user=jane.doe@example.com',
    "gcp": "geocode key AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q failed",
    "slack": "notify xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx failed",
}
RAW_SECRETS = [
    "eyJzdWIiOiJib2IifQ",
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "ghp_1234567890abcdefghijABCDEFGHIJ123456",
    "s3cr3tP4ss",
    "hunter2",
    "jane.doe@example.com",
    "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    "xoxb-123456789012",
    "MIIEowIBAAKCAQEAu1SU1LfVLPHC",
]


def test_no_secret_survives_in_templates_or_examples() -> None:
    key_block = "\n".join(
        [
            "-----BEGIN RSA PRIVATE KEY-----",
            "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
            "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
            "-----END RSA PRIVATE KEY-----",
        ]
    )
    lines = []
    for i in range(300):
        lines.append(f"{ts(i)} 200 - blue")
        for text in SECRETS.values():
            lines.append(f"{ts(i)} {text}")
    canary = "\n".join(lines) + "\n" + f"{ts(301)} loaded signing key\n" + key_block
    redactor = Redactor(patterns=[("order-id", r"ORD-\d{6}")])
    diff = diff_logs(canary + f"\n{ts(302)} order ORD-123456 failed", demo_log(300, color="blue"), redactor=redactor)
    blob = "\n".join([t.template for t in diff.templates] + [e for t in diff.templates for e in t.examples])
    for secret in [*RAW_SECRETS, "ORD-123456"]:
        assert secret not in blob
    assert "[REDACTED:" in blob
    assert redactor.counts["password"] == 300 and redactor.counts["private_key"] == 1
    assert redactor.counts["order-id"] == 1


def test_large_logs_with_errors_at_the_same_rate_give_no_error_evidence() -> None:

    canary = demo_log(20_000, panic_on_red=False, error_rate=0.01, seed=20)
    stable = demo_log(20_000, color="blue", error_rate=0.01, seed=21)
    diff = diff_logs(canary, stable)
    assert diff.canary_events == 20_000
    # The canary's new colours are new templates, listed as information; its 500s on those colours
    # differ from the stable's only in the colour, at the same rate: no error evidence.
    assert [t for t in diff.significant() if t.severity != "info" and not t.explained] == []
    assert diff.fields == []


def test_many_unrelated_lines_keep_a_new_error() -> None:

    rnd = random.Random(22)
    words = ["".join(rnd.choices("abcdefghijklmnopqrstuvwxyz", k=rnd.randint(4, 9))) for _ in range(5000)]

    def noise(n: int, with_error: bool) -> str:
        out = []
        for i in range(n):
            w = rnd.choices(words, k=6)
            if with_error and i % 100 == 0:
                out.append(f'{ts(i)} level=error msg="payment gateway rejected charge" customer={w[0]}')
            elif i % 2:
                out.append(f"{ts(i)} user {w[0]} {w[1]} logged in from {w[2]}")
            else:
                out.append(f"{ts(i)} INFO handled {' '.join(w)}")
        return "\n".join(out)

    canary, stable = noise(20_000, True), noise(20_000, False)
    diff = diff_logs(canary, stable)
    assert diff.canary_events == 20_000 and diff.stable_events == 20_000
    sig = diff.significant()
    assert sig and sig[0].severity == "error" and sig[0].status == "new"
    assert "payment gateway rejected charge" in sig[0].template
    assert sig[0].canary_count == 200 and sig[0].stable_count == 0
    assert [t for t in sig if t.severity != "info"] == [sig[0]]


# --- random halves of the same traffic -----------------------------------------------------------------

CORPUS = Path(__file__).resolve().parents[2] / "corpus"


def _corpus_log(app_name: str, lines: int, seed: int) -> str:
    sys.path.insert(0, str(CORPUS))
    try:
        from catalogue import APPS  # type: ignore[import-not-found]
        from generate import write_log  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(CORPUS))
    return "\n".join(write_log(APPS[app_name], None, random.Random(seed), lines))


HALVES_APPS = [
    "nginx-ingress",
    "apache-httpd",
    "checkout-go",
    "payments-zap",
    "inventory-slog",
    "cart-node",
    "search-node",
    "orders-django",
    "billing-spring",
    "catalog-dotnet",
    "storefront-rails",
    "backup-operator",
    "mail-relay",
    "queue-consumer",
    "ledger-ecs",
    "postgres",
    "redis",
    "kafka-broker",
    "shop-php",
    "cart-phoenix",
]


def _halves_verdict(app: str, seed: int) -> tuple[LogDiff, str, str]:
    from selfheal.domain.heuristic import statistical_verdict
    from selfheal.services.offline import evidence_from_logs

    events = parse_events(_corpus_log(app, 3000, seed=seed))
    rnd = random.Random(seed + 1)
    halves: tuple[list[str], list[str]] = ([], [])
    for event in events:
        halves[rnd.random() < 0.5].append(event)
    canary, stable = "\n".join(halves[0]), "\n".join(halves[1])
    diff = diff_logs(canary, stable)
    verdict = statistical_verdict(evidence_from_logs(app, canary, stable), diff)
    return diff, verdict.verdict.value, verdict.summary


@pytest.mark.parametrize("app", HALVES_APPS)
def test_random_halves_of_the_same_traffic_give_no_significant_evidence(app: str) -> None:
    diff, verdict, summary = _halves_verdict(app, 77)
    significant = [
        t for t in diff.significant() if t.severity != "info" and not t.explained and (t.p_value or 1.0) < 0.01
    ]
    assert significant == [], [(t.template, t.canary_count, t.stable_count) for t in significant]
    assert [f for f in diff.fields if f.error] == []
    # A rare error that fell three times on one side may be listed (never unhealthy); nothing more.
    assert verdict in ("healthy", "inconclusive"), summary
    assert verdict == "healthy" or "too rarely to be significant" in summary, summary


def test_random_halves_are_almost_always_healthy() -> None:
    verdicts = [_halves_verdict(app, seed)[1] for app in HALVES_APPS for seed in (91, 92)]
    assert verdicts.count("unhealthy") == 0
    assert verdicts.count("healthy") >= 0.85 * len(verdicts), verdicts


# --- system logs of many kinds of software: new mid-frequency event types are listed -------------------


def _system_log_kinds(rnd: random.Random) -> tuple[list, list]:
    def ip() -> str:
        return f"10.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"

    def blk() -> str:
        return f"blk_{rnd.choice(['-', ''])}{rnd.randint(10**17, 10**18)}"

    def hdfs(level: str, rest: str) -> str:
        return f"081109 {rnd.randint(200000, 235959)} {rnd.randint(1, 999)} {level} {rest}"

    known = [
        lambda: hdfs(
            "INFO", f"dfs.DataNode$PacketResponder: PacketResponder {rnd.randint(0, 2)} for block {blk()} terminating"
        ),
        lambda: hdfs(
            "INFO",
            f"dfs.DataNode$PacketResponder: Received block {blk()} of size {rnd.randint(10**6, 10**8)} from /{ip()}",
        ),
        lambda: hdfs(
            "INFO",
            f"dfs.FSNamesystem: BLOCK* NameSystem.addStoredBlock: blockMap updated: {ip()}:50010 is added to {blk()} size {rnd.randint(10**6, 10**8)}",
        ),
        lambda: hdfs(
            "INFO",
            f"dfs.DataNode$DataXceiver: Receiving block {blk()} src: /{ip()}:{rnd.randint(30000, 60000)} dest: /{ip()}:50010",
        ),
        lambda: (
            f"2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - Notification time out: {rnd.choice([400, 800, 1600, 3200])}"
        ),
        lambda: (
            f"2015-07-29 19:04:12,394 - INFO  [NIOServerCxn.Factory:0.0.0.0/0.0.0.0:2181:NIOServerCnxnFactory@197] - Accepted socket connection from /{ip()}:{rnd.randint(30000, 60000)}"
        ),
        lambda: (
            "2015-07-29 19:04:29,071 - WARN  [SendWorker:188978561024:QuorumCnxManager$SendWorker@679] - Interrupted while waiting for message on queue"
        ),
        lambda: (
            f"Dec 10 06:55:46 LabSZ sshd[{rnd.randint(1000, 30000)}]: Invalid user {rnd.choice(['admin', 'test', 'oracle', 'guest', 'ubuntu', 'pi', 'git', 'user', 'support', 'nagios', 'postgres', 'ftp'])} from {ip()}"
        ),
        lambda: (
            f"Dec 10 06:55:46 LabSZ sshd[{rnd.randint(1000, 30000)}]: Failed password for invalid user {rnd.choice(['admin', 'test', 'oracle', 'guest'])} from {ip()} port {rnd.randint(1000, 60000)} ssh2"
        ),
        lambda: (
            f"Dec 10 06:55:48 LabSZ sshd[{rnd.randint(1000, 30000)}]: Received disconnect from {ip()}: 11: Bye Bye [preauth]"
        ),
        lambda: (
            f"Dec 10 06:55:48 LabSZ sshd[{rnd.randint(1000, 30000)}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip()}"
        ),
        lambda: f"Jun 14 15:16:01 combo sshd(pam_unix)[{rnd.randint(1000, 30000)}]: check pass; user unknown",
        lambda: (
            "17/06/09 20:10:40 INFO executor.CoarseGrainedExecutorBackend: Registered signal handlers for [TERM, HUP, INT]"
        ),
        lambda: (
            f"17/06/09 20:11:11 INFO storage.BlockManager: Found block rdd_{rnd.randint(1, 40)}_{rnd.randint(1, 9)} locally"
        ),
        lambda: (
            f"17/06/09 20:11:11 INFO executor.Executor: Finished task {rnd.randint(1, 99)}.0 in stage {rnd.randint(1, 9)}.0 (TID {rnd.randint(1, 999)}). {rnd.randint(1000, 3000)} bytes result sent to driver"
        ),
    ]
    new = [
        lambda: hdfs(
            "INFO", f"dfs.DataNode$PacketResponder: PacketResponder {rnd.randint(0, 2)} for block {blk()} Interrupted."
        ),
        lambda: hdfs("WARN", f"dfs.DataNode$DataXceiver: {ip()}:50010:Got exception while serving {blk()} to /{ip()}:"),
        lambda: (
            f"Dec 10 06:55:48 LabSZ sshd[{rnd.randint(1000, 30000)}]: Received disconnect from {ip()}: 11: Normal Shutdown, Thank you for playing [preauth]"
        ),
        lambda: (
            f"Dec 10 06:55:46 LabSZ sshd[{rnd.randint(1000, 30000)}]: Failed password for root from {ip()} port {rnd.randint(1000, 60000)} ssh2"
        ),
        lambda: (
            "2015-07-29 19:04:29,071 - WARN  [RecvWorker:188978561024:QuorumCnxManager$RecvWorker@765] - Interrupting SendWorker"
        ),
        lambda: (
            f"17/06/09 20:11:11 INFO storage.MemoryStore: Block broadcast_{rnd.randint(1, 40)} stored as values in memory (estimated size {rnd.randint(1, 90)}.{rnd.randint(0, 9)} KB, free {rnd.randint(1, 9)}.{rnd.randint(0, 9)} GB)"
        ),
        lambda: (
            f"Jun 14 15:16:02 combo sshd(pam_unix)[{rnd.randint(1000, 30000)}]: session opened for user news by (uid=0)"
        ),
        lambda: (
            f"17/06/09 20:11:11 INFO executor.Executor: Running task {rnd.randint(1, 99)}.0 in stage {rnd.randint(1, 9)}.0 (TID {rnd.randint(1, 999)})"
        ),
    ]
    return known, new


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_new_mid_frequency_event_types_of_system_logs_are_listed(seed: int) -> None:
    rnd = random.Random(seed)
    known, new = _system_log_kinds(rnd)
    stable = [rnd.choice(known)() for _ in range(4000)]
    canary = [rnd.choice(known)() for _ in range(3000)]
    planted = []
    for kind, count in zip(new, [3, 4, 5, 8, 12, 20, 40, 60], strict=True):
        lines = [kind() for _ in range(count)]
        planted.append(lines[0])
        for line in lines:
            canary.insert(rnd.randint(0, len(canary)), line)
    diff = diff_logs("\n".join(canary), "\n".join(stable))
    listed = [t for t in diff.significant() if t.stable_count == 0]
    for line in planted:
        words = [w for w in line.split() if w.isalpha() and len(w) > 3][-3:]
        assert any(all(w in t.template for w in words) for t in listed), line
    # and nothing else is new
    assert len(listed) == len(new)
