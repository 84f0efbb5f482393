"""Log templating: masking, event splitting, severity, crash signatures and template mining."""

from __future__ import annotations

import random
import time

import pytest

from selfheal.domain.logs import TemplateMiner, is_crash_signature, mask, parse_events, severity

GO_HTTP_PANIC = """2025/10/09 14:00:01 http: panic serving 10.0.0.5:41234: runtime error: index out of range [0] with length 0
goroutine 35 [running]:
net/http.(*conn).serve.func1()
\t/usr/local/go/src/net/http/server.go:1868 +0xb0
panic({0x6c2b60?, 0xc000016150?})
\t/usr/local/go/src/runtime/panic.go:920 +0x270
main.getColor(...)
\t/go/src/app/main.go:93
main.colorHandler({0x7a1b40, 0xc0000a2000}, 0xc0000b4000)
\t/go/src/app/main.go:120 +0x3c5
net/http.HandlerFunc.ServeHTTP(0x0?, {0x7a1b40?, 0xc0000a2000?}, 0x0?)
\t/usr/local/go/src/net/http/server.go:2136 +0x29
net/http.(*ServeMux).ServeHTTP(0x0?, {0x7a1b40, 0xc0000a2000}, 0xc0000b4000)
\t/usr/local/go/src/net/http/server.go:2514 +0x142
net/http.serverHandler.ServeHTTP({0xc000098150?}, {0x7a1b40?, 0xc0000a2000?}, 0x6?)
\t/usr/local/go/src/net/http/server.go:2938 +0x8e
net/http.(*conn).serve(0xc0000a0000, {0x7a1f40, 0xc000096210})
\t/usr/local/go/src/net/http/server.go:2009 +0x5f4
created by net/http.(*Server).Serve in goroutine 1
\t/usr/local/go/src/net/http/server.go:3086 +0x4cc"""

GO_FATAL_PANIC = """panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x48f1c2]

goroutine 1 [running]:
main.main()
\t/app/main.go:12 +0x22
exit status 2"""

PY_LOGGED = """2025-10-09 14:00:03,120 ERROR [worker] job 42 failed
Traceback (most recent call last):
  File "/app/worker.py", line 88, in run
    result = handler(payload)
  File "/app/handlers.py", line 12, in handler
    return payload["items"][0]
IndexError: list index out of range"""

PY_CHAINED = """Traceback (most recent call last):
  File "/app/db.py", line 5, in connect
    sock.connect(addr)
ConnectionRefusedError: [Errno 111] Connection refused

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/main.py", line 3, in <module>
    connect()
RuntimeError: database unavailable"""

JAVA = """2025-10-09 14:00:04.001 ERROR 1 --- [nio-8080-exec-1] o.a.c.c.C.[.[.[/].[dispatcherServlet] : Servlet.service() failed
java.lang.NullPointerException: Cannot invoke "String.length()" because "s" is null
\tat com.example.demo.ColorService.color(ColorService.java:27)
\tat com.example.demo.ColorController.get(ColorController.java:15)
Caused by: java.lang.IllegalStateException: boom
\tat com.example.demo.Repo.load(Repo.java:9)
\t... 42 more"""


# --- mask -------------------------------------------------------------------------------------


def test_demo_lines_that_differ_only_in_time_mask_alike() -> None:
    assert mask("2025/10/09 14:00:00 200 - blue") == mask("2025/10/10 09:59:58 200 - blue")
    assert mask("2025/10/09 14:00:00 200 - blue") == "<TS> 200 - blue"


def test_http_status_and_words_are_kept() -> None:
    assert mask("2025/10/09 14:00:00 200 - blue") != mask("2025/10/09 14:00:00 500 - red")
    assert "500" in mask('10.1.1.1 - - [09/Oct/2025:14:00:00 +0000] "GET /color HTTP/1.1" 500 12')
    assert "status=503" in mask("level=error status=503 path=/color")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("2025-10-09T14:00:00.123Z started", "2025-11-30T01:02:03Z started"),
        ("2025-10-09 14:00:00,123 INFO ready", "2024-01-01 00:00:00,999 INFO ready"),
        ("Oct  9 14:00:00 host app: ready", "Nov 19 01:02:03 host app: ready"),
        ("ts=1728482400 tick", "ts=1728482999 tick"),
        ("request 550e8400-e29b-41d4-a716-446655440000 done", "request 123e4567-e89b-12d3-a456-426614174000 done"),
        ("commit 3f9a7c1e2b done", "commit 0b1c2d3e4f done"),
        ("addr 0xc000016150", "addr 0x6c2b60"),
        ("from 10.0.0.5:41234 ok", "from 192.168.1.20:80 ok"),
        ("peer 10.0.0.5 ok", "peer 172.16.0.1 ok"),
        ("dial [2001:db8::1]:443 ok", "dial [::1]:8080 ok"),
        ("peer fe80::1 up", "peer 2001:db8:0:0:0:0:2:1 up"),
        ("500 - red (2.000000s)", "500 - red (0.500000s)"),
        ("took 150ms", "took 3s"),
        ("items=42 size 7", "items=1 size 99999"),
        ('{"level":"error","msg":"db down","retry":3}', '{"level":"error","msg":"db down","retry":17}'),
        ("GET https://api.example.com/v1/items/42 ok", "GET https://cdn.example.org/x ok"),
        ("/go/src/app/main.go:93 +0x1d", "/go/src/app/main.go:120 +0x3c5"),
    ],
)
def test_variable_parts_are_masked(a: str, b: str) -> None:
    assert mask(a) == mask(b)


def test_mask_keeps_words_and_levels() -> None:
    masked = mask('2025-10-09T14:00:00Z level=error msg="cache backend timeout" key=item:123')
    for word in ("level=error", "cache", "backend", "timeout"):
        assert word in masked
    assert "123" not in masked and "2025" not in masked


def test_mask_handles_multi_line_events_line_by_line() -> None:
    masked = mask(GO_HTTP_PANIC)
    assert masked.count("\n") == GO_HTTP_PANIC.count("\n")
    assert "index out of range" in masked and "main.getColor" in masked
    assert "41234" not in masked and "0xb0" not in masked


# --- parse_events -------------------------------------------------------------------------------


def test_go_http_panic_with_stack_trace_is_one_event() -> None:
    text = "2025/10/09 14:00:00 200 - blue\n" + GO_HTTP_PANIC + "\n2025/10/09 14:00:02 200 - green\n"
    events = parse_events(text)
    assert len(events) == 3
    assert events[1] == GO_HTTP_PANIC
    assert events[2] == "2025/10/09 14:00:02 200 - green"


def test_go_fatal_panic_with_blank_line_and_exit_status_is_one_event() -> None:
    events = parse_events("2025/10/09 14:00:00 starting\n" + GO_FATAL_PANIC + "\n")
    assert events == ["2025/10/09 14:00:00 starting", GO_FATAL_PANIC]


def test_python_traceback_joins_the_error_line_that_logged_it() -> None:
    events = parse_events("2025-10-09 14:00:02,000 INFO ok\n" + PY_LOGGED + "\n2025-10-09 14:00:04,000 INFO ok")
    assert events == ["2025-10-09 14:00:02,000 INFO ok", PY_LOGGED, "2025-10-09 14:00:04,000 INFO ok"]


def test_chained_python_traceback_is_one_event() -> None:
    events = parse_events("2025-10-09 14:00:02,000 INFO ok\n" + PY_CHAINED + "\n2025-10-09 14:00:05,000 INFO again")
    assert events == ["2025-10-09 14:00:02,000 INFO ok", PY_CHAINED, "2025-10-09 14:00:05,000 INFO again"]


def test_java_exception_with_frames_and_cause_is_one_event() -> None:
    events = parse_events(JAVA + "\n2025-10-09 14:00:05.000  INFO 1 --- [main] ok")
    assert events == [JAVA, "2025-10-09 14:00:05.000  INFO 1 --- [main] ok"]


def test_plain_lines_crlf_and_blank_lines() -> None:
    assert parse_events("a 1\r\nb 2\r\n\r\nc 3\r\n") == ["a 1", "b 2", "c 3"]
    assert parse_events("") == []


def test_runaway_continuations_are_bounded() -> None:
    text = "2025/10/09 14:00:00 start\n" + "\n".join("  indented" for _ in range(1000))
    events = parse_events(text)
    assert all(e.count("\n") < 200 for e in events)
    assert sum(e.count("indented") for e in events) == 1000


# --- severity and crash signatures ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("2025/10/09 14:00:00 200 - blue", "info"),
        ("2025/10/09 14:00:00 500 - red", "error"),
        ("2025/10/09 14:00:00 500 - red (2.000000s)", "error"),
        ("2025/10/09 14:00:00 404 - blue", "warning"),
        ('10.0.0.1 - - [09/Oct/2025:14:00:00 +0000] "GET /color HTTP/1.1" 502 0', "error"),
        ('level=error msg="db down"', "error"),
        ('level=warn msg="slow"', "warning"),
        ('level=info msg="error count is zero"', "info"),
        ('{"level":"error","msg":"x"}', "error"),
        ('{"severity":"WARNING","message":"x"}', "warning"),
        ('{"level":"info","msg":"ok","status":503}', "error"),
        ("E1009 14:00:00.123456       1 controller.go:10] sync failed", "error"),
        ("W1009 14:00:00.123456       1 controller.go:10] slow", "warning"),
        ("I1009 14:00:00.123456       1 controller.go:10] ok", "info"),
        ("2025-10-09 14:00:00,123 ERROR [main] failed", "error"),
        ("2025-10-09 14:00:00,123 WARNING [main] disk 90%", "warning"),
        ("[error] upstream timed out", "error"),
        ("ERROR:root:oops", "error"),
        ("connection failed: timeout", "error"),
        ("retrying in 5s", "warning"),
        ("Traceback (most recent call last):", "error"),
        ("everything is fine", "info"),
    ],
)
def test_severity(line: str, expected: str) -> None:
    assert severity(line) == expected


@pytest.mark.parametrize(
    "event",
    [
        GO_HTTP_PANIC,
        GO_FATAL_PANIC,
        PY_LOGGED,
        "fatal error: concurrent map writes",
        "Segmentation fault (core dumped)",
        "java.lang.OutOfMemoryError: Java heap space",
        'Exception in thread "main" java.lang.IllegalStateException',
        "runtime: out of memory: cannot allocate 1048576-byte block",
        "Unhandled exception. System.InvalidOperationException: nope",
        "thread 'main' panicked at src/main.rs:4:5",
        'level=error msg="index out of range"',
    ],
)
def test_crash_signatures(event: str) -> None:
    assert is_crash_signature(event)
    assert severity(event) == "error"


@pytest.mark.parametrize(
    "event",
    [
        "2025/10/09 14:00:00 500 - red",
        'level=error msg="db down"',
        "2025/10/09 14:00:00 200 - blue",
        "recovered gracefully, no panic",
        'level=info msg="memory usage 80%"',
    ],
)
def test_not_crash_signatures(event: str) -> None:
    assert not is_crash_signature(event)


# --- template mining ------------------------------------------------------------------------------


def _demo_lines(n: int, seed: int = 1) -> list[str]:
    rnd = random.Random(seed)
    colors = ["red", "orange", "yellow", "green", "blue", "purple"]
    return [f"2025/10/09 14:{i // 60 % 60:02d}:{i % 60:02d} 200 - {rnd.choice(colors)}" for i in range(n)]


def test_a_part_with_few_values_stays_a_constant() -> None:
    # Six colours are six values, not a parameter: each colour is its own template, in one family.
    miner = TemplateMiner()
    miner.add_many(_demo_lines(300), "canary")
    templates = miner.templates
    assert sorted(t.text for t in templates) == sorted(
        f"<TS> 200 - {c}" for c in ["red", "orange", "yellow", "green", "blue", "purple"]
    )
    assert sum(t.counts["canary"] for t in templates) == 300
    assert {t.severity for t in templates} == {"info"}
    assert len({t.family for t in templates}) == 1 and templates[0].family is not None


def test_a_part_with_many_values_becomes_a_wildcard() -> None:
    rnd = random.Random(3)
    users = [f"user{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}" for i in range(300)]
    miner = TemplateMiner()
    miner.add_many([f"INFO session opened for {rnd.choice(users)} via sso" for _ in range(3000)], "c")
    assert [t.text for t in miner.templates] == ["INFO session opened for <*> via sso"]


def test_error_and_ok_lines_never_share_a_template() -> None:
    miner = TemplateMiner()
    for i, line in enumerate(_demo_lines(100)):
        miner.add(line, "s")
        if i % 3 == 0:
            miner.add(line.replace(" 200 - ", " 500 - "), "s")
    assert {t.severity for t in miner.templates} == {"info", "error"}
    errors = [t for t in miner.templates if t.severity == "error"]
    assert all(t.text.startswith("<TS> 500 - ") for t in errors)
    assert sum(t.counts["s"] for t in errors) == 34


def test_panics_group_together_apart_from_ordinary_lines() -> None:
    miner = TemplateMiner(max_examples=2)
    for i in range(5):
        miner.add(GO_HTTP_PANIC.replace("41234", str(40000 + i)).replace("goroutine 35", f"goroutine {i}"), "canary")
        miner.add(f"2025/10/09 14:00:0{i} 200 - blue", "canary")
    crash = [t for t in miner.templates if t.crash_signature]
    assert len(crash) == 1
    assert crash[0].counts["canary"] == 5
    assert len(crash[0].examples["canary"]) == 2
    assert crash[0].examples["canary"][0].startswith("2025/10/09 14:00:01 http: panic serving 10.0.0.5:40000")


def test_template_ids_are_deterministic() -> None:
    lines = _demo_lines(200) + ['level=error msg="db down" retry=3', 'level=warn msg="slow" ms=5'] * 3

    def run() -> list[tuple[str, str, dict[str, int]]]:
        m = TemplateMiner()
        m.add_many(lines, "x")
        return [(t.id, t.text, t.counts) for t in m.templates]

    first = run()
    assert first == run()
    assert [t[0] for t in first] == [f"T{i}" for i in range(1, len(first) + 1)]


def test_mining_100k_lines_is_fast() -> None:
    rnd = random.Random(5)
    lines = []
    for i in range(100_000):
        r = rnd.random()
        if r < 0.5:
            lines.append(f"2025/10/09 14:{i // 60 % 60:02d}:{i % 60:02d} 200 - {rnd.choice(['red', 'blue', 'green'])}")
        elif r < 0.9:
            lines.append(
                f'2025/10/09 14:00:00 level=info msg="request served" path=/api/items/{rnd.randint(1, 9999)} '
                f"duration={rnd.random() * 50:.2f}ms id={rnd.getrandbits(64):016x} remote=10.0.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}:{rnd.randint(1024, 65535)}"
            )
        else:
            lines.append(f'2025/10/09 14:00:00 level=warn msg="slow upstream" latency={rnd.randint(200, 999)}ms')
    text = "\n".join(lines)
    start = time.perf_counter()
    miner = TemplateMiner()
    miner.add_many(parse_events(text), "canary")
    elapsed = time.perf_counter() - start
    assert len(miner.templates) <= 8
    assert sum(t.counts["canary"] for t in miner.templates) == 100_000
    assert elapsed < 10.0


@pytest.mark.parametrize(
    "line",
    [
        "a" * 100_000,
        "(" * 100_000,
        "panic(" + "(" * 100_000,
        "1." * 50_000,
        "=" * 100_000,
        "a=" * 50_000,
        "0x" + "f" * 100_000,
        "{" + '"a":' * 25_000,
        "goroutine 1 [running]:\n" + "f(" * 50_000,
        "Traceback (most recent call last):\n" + "a." * 50_000,
    ],
)
def test_pathological_lines_are_handled_fast(line: str) -> None:
    start = time.perf_counter()
    events = parse_events(line)
    for e in events:
        mask(e)
        severity(e)
        is_crash_signature(e)
    TemplateMiner().add_many(events)
    assert time.perf_counter() - start < 1.0


# --- review fixes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("E1126 10:00:00.123456 1 controller.go:42] could not reconcile order 42", "error"),
        ("W1126 10:00:00.123456 1 controller.go:42] slow reconcile of order 42", "warning"),
        ("F1126 10:00:00.123456 1 controller.go:42] cannot start", "error"),
        ("I1126 10:00:00.123456 1 controller.go:42] could not reconcile yet, will requeue", "info"),
    ],
)
def test_klog_severity_survives_masking(line: str, expected: str) -> None:
    assert severity(line) == expected
    assert severity(mask(line)) == expected
    miner = TemplateMiner()
    miner.add(line, "x")
    assert miner.templates[0].severity == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("sync complete processed=120 failed=0", "info"),
        ("batch done errors=0", "info"),
        ('summary "failures": 0 items=3', "info"),
        ("health check passed, no error", "info"),
        ("migration finished with 0 errors", "info"),
        ("migration finished without errors", "info"),
        ("failed to connect to db", "error"),
        ("error: timeout", "error"),
        ("batch done errors=3", "error"),
        ("sync complete processed=120 failed=10", "error"),
        ("migration finished with 10 errors", "error"),
        ("no error in step 1, error in step 2", "error"),
        ("exit code 0x0 error: 0x1f", "error"),
    ],
)
def test_zero_counts_and_negated_error_words_are_not_errors(line: str, expected: str) -> None:
    assert severity(line) == expected
    miner = TemplateMiner()
    miner.add(line, "x")
    assert miner.templates[0].severity == expected


def test_zero_and_nonzero_counts_that_mask_alike_get_separate_templates() -> None:
    miner = TemplateMiner()
    for i in range(20):
        miner.add(f"sync complete processed={i} failed=0", "s")
        if i % 4 == 0:
            miner.add(f"sync complete processed={i} failed={i + 1}", "s")
    by_sev = {t.severity: t for t in miner.templates}
    assert set(by_sev) == {"info", "error"}
    assert by_sev["info"].counts == {"s": 20} and by_sev["error"].counts == {"s": 5}


def test_lines_of_random_words_are_one_template_and_fast() -> None:
    rnd = random.Random(7)
    words = ["".join(rnd.choices("abcdefghijklmnopqrstuvwxyz", k=6)) for _ in range(3000)]
    lines = ["INFO handled " + " ".join(rnd.choices(words, k=6)) for _ in range(20_000)]
    miner = TemplateMiner()
    start = time.monotonic()
    miner.add_many(lines, "c")
    templates = miner.templates
    elapsed = time.monotonic() - start
    assert [t.text for t in templates] == ["INFO handled <*> <*> <*> <*> <*> <*>"]
    assert templates[0].counts["c"] == 20_000
    assert elapsed < 5.0
