"""The backends of the labelled corpus: a controller, a mail relay, a queue consumer, databases and a broker."""

from __future__ import annotations

from formats import (
    App,
    Event,
    kafka_event,
    klog_event,
    postgres_event,
    redis_event,
    rid,
    syslog3164_event,
    syslog5424_event,
)
from traces import (
    kafka_fatal,
    klog_panic,
    postgres_panic,
    redis_crash,
    systemd_killed,
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


def backend_apps() -> list[App]:
    return [
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
    ]
