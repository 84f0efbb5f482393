"""Start Kopf with the operator's handlers: what `selfheal run` does, behind the Lease when replicas share the work."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import kopf

from selfheal.services.leadership import Leadership, LeaseSettings

log = logging.getLogger(__name__)


def run_operator(
    *,
    namespaces: Sequence[str],
    all_namespaces: bool,
    lease: LeaseSettings | None,
    liveness: str | None,
    log_level: str,
    log_format: str,
    metrics_port: int = 0,
    verdict_port: int = 0,
    verdict_token: str = "",
) -> None:
    """Run Kopf; with ``lease``, only once this replica holds it (standing by, alive, until then)."""
    kopf.configure(
        debug=log_level == "debug",
        quiet=log_level in ("warning", "error"),
        log_format=kopf.LogFormat[log_format.upper()],
    )
    import selfheal.main  # noqa: F401  (registers the handlers)

    leadership = None
    if lease is not None:
        leadership = Leadership(lease, on_lost=_exit_at_once)
        with _alive_while_standing_by(liveness):
            leadership.acquire()
    try:
        # Exclusive by the Lease (or a single replica): Kopf needs no peering of its own.
        kopf.run(
            standalone=True,
            namespaces=list(namespaces),
            clusterwide=all_namespaces,
            liveness_endpoint=liveness,
            # read by the startup handler
            memo=kopf.Memo(metrics_port=metrics_port, verdict_port=verdict_port, verdict_token=verdict_token),
        )
    finally:
        if leadership is not None:
            leadership.release()


def _exit_at_once() -> None:
    """A replica that lost the Lease may no longer act: it exits before doing anything more, and the
    Deployment starts it again as a standby."""
    logging.shutdown()
    sys.stderr.flush()
    os._exit(1)


class _Alive(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"standby": true}')

    def log_message(self, format: str, *args: object) -> None:
        return


class _alive_while_standing_by:
    """The liveness endpoint answers while the replica waits for the Lease (Kopf serves it afterwards)."""

    def __init__(self, url: str | None) -> None:
        self.server: ThreadingHTTPServer | None = None
        if url:
            parts = urlsplit(url)
            self.server = ThreadingHTTPServer((parts.hostname or "0.0.0.0", parts.port or 80), _Alive)

    def __enter__(self) -> None:
        if self.server is not None:
            threading.Thread(target=self.server.serve_forever, name="standby-liveness", daemon=True).start()

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
