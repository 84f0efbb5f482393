"""Stack traces and crash lines of the labelled corpus, one per runtime, as each prints them."""

from __future__ import annotations

import random
from datetime import datetime

from formats import rid


def go_panic(rng: random.Random, t: datetime) -> list[str]:
    g = rng.randint(20, 900)
    return [
        f"{t.strftime('%Y/%m/%d %H:%M:%S')} http: panic serving 10.1.{rng.randint(0, 9)}.{rng.randint(2, 200)}:{rng.randint(30000, 60000)}: runtime error: invalid memory address or nil pointer dereference",
        f"goroutine {g} [running]:",
        "net/http.(*conn).serve.func1()",
        "\t/usr/local/go/src/net/http/server.go:1898 +0xbe",
        "panic({0x9a3c40?, 0xf1c2a0?})",
        "\t/usr/local/go/src/runtime/panic.go:770 +0x132",
        f"github.com/acme/checkout/internal/cart.(*Service).Total(0x0, {{0xb0e1d8, 0xc000{rng.randint(100000, 999999)}}})",
        "\t/src/internal/cart/service.go:142 +0x3a",
        "github.com/acme/checkout/internal/http.(*Handler).Checkout(0xc0001a2000, {0xb0b2a0, 0xc0002e4000}, 0xc0002d8000)",
        "\t/src/internal/http/handler.go:88 +0x1f4",
        "created by net/http.(*Server).Serve in goroutine 1",
        "\t/usr/local/go/src/net/http/server.go:3285 +0x4b4",
    ]


def java_npe(rng: random.Random, t: datetime) -> list[str]:
    return [
        f"{t.strftime('%Y-%m-%d %H:%M:%S')}.{rng.randint(0, 999):03d} ERROR 1 --- [http-nio-8080-exec-{rng.randint(1, 10)}] o.a.c.c.C.[.[.[/].[dispatcherServlet]    : Servlet.service() for servlet [dispatcherServlet] threw exception",
        'java.lang.NullPointerException: Cannot invoke "com.acme.billing.Invoice.getCustomer()" because "invoice" is null',
        "\tat com.acme.billing.InvoiceService.settle(InvoiceService.java:118)",
        "\tat com.acme.billing.web.InvoiceController.settle(InvoiceController.java:57)",
        "\tat java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(DirectMethodHandleAccessor.java:103)",
        "\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885)",
        "\t... 48 common frames omitted",
    ]


def python_keyerror(rng: random.Random, t: datetime) -> list[str]:
    return [
        f"{t.strftime('%Y-%m-%d %H:%M:%S')},{rng.randint(0, 999):03d} ERROR [django.request] Internal Server Error: /api/orders/{rng.randint(1, 9999)}",
        "Traceback (most recent call last):",
        '  File "/usr/local/lib/python3.12/site-packages/django/core/handlers/exception.py", line 55, in inner',
        "    response = get_response(request)",
        '  File "/app/orders/views.py", line 74, in create',
        '    sku = payload["sku"]',
        "KeyError: 'sku'",
    ]


def node_typeerror(rng: random.Random, t: datetime) -> list[str]:
    return [
        "TypeError: Cannot read properties of undefined (reading 'items')",
        "    at computeTotal (/app/src/cart/total.js:18:29)",
        "    at /app/src/routes/cart.js:42:17",
        "    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)",
        "    at next (/app/node_modules/express/lib/router/route.js:149:13)",
    ]


def ruby_nomethod(rng: random.Random, t: datetime) -> list[str]:
    return [
        f"F, [{t.strftime('%Y-%m-%dT%H:%M:%S')}.{rng.randint(0, 999999):06d} #12] FATAL -- : [{rid(rng, 8)}]",
        "  NoMethodError (undefined method `price_cents' for nil):",
        "  app/models/line_item.rb:14:in `subtotal'",
        "  app/controllers/carts_controller.rb:22:in `show'",
    ]


def dotnet_nre(rng: random.Random, t: datetime) -> list[str]:
    return [
        "fail: Microsoft.AspNetCore.Diagnostics.ExceptionHandlerMiddleware[1]",
        "      An unhandled exception has occurred while executing the request.",
        "      System.NullReferenceException: Object reference not set to an instance of an object.",
        "         at Catalog.Api.Services.PriceService.Quote(Product product) in /src/Catalog.Api/Services/PriceService.cs:line 41",
        "         at Catalog.Api.Controllers.ProductsController.Get(Int32 id) in /src/Catalog.Api/Controllers/ProductsController.cs:line 29",
    ]


def php_uncaught(rng: random.Random, t: datetime) -> list[str]:
    return [
        f"[{t.strftime('%d-%b-%Y %H:%M:%S')} UTC] PHP Fatal error:  Uncaught TypeError: Cart::total(): Argument #1 ($items) must be of type array, null given, called in /var/www/src/Checkout.php on line 31 and defined in /var/www/src/Cart.php:12",
        "Stack trace:",
        "#0 /var/www/src/Checkout.php(31): Cart->total(NULL)",
        "#1 /var/www/public/index.php(18): Checkout->run()",
        "#2 {main}",
        "  thrown in /var/www/src/Cart.php on line 12",
    ]


def elixir_crash(rng: random.Random, t: datetime) -> list[str]:
    return [
        f"{t.strftime('%H:%M:%S')}.{rng.randint(0, 999):03d} [error] GenServer Cart.Store terminating",
        "** (RuntimeError) connection to redis lost",
        "    (cart 1.4.0) lib/cart/store.ex:61: Cart.Store.handle_call/3",
        "    (stdlib 5.2) gen_server.erl:1131: :gen_server.try_handle_call/4",
        "Last message (from #PID<0.2314.0>): {:get, 88}",
    ]


def kafka_fatal(rng: random.Random, t: datetime) -> list[str]:
    return [
        f"[{t.strftime('%Y-%m-%d %H:%M:%S')},{rng.randint(0, 999):03d}] ERROR [ReplicaManager broker=2] Error processing append operation on partition orders-{rng.randint(0, 11)} (kafka.server.ReplicaManager)",
        "org.apache.kafka.common.errors.CorruptRecordException: Record size 0 is less than the minimum record overhead (14)",
        "\tat kafka.log.LogValidator$.validateRecord(LogValidator.scala:398)",
        "\tat kafka.log.UnifiedLog.append(UnifiedLog.scala:782)",
    ]


def klog_panic(rng: random.Random, t: datetime) -> list[str]:
    return [
        f'E{t.strftime("%m%d %H:%M:%S")}.{rng.randint(0, 999999):06d}       1 runtime.go:79] Observed a panic: "invalid memory address or nil pointer dereference" (runtime error: invalid memory address or nil pointer dereference)',
        "goroutine 214 [running]:",
        "k8s.io/apimachinery/pkg/util/runtime.logPanic({0x1b3e2a0, 0x2d4f5e0})",
        "\t/go/pkg/mod/k8s.io/apimachinery@v0.30.1/pkg/util/runtime/runtime.go:75 +0x85",
        "github.com/acme/backup-operator/controllers.(*BackupReconciler).Reconcile(0xc0004a2f00, {0x1f0a3a8, 0xc0009d2a50})",
        "\t/workspace/controllers/backup_controller.go:97 +0x2c1",
    ]


def systemd_killed(rng: random.Random, t: datetime) -> list[str]:
    return [
        f"{t.strftime('%b %d %H:%M:%S')} node-7 systemd[1]: postfix.service: Main process exited, code=killed, status=9/KILL",
    ]


def redis_crash(rng: random.Random, t: datetime) -> list[str]:
    return [
        f"1:M {t.strftime('%d %b %Y %H:%M:%S')}.{rng.randint(0, 999):03d} # Redis 7.2.4 crashed by signal: 11, si_code: 1",
        f"1:M {t.strftime('%d %b %Y %H:%M:%S')}.{rng.randint(0, 999):03d} # Crashed running the instruction at: 0x55d7f5e1a3b2",
    ]


def postgres_panic(rng: random.Random, t: datetime) -> list[str]:
    return [
        f'{t.strftime("%Y-%m-%d %H:%M:%S")}.{rng.randint(0, 999):03d} UTC [{rng.randint(100, 9999)}] PANIC:  could not write to file "pg_wal/xlogtemp.{rng.randint(100, 999)}": No space left on device',
        f"{t.strftime('%Y-%m-%d %H:%M:%S')}.{rng.randint(0, 999):03d} UTC [1] LOG:  server process (PID {rng.randint(100, 9999)}) was terminated by signal 6: Aborted",
    ]
