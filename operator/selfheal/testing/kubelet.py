"""A test kubelet: serves container logs to the apiserver's real ``pods/log`` proxy path."""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from selfheal.testing.controlplane import ControlPlane, free_port

NODE_NAME = "selfheal-test-node"


@dataclass
class _Stream:
    lines: list[tuple[datetime, str]] = field(default_factory=list)


class TestKubelet:
    """Holds log lines per (namespace, pod, container, previous) and answers ``/containerLogs``.

    ``tailLines``, ``sinceSeconds``, ``sinceTime``, ``limitBytes``, ``timestamps`` and ``previous``
    are honoured the way the kubelet honours them. Register it as a Node with :meth:`register_node`;
    pods with ``spec.nodeName`` set to :data:`NODE_NAME` then serve their logs through the apiserver.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, cert_file: str, key_file: str) -> None:
        self._streams: dict[tuple[str, str, str, bool], _Stream] = {}
        self._failing: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self.port = free_port()
        self.requests: list[str] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        kubelet = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                kubelet._serve(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-kubelet", daemon=True)

    @classmethod
    def for_control_plane(cls, cp: ControlPlane) -> TestKubelet:
        """A kubelet using the apiserver's own self-signed serving certificate."""
        return cls(cp.ca_file, cp.ca_file.replace(".crt", ".key"))

    def start(self) -> TestKubelet:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> TestKubelet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def register_node(self, cp: ControlPlane, name: str = NODE_NAME) -> None:
        """Create (or refresh) the Node whose kubelet endpoint is this server."""
        assert cp.admin is not None
        cp.admin.apply("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
        cp.admin.patch(
            f"/api/v1/nodes/{name}/status",
            {
                "status": {
                    "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "KubeletReady",
                            "message": "test kubelet is serving",
                        }
                    ],
                }
            },
        )

    # -- log store --------------------------------------------------------------------------------

    def append(
        self, namespace: str, pod: str, container: str, *lines: str, previous: bool = False, at: datetime | None = None
    ) -> None:
        at = at or datetime.now(UTC)
        with self._lock:
            stream = self._streams.setdefault((namespace, pod, container, previous), _Stream())
            stream.lines.extend((at, line) for line in lines)

    def restart_container(self, namespace: str, pod: str, container: str) -> None:
        """The current log becomes the previous one, as when a container restarts."""
        with self._lock:
            current = self._streams.pop((namespace, pod, container, False), _Stream())
            self._streams[(namespace, pod, container, True)] = current

    def fail_reads(self, namespace: str, pod: str, status: int = 503) -> None:
        """Answer every log read of the pod with ``status``, as a kubelet under load or going away does."""
        with self._lock:
            self._failing[(namespace, pod)] = status

    def forget(self, namespace: str, pod: str) -> None:
        with self._lock:
            for key in [k for k in self._streams if k[0] == namespace and k[1] == pod]:
                del self._streams[key]

    def lines(self, namespace: str, pod: str, container: str, previous: bool = False) -> list[str]:
        with self._lock:
            stream = self._streams.get((namespace, pod, container, previous))
            return [line for _, line in stream.lines] if stream else []

    # -- HTTP -------------------------------------------------------------------------------------

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        url = urlparse(request.path)
        self.requests.append(request.path)
        parts = url.path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "containerLogs":
            self._reply(request, 404, "404 page not found\n")
            return
        _, namespace, pod, container = parts
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        previous = query.get("previous") == "true"
        with self._lock:
            stream = self._streams.get((namespace, pod, container, previous))
            lines = list(stream.lines) if stream else None
            failing = self._failing.get((namespace, pod))
        if failing is not None:
            self._reply(request, failing, f"the kubelet cannot serve the log of {pod}/{container} right now")
            return
        if lines is None:
            if previous:
                self._reply(request, 400, f'previous terminated container "{container}" in pod "{pod}" not found')
            else:
                self._reply(request, 404, f'container "{container}" in pod "{pod}" is not available')
            return
        if "sinceSeconds" in query:
            cutoff = datetime.now(UTC) - timedelta(seconds=int(query["sinceSeconds"]))
            lines = [entry for entry in lines if entry[0] >= cutoff]
        elif "sinceTime" in query:
            cutoff = datetime.fromisoformat(query["sinceTime"].replace("Z", "+00:00"))
            lines = [entry for entry in lines if entry[0] >= cutoff]
        if "tailLines" in query:
            tail = int(query["tailLines"])
            lines = lines[-tail:] if tail > 0 else []
        stamp = query.get("timestamps") == "true"
        body = "".join(
            (at.strftime("%Y-%m-%dT%H:%M:%S.%fZ") + " " if stamp else "") + line + "\n" for at, line in lines
        ).encode()
        if "limitBytes" in query:
            body = body[: int(query["limitBytes"])]
        self._reply(request, 200, body)

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, body: str | bytes) -> None:
        data = body.encode() if isinstance(body, str) else body
        request.send_response(status)
        request.send_header("Content-Type", "text/plain")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
