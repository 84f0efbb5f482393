"""Ordinary log lines keep their meaning: ids, hashes, UUIDs, trace ids, pod names and durations stay."""

from __future__ import annotations

import pytest

from selfheal.domain.redaction import Redactor

ORDINARY = [
    '10.0.0.7 - - [09/Oct/2025:14:00:00 +0000] "GET /static/js/main.8a3b2c1d.chunk.js HTTP/1.1" 200 51234 "-" "Mozilla/5.0"',
    "GET /_next/static/chunks/pages/_app-2b0b4f0a8a7f1c9e.js 200 3ms",
    "GET /assets/index-BkL9xq2Z.js 200 1.2ms",
    "GET /static/app.3f9a8c7d1e2b4a6f0c9d8e7f6a5b4c3d.css 304 0.8ms",
    "request_id=7f3c9a1e-2b4d-4c6e-8f0a-1b2c3d4e5f60 status=200 duration=12.5ms",
    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7 sampled=true",
    "X-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
    "dd.trace_id=1234567890123456789 dd.span_id=987654321987654321",
    "pod checkout-7d9f8b6c5-x2x4k became ready in 3.2s",
    "Successfully assigned shop/payments-canary-6b7c9d8f4-qwz8p to node-7",
    "Pulling image ghcr.io/acme/payments@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "commit 3f786850e387550fdab836ed7e6dc881de23001b merged into main",
    "uid=8a7f6e5d-4c3b-2a19-0807-f6e5d4c3b2a1 resourceVersion=123456 generation=7",
    "latency p50=12ms p95=87ms p99=230ms rps=1532.4",
    "2025-10-09T14:00:00.123456789Z INFO request served path=/api/v1/orders/12345 status=200 took=1.234s",
    "goroutine 35 [running]:",
    "main.(*Server).handle(0xc000123456, {0x1a2b3c0, 0xc0001d2000})",
    "\t/go/src/github.com/acme/shop/server.go:142 +0x1f3",
    "\tat com.example.shop.OrderService.placeOrder(OrderService.java:87)",
    "Caused by: java.net.SocketTimeoutException: Read timed out",
    '{"level":"info","ts":1728482400.123,"caller":"http/server.go:88","msg":"listening","addr":":8080"}',
    'level=info msg="Bearer authentication enabled" path=/color',
    "token validation took 3ms (cache hit)",
    "password reset email queued",
    "session started for user 42",
    "the key is not present in the cache",
    "auth: method=oidc issuer=https://accounts.example.com",
    "max_tokens=1024 prompt_tokens=512 completion_tokens=88",
    "token_type=Bearer expires_in=3600 scope=read",
    "Connected to postgres://db.internal:5432/orders as app",
    'etag: W/"5e8f-1a2b3c4d5e6f"',
    "cache key=user:1234:profile hit=true",
    "AbstractSingletonProxyFactoryBean initialised in 12ms",
    "getUserProfileById2FromCache returned 3 rows",
    "Kafka offset committed topic=orders partition=3 offset=99812345",
    "ERROR 2025/10/09 14:00:02 500 - red (2.000000s)",
    "image=registry.example.com/team/app:v2.3.1-rc.4 digest=sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
    "listening on 0.0.0.0:8080 (pid 1) build=2025.10.09+g3f78685",
    "unix time 1728482400123 order 4000 items 16",
    "Access denied for user 'app'@'10.0.0.5' (using password: YES)",
    "processed 1234 5678 9012 3456 records in 4 batches",
]


@pytest.mark.parametrize("line", ORDINARY)
def test_ordinary_lines_are_left_as_they_are(line: str) -> None:
    r = Redactor()
    assert r.redact(line) == line
    assert r.counts == {}
