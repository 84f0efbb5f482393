"""The software of the labelled corpus: web servers, services in six languages, daemons, databases, queues."""

from __future__ import annotations

import random
from datetime import datetime

from formats import (
    App,
    Event,
    apache_common,
    bunyan_event,
    bunyan_request,
    dotnet_event,
    dotnet_request,
    ecs_event,
    ecs_request,
    elixir_event,
    elixir_request,
    kafka_event,
    klog_event,
    logfmt_event,
    logfmt_request,
    nginx_combined,
    php_event,
    pino_event,
    pino_request,
    postgres_event,
    python_event,
    python_request,
    rails_event,
    rails_request,
    redis_event,
    rid,
    spring_event,
    spring_request,
    syslog3164_event,
    syslog5424_event,
    zap_event,
    zap_request,
)


def ev(level: str, message: str, logger: str = "main", **fields: object) -> Event:
    return Event(level, message, dict(fields), logger)


# --- stack traces, one per runtime -------------------------------------------------------------------


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


# --- the catalogue -------------------------------------------------------------------------------------

WEB_ROUTES = [
    ("GET", "/"),
    ("GET", "/products/{id}"),
    ("GET", "/static/app.js"),
    ("POST", "/api/cart"),
    ("GET", "/api/search"),
    ("GET", "/healthz"),
]


def _apps() -> list[App]:
    return [
        App(
            "nginx-ingress",
            "web",
            WEB_ROUTES,
            [],
            [],
            lambda r: ev(
                "error",
                f'upstream prematurely closed connection while reading response header from upstream, client: 10.0.{r.randint(0, 9)}.{r.randint(2, 200)}, server: shop.example.com, request: "GET /api/cart HTTP/1.1"',
                "nginx",
            ),
            lambda r, t: [
                f"{t.strftime('%Y/%m/%d %H:%M:%S')} [crit] 31#31: *{r.randint(1000, 99999)} SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share) while SSL handshaking"
            ],
            [
                ev("info", 'using the "epoll" event method', "nginx"),
                ev("info", "nginx/1.27.1", "nginx"),
                ev("info", "start worker processes", "nginx"),
            ],
            ev("fatal", 'host not found in upstream "cart-svc:8080" in /etc/nginx/conf.d/default.conf:14', "nginx"),
            nginx_combined,
            lambda e, t, r: (
                f"{t.strftime('%Y/%m/%d %H:%M:%S')} [{ {'fatal': 'emerg', 'warn': 'warn'}.get(e.level, e.level) }] 1#1: {e.message}"
            ),
            base_latency=0.08,
        ),
        App(
            "apache-httpd",
            "web",
            [("GET", "/"), ("GET", "/docs/{id}.html"), ("GET", "/images/logo.png"), ("POST", "/cgi-bin/search")],
            [],
            [],
            lambda r: ev(
                "error",
                f"[proxy:error] [pid {r.randint(100, 999)}] (111)Connection refused: AH00957: http: attempt to connect to 10.2.0.{r.randint(2, 50)}:8009 (backend) failed",
            ),
            lambda r, t: [
                f"[{t.strftime('%a %b %d %H:%M:%S')}.{r.randint(0, 999999):06d} 2026] [core:notice] [pid 1] AH00052: child pid {r.randint(100, 999)} exit signal Segmentation fault (11)"
            ],
            [ev("info", "AH00163: Apache/2.4.62 (Unix) configured -- resuming normal operations")],
            ev(
                "fatal",
                "AH00526: Syntax error on line 52 of /usr/local/apache2/conf/httpd.conf: Invalid command 'SSLEngine'",
            ),
            apache_common,
            lambda e, t, r: (
                f"[{t.strftime('%a %b %d %H:%M:%S')}.{r.randint(0, 999999):06d} 2026] [core:{ {'fatal': 'emerg'}.get(e.level, e.level) }] [pid 1] {e.message}"
            ),
            base_latency=0.02,
        ),
        App(
            "checkout-go",
            "web",
            [("POST", "/v1/checkout"), ("GET", "/v1/cart/{id}"), ("GET", "/healthz"), ("POST", "/v1/cart/{id}/items")],
            [
                (0.05, lambda r: ev("debug", "cache hit", key=f"cart:{r.randint(1, 9999)}")),
                (0.02, lambda r: ev("warn", "slow downstream", service="pricing", elapsed=f"{r.randint(300, 900)}ms")),
            ],
            [
                (
                    0.004,
                    lambda r: ev(
                        "error",
                        "payment authorization declined",
                        provider="stripe",
                        code="card_declined",
                        order=r.randint(10000, 99999),
                    ),
                )
            ],
            lambda r: ev(
                "error",
                "failed to publish order event",
                topic="orders.v1",
                err='"kafka: client has run out of available brokers"',
            ),
            go_panic,
            [
                ev("info", "starting checkout", version="2.4.0"),
                ev("info", "connected to postgres", host="pg-primary:5432"),
                ev("info", "listening", addr=":8080"),
            ],
            ev("fatal", "required configuration key DATABASE_URL is not set"),
            logfmt_request,
            logfmt_event,
        ),
        App(
            "payments-zap",
            "web",
            [("POST", "/v2/payments"), ("GET", "/v2/payments/{id}"), ("POST", "/v2/refunds")],
            [
                (0.06, lambda r: ev("debug", "idempotency key stored", "store", key=rid(r, 24))),
                (0.01, lambda r: ev("warn", "retrying acquirer call", "client", attempt=r.randint(1, 3))),
            ],
            [
                (
                    0.003,
                    lambda r: ev(
                        "error", "acquirer timeout", "client", acquirer="adyen", error="context deadline exceeded"
                    ),
                )
            ],
            lambda r: ev(
                "error",
                "ledger write rejected",
                "ledger",
                error='pq: duplicate key value violates unique constraint "ledger_entries_pkey"',
            ),
            go_panic,
            [ev("info", "starting payments", "main", version="5.1.2"), ev("info", "listening", "main", addr=":9000")],
            ev(
                "fatal", "cannot load signing key", "main", error="open /secrets/signing.pem: no such file or directory"
            ),
            zap_request,
            zap_event,
            base_latency=0.12,
        ),
        App(
            "inventory-slog",
            "worker",
            [],
            [
                (
                    0.5,
                    lambda r: ev(
                        "info",
                        "stock level synced",
                        warehouse=r.choice(["ams1", "fra2", "dub1"]),
                        sku=f"SKU-{r.randint(1000, 9999)}",
                        took=f"{r.randint(5, 90)}ms",
                    ),
                ),
                (0.3, lambda r: ev("info", "reservation expired", reservation=rid(r, 12))),
                (0.1, lambda r: ev("debug", "batch fetched", size=r.randint(50, 500))),
            ],
            [(0.005, lambda r: ev("error", "warehouse api returned 503", warehouse="fra2", attempt=r.randint(1, 5)))],
            lambda r: ev(
                "error",
                "negative stock after reservation",
                sku=f"SKU-{r.randint(1000, 9999)}",
                level_after=-r.randint(1, 5),
            ),
            go_panic,
            [ev("info", "inventory worker starting", version="1.9.0"), ev("info", "subscribed", queue="stock-updates")],
            ev("fatal", "cannot reach message broker", addr="amqp://rabbitmq:5672", error="connection refused"),
            None,
            lambda e, t, r: (
                logfmt_event(e, t, r)
                .replace("level=", "level=")
                .replace(f"level={e.level}", f"level={e.level.upper()}")
            ),
        ),
        App(
            "cart-node",
            "web",
            [("GET", "/cart"), ("POST", "/cart/items"), ("DELETE", "/cart/items/{id}"), ("GET", "/health")],
            [
                (0.05, lambda r: ev("debug", "session loaded", session=rid(r, 20))),
                (0.01, lambda r: ev("warn", "redis latency high", ms=r.randint(100, 400))),
            ],
            [(0.003, lambda r: ev("error", "promo service unavailable", code="ECONNRESET"))],
            lambda r: ev("error", "cart merge conflict", cart=rid(r, 10), strategy="last-write-wins"),
            lambda r, t: node_typeerror(r, t),
            [
                ev("info", "cart service starting", version="3.2.0"),
                ev("info", "Server listening at http://0.0.0.0:3000"),
            ],
            ev("fatal", "uncaught exception: Error: listen EADDRINUSE: address already in use :::3000"),
            pino_request,
            pino_event,
            base_latency=0.03,
        ),
        App(
            "search-node",
            "web",
            [("GET", "/search"), ("GET", "/suggest"), ("GET", "/health")],
            [
                (0.1, lambda r: ev("info", "index refreshed", docs=r.randint(10000, 20000), took=r.randint(40, 300))),
                (0.02, lambda r: ev("warn", "query too broad", terms=r.randint(1, 3))),
            ],
            [(0.003, lambda r: ev("error", "elasticsearch request failed", status=429))],
            lambda r: ev("error", "synonym file could not be parsed", line=r.randint(1, 400)),
            lambda r, t: node_typeerror(r, t),
            [ev("info", "search api starting"), ev("info", "connected to elasticsearch")],
            ev("fatal", "Unhandled 'error' event: connect ECONNREFUSED 10.0.4.7:9200"),
            bunyan_request,
            bunyan_event,
        ),
        App(
            "orders-django",
            "web",
            [("GET", "/api/orders/{id}"), ("POST", "/api/orders"), ("GET", "/api/orders"), ("GET", "/healthz")],
            [
                (0.05, lambda r: ev("info", f"order {r.randint(10000, 99999)} confirmed", "orders.service")),
                (0.01, lambda r: ev("warn", "slow query on orders_order", "django.db.backends")),
            ],
            [(0.003, lambda r: ev("error", "email delivery failed for order", "orders.notify"))],
            lambda r: ev("error", f"tax calculation failed for region {r.choice(['NL', 'DE', 'FR'])}", "orders.tax"),
            python_keyerror,
            [
                ev("info", "Starting gunicorn 22.0.0", "gunicorn.error"),
                ev("info", "Listening at: http://0.0.0.0:8000 (1)", "gunicorn.error"),
                ev("info", "Booting worker with pid: 7", "gunicorn.error"),
            ],
            ev("fatal", "Worker failed to boot.", "gunicorn.error"),
            python_request,
            python_event,
        ),
        App(
            "billing-spring",
            "web",
            [("GET", "/invoices/{id}"), ("POST", "/invoices/{id}/settle"), ("GET", "/actuator/health")],
            [
                (
                    0.05,
                    lambda r: ev(
                        "info", f"Invoice INV-{r.randint(10000, 99999)} rendered", "c.e.billing.render.PdfRenderer"
                    ),
                ),
                (
                    0.02,
                    lambda r: ev(
                        "debug",
                        "HikariPool-1 - Pool stats (total=10, active=2, idle=8, waiting=0)",
                        "com.zaxxer.hikari.pool.HikariPool",
                    ),
                ),
            ],
            [
                (
                    0.003,
                    lambda r: ev(
                        "error", "Tax service call failed: 503 Service Unavailable", "c.e.billing.tax.TaxClient"
                    ),
                )
            ],
            lambda r: ev("error", "Could not reconcile payment batch", "c.e.billing.recon.Reconciler"),
            java_npe,
            [
                ev("info", "Starting BillingApplication v4.3.0 using Java 21.0.4", "c.e.billing.BillingApplication"),
                ev(
                    "info",
                    "Tomcat started on port 8080 (http) with context path '/'",
                    "o.s.b.w.embedded.tomcat.TomcatWebServer",
                ),
            ],
            ev(
                "fatal",
                "APPLICATION FAILED TO START: Failed to configure a DataSource: 'url' attribute is not specified",
                "o.s.b.d.LoggingFailureAnalysisReporter",
            ),
            spring_request,
            spring_event,
            base_latency=0.09,
        ),
        App(
            "catalog-dotnet",
            "web",
            [("GET", "/products/{id}"), ("GET", "/products"), ("GET", "/health")],
            [
                (
                    0.05,
                    lambda r: ev(
                        "info", f"Cache refreshed with {r.randint(100, 900)} products", "Catalog.Api.Cache.ProductCache"
                    ),
                )
            ],
            [(0.003, lambda r: ev("error", "Failed to fetch stock for product", "Catalog.Api.Clients.StockClient"))],
            lambda r: ev("error", "Image resize failed: unsupported format", "Catalog.Api.Images.Resizer"),
            dotnet_nre,
            [
                ev("info", "Now listening on: http://[::]:8080", "Microsoft.Hosting.Lifetime"),
                ev("info", "Application started. Press Ctrl+C to shut down.", "Microsoft.Hosting.Lifetime"),
            ],
            ev(
                "fatal",
                "Unhandled exception. System.InvalidOperationException: No connection string named 'Catalog' could be found",
                "Microsoft.AspNetCore.Hosting.Diagnostics",
            ),
            dotnet_request,
            dotnet_event,
        ),
        App(
            "storefront-rails",
            "web",
            [("GET", "/"), ("GET", "/products/{id}"), ("POST", "/cart"), ("GET", "/checkout")],
            [
                (
                    0.05,
                    lambda r: ev(
                        "info",
                        f"Rendered products/show.html.erb within layouts/application (Duration: {r.randint(3, 40)}.{r.randint(0, 9)}ms | Allocations: {r.randint(1000, 9000)})",
                    ),
                ),
                (0.01, lambda r: ev("warn", "Cache miss for fragment views/products/featured")),
            ],
            [(0.003, lambda r: ev("error", "Sidekiq job MailerJob failed: Net::ReadTimeout"))],
            lambda r: ev(
                "error", f"Stripe::CardError: Your card has insufficient funds. (order {r.randint(1000, 9999)})"
            ),
            ruby_nomethod,
            [ev("info", "=> Booting Puma"), ev("info", "* Listening on http://0.0.0.0:3000")],
            ev(
                "fatal",
                '/app/config/initializers/stripe.rb:3:in `fetch\': key not found: "STRIPE_SECRET_KEY" (KeyError)',
            ),
            rails_request,
            rails_event,
            base_latency=0.11,
        ),
        App(
            "backup-operator",
            "daemon",
            [],
            [
                (
                    0.5,
                    lambda r: ev(
                        "info",
                        "Reconciling Backup",
                        "backup_controller",
                        backup=f"db-{r.randint(1, 40)}",
                        namespace=r.choice(["shop", "billing", "search"]),
                    ),
                ),
                (
                    0.3,
                    lambda r: ev(
                        "info", "Snapshot uploaded", "uploader", bucket="s3://backups", bytes=r.randint(10**6, 10**9)
                    ),
                ),
                (0.1, lambda r: ev("warn", "Requeue after conflict", "backup_controller")),
            ],
            [(0.005, lambda r: ev("error", "Reconciler error", "controller", error="etcdserver: request timed out"))],
            lambda r: ev(
                "error",
                "failed to list VolumeSnapshots",
                "backup_controller",
                error="the server could not find the requested resource",
            ),
            klog_panic,
            [
                ev("info", "Starting EventSource", "controller"),
                ev("info", "Starting workers", "controller", worker_count=4),
            ],
            ev("fatal", "unable to start manager", "main", error="failed to get server groups: Unauthorized"),
            None,
            klog_event,
        ),
        App(
            "mail-relay",
            "daemon",
            [],
            [
                (
                    0.4,
                    lambda r: ev(
                        "info",
                        f"{rid(r, 10).upper()}: to=<{r.choice(['ana', 'ben', 'chen'])}@example.com>, relay=mx{r.randint(1, 3)}.example.net[203.0.113.{r.randint(2, 250)}]:25, delay={r.randint(0, 3)}.{r.randint(1, 9)}, status=sent (250 2.0.0 OK)",
                        "postfix/smtp",
                    ),
                ),
                (0.3, lambda r: ev("info", f"connect from unknown[198.51.100.{r.randint(2, 250)}]", "postfix/smtpd")),
                (
                    0.2,
                    lambda r: ev(
                        "info",
                        f"disconnect from unknown[198.51.100.{r.randint(2, 250)}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
                        "postfix/smtpd",
                    ),
                ),
            ],
            [
                (
                    0.004,
                    lambda r: ev(
                        "warn",
                        f"{rid(r, 10).upper()}: to=<x@example.org>, relay=none, delay=30, status=deferred (connect to example.org[192.0.2.1]:25: Connection timed out)",
                        "postfix/smtp",
                    ),
                )
            ],
            lambda r: ev(
                "error",
                "fatal: open lock file /var/lib/postfix/master.lock: unable to set exclusive lock: Resource temporarily unavailable",
                "postfix/master",
            ),
            systemd_killed,
            [ev("info", "daemon started -- version 3.8.6, configuration /etc/postfix", "postfix/master")],
            ev("fatal", "fatal: bad numerical configuration: message_size_limit = 10MB", "postfix/postfix-script"),
            None,
            syslog3164_event,
        ),
        App(
            "queue-consumer",
            "queue",
            [],
            [
                (
                    0.6,
                    lambda r: ev(
                        "info",
                        "message processed",
                        "consumer",
                        queue="invoices",
                        delivery_tag=r.randint(1, 10**6),
                        duration_ms=r.randint(5, 120),
                    ),
                ),
                (0.2, lambda r: ev("info", "heartbeat", "amqp")),
            ],
            [(0.004, lambda r: ev("error", "message rejected", "consumer", queue="invoices", reason="validation"))],
            lambda r: ev("error", "dead-lettered after max retries", "consumer", queue="invoices", retries=5),
            lambda r, t: [syslog5424_event(ev("fatal", "panic: send on closed channel", "consumer"), t, r)],
            [ev("info", "consumer starting", "consumer"), ev("info", "channel opened", "amqp", prefetch=50)],
            ev("fatal", "cannot declare queue invoices: PRECONDITION_FAILED", "consumer"),
            None,
            syslog5424_event,
        ),
        App(
            "ledger-ecs",
            "web",
            [("POST", "/ledger/entries"), ("GET", "/ledger/accounts/{id}"), ("GET", "/health")],
            [(0.05, lambda r: ev("info", "balance snapshot written", account=f"acct-{r.randint(1, 500)}"))],
            [
                (
                    0.003,
                    lambda r: ev(
                        "error", "snapshot write failed", error={"type": "TimeoutError", "message": "write timed out"}
                    ),
                )
            ],
            lambda r: ev(
                "error", "double entry mismatch", error={"type": "LedgerInvariantError", "message": "debits != credits"}
            ),
            lambda r, t: [
                ecs_event(
                    ev(
                        "fatal",
                        "unhandled exception: LedgerInvariantError",
                        error={"type": "LedgerInvariantError", "stack_trace": "Traceback (most recent call last): ..."},
                    ),
                    t,
                    r,
                )
            ],
            [ev("info", "ledger service started")],
            ev("fatal", "cannot open ledger database"),
            ecs_request,
            ecs_event,
        ),
        App(
            "postgres",
            "database",
            [],
            [
                (
                    0.5,
                    lambda r: ev(
                        "info",
                        f"duration: {r.randint(1, 90)}.{r.randint(100, 999)} ms  statement: SELECT * FROM orders WHERE id = {r.randint(1, 99999)}",
                    ),
                ),
                (
                    0.2,
                    lambda r: ev(
                        "info",
                        f"checkpoint complete: wrote {r.randint(10, 900)} buffers ({r.randint(0, 9)}.{r.randint(0, 9)}%); 0 WAL file(s) added, 0 removed, 1 recycled",
                    ),
                ),
                (
                    0.1,
                    lambda r: ev(
                        "info", f'automatic vacuum of table "shop.public.orders": index scans: {r.randint(0, 2)}'
                    ),
                ),
            ],
            [(0.004, lambda r: ev("error", 'duplicate key value violates unique constraint "orders_pkey"'))],
            lambda r: ev("error", "deadlock detected"),
            postgres_panic,
            [
                ev("info", "starting PostgreSQL 16.4 on x86_64-pc-linux-gnu"),
                ev("info", 'listening on IPv4 address "0.0.0.0", port 5432'),
                ev("info", "database system is ready to accept connections"),
            ],
            ev("fatal", 'could not access file "pg_stat_statements": No such file or directory'),
            None,
            postgres_event,
        ),
        App(
            "redis",
            "database",
            [],
            [
                (0.5, lambda r: ev("info", f"{r.randint(1, 100)} changes in 300 seconds. Saving...")),
                (0.3, lambda r: ev("info", f"Background saving started by pid {r.randint(100, 999)}")),
                (0.2, lambda r: ev("info", "Background saving terminated with success")),
            ],
            [(0.004, lambda r: ev("warn", "WARNING Memory overcommit must be enabled!"))],
            lambda r: ev("error", "Error accepting a client connection: Too many open files"),
            redis_crash,
            [
                ev("info", "Redis version=7.2.4, bits=64, commit=00000000, modified=0, pid=1, just started"),
                ev("info", "Ready to accept connections tcp"),
            ],
            ev("fatal", "Fatal error loading the DB: Invalid argument. Exiting."),
            None,
            redis_event,
        ),
        App(
            "kafka-broker",
            "queue",
            [],
            [
                (
                    0.5,
                    lambda r: ev(
                        "info",
                        f"[GroupCoordinator 2]: Member consumer-{r.randint(1, 9)}-{rid(r, 8)} in group billing has left, removing it from the group",
                        "kafka.coordinator.group.GroupCoordinator",
                    ),
                ),
                (
                    0.3,
                    lambda r: ev(
                        "info",
                        f"[LocalLog partition=orders-{r.randint(0, 11)}, dir=/var/lib/kafka] Rolled new log segment at offset {r.randint(10**5, 10**7)} in {r.randint(1, 9)} ms.",
                        "kafka.log.LocalLog",
                    ),
                ),
            ],
            [
                (
                    0.004,
                    lambda r: ev(
                        "warn",
                        "[ReplicaFetcher replicaId=2, leaderId=1, fetcherId=0] Error in response for fetch request (type=FetchRequest, replicaId=2, maxWait=500)",
                        "kafka.server.ReplicaFetcherThread",
                    ),
                )
            ],
            lambda r: ev(
                "error",
                f"[Controller id=2] Error completing reassignment of partition orders-{r.randint(0, 11)}",
                "kafka.controller.KafkaController",
            ),
            kafka_fatal,
            [
                ev("info", "Kafka version: 3.7.1", "org.apache.kafka.common.utils.AppInfoParser"),
                ev("info", "[KafkaServer id=2] started", "kafka.server.KafkaServer"),
            ],
            ev("fatal", "Fatal error during KafkaServer startup. Prepare to shutdown", "kafka.server.KafkaServer"),
            None,
            kafka_event,
        ),
        App(
            "shop-php",
            "web",
            [("GET", "/index.php"), ("POST", "/checkout.php"), ("GET", "/product.php?id={id}")],
            [(0.05, lambda r: ev("info", "Order placed", order=r.randint(1000, 9999)))],
            [(0.003, lambda r: ev("warn", "Deprecated: Creation of dynamic property Cart::$coupon is deprecated"))],
            lambda r: ev("error", "Payment gateway returned malformed response", gateway="mollie"),
            php_uncaught,
            [ev("info", "fpm is running, pid 1"), ev("info", "ready to handle connections")],
            ev(
                "fatal",
                "PHP Fatal error:  Uncaught PDOException: SQLSTATE[HY000] [2002] Connection refused in /var/www/src/Db.php:9",
            ),
            None,
            php_event,
        ),
        App(
            "cart-phoenix",
            "web",
            [("GET", "/api/carts/{id}"), ("POST", "/api/carts"), ("GET", "/health")],
            [(0.05, lambda r: ev("debug", 'QUERY OK source="carts" db=1.2ms idle=300.1ms'))],
            [
                (
                    0.003,
                    lambda r: ev(
                        "warn",
                        "Postgrex.Protocol (#PID<0.3012.0>) disconnected: ** (DBConnection.ConnectionError) client #PID<0.4012.0> timed out",
                    ),
                )
            ],
            lambda r: ev("error", "Cart checkout failed: {:error, :inventory_unavailable}"),
            elixir_crash,
            [
                ev("info", "Running CartWeb.Endpoint with cowboy 2.12.0 at :::4000 (http)"),
                ev("info", "Access CartWeb.Endpoint at http://localhost:4000"),
            ],
            ev(
                "fatal",
                "** (Mix) Could not start application cart: Cart.Application.start(:normal, []) returned an error: shutdown: failed to start child: Cart.Repo",
            ),
            elixir_request,
            elixir_event,
        ),
    ]


APPS = {app.name: app for app in _apps()}
