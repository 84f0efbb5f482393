"""The software of the labelled corpus: web servers and services in six languages, and the rest from backends."""

from __future__ import annotations

from backends import backend_apps
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
    logfmt_event,
    logfmt_request,
    nginx_combined,
    php_event,
    pino_event,
    pino_request,
    python_event,
    python_request,
    rails_event,
    rails_request,
    rid,
    spring_event,
    spring_request,
    zap_event,
    zap_request,
)
from traces import (
    dotnet_nre,
    elixir_crash,
    go_panic,
    java_npe,
    node_typeerror,
    php_uncaught,
    python_keyerror,
    ruby_nomethod,
)


def ev(level: str, message: str, logger: str = "main", **fields: object) -> Event:
    return Event(level, message, dict(fields), logger)


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


APPS = {app.name: app for app in [*_apps(), *backend_apps()]}
