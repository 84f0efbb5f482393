"""Log templating: masking, event splitting, severity, crash signatures and template mining."""

from __future__ import annotations

import random
import time

import pytest

from selfheal.domain.logs import (
    TemplateMiner,
    clear_caches,
    is_crash_signature,
    mask,
    parse_events,
    severity,
    strip_ansi,
    unreadable_share,
)
from selfheal.domain.logs.mining import MAX_SPLITS

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


def test_mining_100k_lines_gives_a_few_templates() -> None:
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
    miner = TemplateMiner()
    miner.add_many(parse_events(text), "canary")
    # Speed is measured by bench/bench_logdiff.py and bench/bench_speed.py, not here.
    assert len(miner.templates) <= 8
    assert sum(t.counts["canary"] for t in miner.templates) == 100_000


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
def test_pathological_lines_cost_no_more_than_ordinary_ones(line: str) -> None:
    # Relative to an ordinary line of the same length, processed the same way under the same load:
    # a quadratic or exponential regular expression shows as a ratio of hundreds.
    def cost(text: str) -> float:
        best = float("inf")
        for _ in range(3):
            clear_caches()
            start = time.process_time()
            events = parse_events(text)
            for e in events:
                mask(e)
                severity(e)
                is_crash_signature(e)
            TemplateMiner().add_many(events)
            best = min(best, time.process_time() - start)
        return best

    ordinary = " ".join(f"2025-10-09 INFO request {i} served in {i % 90}ms" for i in range(len(line) // 40 + 1))
    assert cost(line) < 30 * cost(ordinary[: len(line)]) + 0.05


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
    miner.add_many(lines, "c")
    templates = miner.templates
    assert [t.text for t in templates] == ["INFO handled <*> <*> <*> <*> <*> <*>"]
    assert templates[0].counts["c"] == 20_000


def test_lines_of_random_two_valued_words_stay_bounded() -> None:
    # Every position has two values: without a bound on the splits, each line would be a template.
    rnd = random.Random(1)
    lines = [" ".join(rnd.choice(("alpha", "beta")) for _ in range(40)) for _ in range(5000)]
    miner = TemplateMiner()
    miner.add_many(lines, "c")
    assert len(miner.templates) <= 2**MAX_SPLITS
    assert sum(t.counts["c"] for t in miner.templates) == 5000


# --- crashes of every runtime -----------------------------------------------------------------------

CRASH_EVENTS = {
    "node_typeerror": """/app/server.js:42
    const id = req.user.id;
                        ^

TypeError: Cannot read properties of undefined (reading 'id')
    at handler (/app/server.js:42:25)
    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)
    at next (/app/node_modules/express/lib/router/route.js:144:13)""",
    "node_unhandled_error": """node:events:497
      throw er; // Unhandled 'error' event
      ^

Error: connect ECONNREFUSED 10.0.3.7:5432
    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)
Emitted 'error' event on Client instance at:
    at Client._handleErrorEvent (/app/node_modules/pg/lib/client.js:319:10)""",
    "java_npe_logger": """2025-10-09 14:00:04.001 ERROR 1 --- [nio-8080-exec-3] c.e.orders.OrderController : Request processing failed
java.lang.NullPointerException: Cannot invoke "com.example.orders.Customer.getId()" because "customer" is null
\tat com.example.orders.OrderService.place(OrderService.java:88)
\tat com.example.orders.OrderController.create(OrderController.java:41)
\tat java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(DirectMethodHandleAccessor.java:103)""",
    "ruby_nomethod": """E, [2025-10-09T14:00:05.123456 #1] ERROR -- : undefined method `email' for nil:NilClass (NoMethodError)
/app/app/models/user.rb:27:in `notify'
/app/app/controllers/users_controller.rb:12:in `create'""",
    "ruby_rails": """NoMethodError (undefined method `total' for nil):
  app/controllers/carts_controller.rb:18:in `show'""",
    "php_uncaught": """PHP Fatal error:  Uncaught Error: Call to undefined function mb_strtolower() in /var/www/html/src/Slug.php:14
Stack trace:
#0 /var/www/html/index.php(22): App\\Slug::make('Hello')
#1 {main}
  thrown in /var/www/html/src/Slug.php on line 14""",
    "elixir_exit": """14:00:06.120 [error] GenServer Cart.Worker terminating
** (RuntimeError) cart store unavailable
    (cart 0.4.0) lib/cart/worker.ex:41: Cart.Worker.handle_call/3
    (stdlib 5.0) gen_server.erl:1113: :gen_server.try_handle_call/4
Last message: {:get, 42}""",
    "elixir_exit2": """** (EXIT from #PID<0.95.0>) shutdown""",
    "go_log_fatal": """2025/10/09 14:00:07 failed to open database: dial tcp 10.0.0.9:5432: connect: connection refused
exit status 1""",
    "python_keyerror": """2025-10-09 14:00:08,311 ERROR [orders.api] unhandled error in POST /orders
Traceback (most recent call last):
  File "/app/orders/api.py", line 51, in create
    sku = payload["sku"]
KeyError: 'sku'""",
    "signal_killed": "worker 3 exited: signal: killed",
    "dotnet_unhandled": """Unhandled exception. System.InvalidOperationException: Sequence contains no elements
   at System.Linq.ThrowHelper.ThrowNoElementsException()
   at Orders.Api.Program.<Main>$(String[] args) in /src/Orders.Api/Program.cs:line 17""",
    "dotnet_fail": """fail: Microsoft.AspNetCore.Server.Kestrel[13]
      Connection id "0HMV", Request id "0HMV:00000002": An unhandled exception was thrown by the application.
      System.NullReferenceException: Object reference not set to an instance of an object.
         at Orders.Api.Controllers.OrdersController.Get(Int32 id) in /src/Orders.Api/Controllers/OrdersController.cs:line 31""",
    "fatal_level": "FATAL: required configuration key DATABASE_URL is not set",
    "exiting_status": "exiting with status 1",
    "klog_fatal": "F1009 14:00:00.123456       1 main.go:52] failed to load kubeconfig: open /etc/kube: no such file",
    "zap_fatal": '{"level":"fatal","ts":1728482400.12,"caller":"main.go:40","msg":"cannot bind :8080","error":"address already in use"}',
    "pino_fatal": '{"level":60,"time":1728482400123,"pid":1,"msg":"unrecoverable: redis connection lost"}',
    "python_oom": "MemoryError",
    "java_oom": 'Exception in thread "main" java.lang.OutOfMemoryError: Java heap space',
    "node_heap": "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
    "exit_code_137": "process exited with code 137",
    "container_killed": "Killed",
    "rust_panic": "thread 'tokio-runtime-worker' panicked at 'called `Option::unwrap()` on a `None` value', src/handler.rs:88:14",
    "segfault": "Segmentation fault (core dumped)",
    "logrus_panic": 'time="2025-10-09T14:00:00Z" level=panic msg="invariant broken: negative balance"',
    "slog_error_stack": """time=2025-10-09T14:00:00Z level=ERROR msg="request failed" err="boom"
panic: boom

goroutine 7 [running]:
main.handle(...)
\t/app/main.go:30 +0x1d""",
    "python_uncaught_nonlogged": """Traceback (most recent call last):
  File "/app/worker.py", line 9, in <module>
    main()
ZeroDivisionError: division by zero""",
    "java_caused_by": """Exception in thread "kafka-consumer" org.apache.kafka.common.errors.SerializationException: bad record
\tat org.apache.kafka.Foo.bar(Foo.java:10)""",
    "uncaught_promise": "[UnhandledPromiseRejection: This error originated either by throwing inside of an async function without a catch block]",
    "erlang_crash_report": "=CRASH REPORT==== 9-Oct-2025::14:00:00 ===",
    "supervisor_exit": "2025-10-09 14:00:00,000 INFO exited: web (exit status 2; not expected)",
}
NOT_CRASHES = [
    "exit status 0",
    "2025-10-09 14:00:00 INFO worker exited with code 0",
    "Shutdown signal received, terminating gracefully",
    "2025-10-09 14:00:00 INFO recovered gracefully, no panic",
    "INFO Terminating 2 idle connections",
    '{"level":"info","msg":"request completed","status":200,"duration":0.012}',
    "2025-10-09 14:00:00 WARN retrying in 5s after error count=0",
    "2025-10-09 14:00:00 INFO killed 3 stale sessions",
    'level=info msg="exception handler registered"',
    "INFO fatal_errors_total=0",
]


@pytest.mark.parametrize("name", sorted(CRASH_EVENTS))
def test_crash_formats_of_every_runtime_are_crashes(name: str) -> None:
    miner = TemplateMiner()
    miner.add_many(parse_events(CRASH_EVENTS[name]), "canary")
    crashes = [t for t in miner.templates if t.crash_signature]
    assert crashes, [t.text for t in miner.templates]
    assert all(t.severity == "error" for t in crashes)


@pytest.mark.parametrize("line", NOT_CRASHES)
def test_clean_exits_and_crash_words_in_passing_are_not_crashes(line: str) -> None:
    miner = TemplateMiner()
    miner.add_many(parse_events(line), "canary")
    assert not any(t.crash_signature for t in miner.templates)


def test_ansi_coloured_levels_are_read() -> None:
    coloured = "\x1b[2m2025-10-09T14:00:00Z\x1b[0m \x1b[31mERROR\x1b[0m \x1b[1mpayment failed\x1b[0m order=42"
    events = parse_events(coloured)
    assert events == ["2025-10-09T14:00:00Z ERROR payment failed order=42"]
    assert severity(events[0]) == "error"
    assert strip_ansi("\x1b[38;5;196mFATAL\x1b[39m boom") == "FATAL boom"


def test_binary_noise_is_measured() -> None:
    rnd = random.Random(1)
    noise = bytes(rnd.getrandbits(8) for _ in range(200_000)).decode("utf-8", errors="replace")
    assert unreadable_share(noise) > 0.3
    assert unreadable_share("2025-10-09 INFO ok\n\tindented\r\n") == 0.0


def test_deeply_nested_json_is_no_recursion_error() -> None:
    line = "{" + '"a":' + "[" * 2000 + "]" * 2000 + "}"
    assert len(line) > 4000
    assert mask(line)
    assert mask("[" * 4096)
    miner = TemplateMiner()
    miner.add_many(parse_events(line + "\n" + '{"a":' + "[" * 900 + "]" * 900 + "}"), "c")
    assert sum(t.counts["c"] for t in miner.templates) == 2


# --- formats: levels and shapes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"level":50,"time":1728482400123,"pid":1,"hostname":"api-7d9","msg":"db query failed"}', "error"),
        ('{"level":40,"time":1728482400123,"msg":"slow query"}', "warning"),
        ('{"level":30,"time":1728482400123,"msg":"request completed","res":{"statusCode":503}}', "error"),
        ('{"@timestamp":"2025-10-09T14:00:00.000Z","log.level":"error","message":"payment failed"}', "error"),
        ('{"@timestamp":"2025-10-09T14:00:00.000Z","log":{"level":"warn"},"message":"slow"}', "warning"),
        ('{"time":"2025-10-09T14:00:00Z","level":"ERROR","msg":"sync failed","err":"EOF"}', "error"),
        ('time="2025-10-09T14:00:00Z" level=warning msg="cache miss ratio high"', "warning"),
        ("<131>1 2025-10-09T14:00:00Z node-3 sshd 4121 - - error: PAM authentication failed", "error"),
        ("<134>1 2025-10-09T14:00:00Z node-3 cron 4121 - - job started", "info"),
        ("<12>Oct  9 14:00:00 node-3 kernel: disk nearly full", "warning"),
        ("fail: Orders.Api.Controllers.OrdersController[0]", "error"),
        ("info: Microsoft.Hosting.Lifetime[14]", "info"),
        (
            '10.1.2.3 - - [09/Oct/2025:14:00:00 +0000] "POST /api/orders HTTP/1.1" 502 157 "-" "okhttp/4.12" 0.950',
            "error",
        ),
        ('10.1.2.3 - frank [09/Oct/2025:14:00:00 +0000] "GET /apache_pb.gif HTTP/1.0" 200 2326', "info"),
    ],
)
def test_levels_of_common_formats(line: str, expected: str) -> None:
    miner = TemplateMiner()
    miner.add(line, "x")
    assert miner.templates[0].severity == expected


@pytest.mark.parametrize(
    ("line", "status"),
    [
        ('{"DownstreamStatus":502,"Duration":950000000,"RequestMethod":"GET","RequestPath":"/api"}', "502"),
        ('{"level":"info","msg":"handled request","status":503,"duration":0.95,"size":12}', "503"),
        (
            "Oct  9 14:00:00 lb haproxy[123]: 10.0.0.1:5000 [09/Oct/2025:14:00:00.123] fe be/srv1 "
            '0/0/1/950/951 502 215 - - ---- 1/1/0/0/0 0/0 "GET /api HTTP/1.1"',
            "502",
        ),
        ('[2025-10-09T14:00:00.123Z] "GET /api HTTP/1.1" 503 UF 0 91 3 - "10.0.0.1" "curl/8.4"', "503"),
    ],
)
def test_http_statuses_of_proxies_and_json_access_logs(line: str, status: str) -> None:
    miner = TemplateMiner()
    miner.add(line, "x")
    template = miner.templates[0]
    assert template.http_status == status and status in template.text
    assert template.severity == "error"


@pytest.mark.parametrize(
    "line",
    [
        '{"level":"ERROR","loggerName":"c.e.Svc","message":"failed","thrown":{"name":"java.lang.NullPointerException",'
        '"extendedStackTrace":"java.lang.NullPointerException: null\\n\\tat com.e.Svc.run(Svc.java:12)\\n\\tat com.e.Main.main(Main.java:5)"}}',
        '{"@timestamp":"2025-10-09T14:00:00Z","log.level":"error","message":"boom","error":{"type":"KeyError",'
        '"stack_trace":"Traceback (most recent call last):\\n  File \\"/app/x.py\\", line 3, in f\\n    y\\nKeyError: \'a\'"}}',
        '{"level":50,"msg":"request failed","err":{"type":"TypeError","message":"x is undefined",'
        '"stack":"TypeError: x is undefined\\n    at handler (/app/a.js:3:9)\\n    at /app/b.js:7:1"}}',
    ],
)
def test_a_stack_trace_inside_a_json_field_is_a_crash(line: str) -> None:
    miner = TemplateMiner()
    miner.add(line, "x")
    assert miner.templates[0].crash_signature


def test_json_fields_in_another_order_are_one_template() -> None:
    miner = TemplateMiner()
    for i in range(20):
        miner.add(f'{{"level":"info","msg":"cart saved","items":{i},"user":"u{i}x"}}', "stable")
        miner.add(f'{{"user":"u{i}x","items":{i},"msg":"cart saved","level":"info"}}', "canary")
    assert len(miner.templates) == 1
    assert miner.templates[0].counts == {"stable": 20, "canary": 20}


def test_many_message_types_of_one_length_stay_apart() -> None:
    # Forty kinds of events share their first words and their length, each with a parameter;
    # each kind is its own template, however many kinds there are.
    rnd = random.Random(11)
    subjects = ["cache", "queue", "index", "ledger", "mailer", "billing", "search", "session"]
    actions = [
        ("flushed", "stale entries"),
        ("rebuilt", "its shards"),
        ("paused", "new intake"),
        ("resumed", "old work"),
        ("trimmed", "cold segments"),
    ]
    kinds = [(s, verb, obj) for s in subjects for verb, obj in actions]
    lines = []
    for i in range(4000):
        s, verb, obj = kinds[i % len(kinds)]
        lines.append(
            f"2025-10-09 14:00:{i % 60:02d} INFO {s} {verb} {obj} on node-{rnd.choice('abcdefghijklmnopqrstuvwxyz')}{rnd.choice('abcdefghijklmnopqrstuvwxyz')}"
        )
    miner = TemplateMiner()
    miner.add_many(lines, "c")
    texts = sorted(t.text for t in miner.templates)
    assert texts == sorted(f"<TS> INFO {s} {verb} {obj} on <*>" for s, verb, obj in kinds)


def test_a_rare_event_next_to_similar_ones_is_not_swallowed() -> None:
    rnd = random.Random(12)
    topics = [f"topic{chr(97 + i)}{chr(97 + j)}" for i in range(6) for j in range(6)]
    lines = [
        f"INFO consumer committed offset for {rnd.choice(topics)} partition {rnd.randint(0, 11)}" for _ in range(3000)
    ]
    lines += [
        f"INFO consumer rebalanced offset for {rnd.choice(topics)} partition {rnd.randint(0, 11)}" for _ in range(4)
    ]
    miner = TemplateMiner()
    miner.add_many(lines, "c")
    rare = [t for t in miner.templates if "rebalanced" in t.text]
    assert len(rare) == 1 and rare[0].counts["c"] == 4
    assert "committed" not in rare[0].text


# --- fields: latencies and sizes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "name", "seconds"),
    [
        ("2025/10/09 14:00:00 200 - blue (2.000000s)", "duration", 2.0),
        (
            '10.1.2.3 - - [09/Oct/2025:14:00:00 +0000] "GET /api HTTP/1.1" 200 157 "-" "curl/8.4" 0.950',
            "request_time",
            0.95,
        ),
        ('time=2025-10-09T14:00:00Z level=info msg="handled" path=/api latency=12.5ms', "latency", 0.0125),
        ('{"level":"info","ts":1728482400.1,"msg":"served","latency":0.48}', "latency", 0.48),
        ('{"level":30,"msg":"request completed","responseTime":950,"res":{"statusCode":200}}', "responseTime", 0.95),
        (
            '{"message":"done","event":{"duration":950000000},"http":{"response":{"status_code":200}}}',
            "event.duration",
            0.95,
        ),
        ('{"msg":"query","duration_ms":45}', "duration_ms", 0.045),
        ("2025-10-09 14:00:00,120 INFO export took 1m30s", "duration", 90.0),
        ('level=info msg="request" took=150', "took", 0.15),
        ("Request finished HTTP/1.1 GET /orders - 200 - application/json 12.3ms", "duration", 0.0123),
    ],
)
def test_latencies_are_read_in_seconds(line: str, name: str, seconds: float) -> None:
    miner = TemplateMiner()
    miner.add(line, "c")
    series = miner.templates[0].numbers[name]
    assert series.kind == "latency"
    assert series.sides["c"].values == [pytest.approx(seconds)]


@pytest.mark.parametrize(
    "line",
    [
        "2025-10-09 14:00:00 WARN upstream refused, retrying in 5s",
        "level=info msg=cached ttl=30s",
        "2025-10-09 14:00:00 INFO sleeping for 2s before the next poll",
        'level=info msg="pool" idle_timeout=10m',
    ],
)
def test_waits_and_settings_are_not_latencies(line: str) -> None:
    miner = TemplateMiner()
    miner.add(line, "c")
    assert not any(s.kind == "latency" for s in miner.templates[0].numbers.values())


def test_sizes_are_read_in_bytes() -> None:
    miner = TemplateMiner()
    miner.add('10.1.2.3 - - [09/Oct/2025:14:00:00 +0000] "GET / HTTP/1.1" 200 2326', "c")
    miner.add('level=info msg="upload" size=1.5MB', "c")
    by_name = {n: s for t in miner.templates for n, s in t.numbers.items()}
    assert by_name["bytes"].sides["c"].values == [2326.0]
    assert by_name["size"].sides["c"].values == [1.5e6]


def test_samples_stay_bounded_and_spread_over_the_log() -> None:
    miner = TemplateMiner()
    for i in range(50_000):
        miner.add(f"level=info msg=served latency={i}ms", "c")
    samples = miner.templates[0].numbers["latency"].sides["c"]
    assert samples.seen == 50_000
    assert 4096 <= len(samples.values) < 8192
    assert min(samples.values) < 1.0 and max(samples.values) > 45.0
