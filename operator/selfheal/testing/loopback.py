"""A real aiohttp server on loopback, run by its own event loop in a background thread: the base of the stand-ins."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web


@dataclass
class Fault:
    """One scripted fault: its kind, how many more requests it hits (None: until cleared) and what it answers."""

    kind: str
    times: int | None
    detail: Any = None


class LoopbackServer:
    """Serves the routes a subclass adds in `_add_routes` on ``host:port`` from a thread of its own.

    ``start``/``stop`` (or ``with``) run the thread; ``down`` drops the listener and its connections
    and ``up`` listens again on the same port. Scripted faults (`Fault`, taken with `_take_fault`),
    the delay of `slow` (waited out with `_pause`) and the byte-by-byte answers of `drip` are kept
    under ``_lock``, so tests may script them from any thread while the loop serves.
    """

    thread_name = "loopback-server"
    client_max_size = 64 * 1024 * 1024

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._lock = threading.RLock()
        self._faults: list[Fault] = []
        self._delay = 0.0
        self._delay_times: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._up = False

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=self._run_loop, args=(loop,), name=self.thread_name, daemon=True)
        self._thread.start()
        try:
            self._call(self._init_loop_state())
            self.up()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        try:
            self._call(self._unserve())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._thread = None
            self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def up(self) -> None:
        """Listen (again) on the same port."""
        self._call(self._serve())

    def down(self) -> None:
        """Stop listening and drop open connections: clients get "connection refused"."""
        self._call(self._unserve())

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def _call(self, coro: Any) -> Any:
        """Run ``coro`` on the server's loop and wait for its result."""
        assert self._loop is not None, "the stand-in is not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    async def _init_loop_state(self) -> None:
        self._stopping = asyncio.Event()

    async def _serve(self) -> None:
        if self._up:
            return
        assert self._stopping is not None
        self._stopping.clear()
        app = web.Application(client_max_size=self.client_max_size, middlewares=[self._dripping])
        self._add_routes(app.router)
        runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        site = web.SockSite(runner, sock)
        await site.start()
        self._runner = runner
        self._up = True

    async def _unserve(self) -> None:
        if not self._up or self._runner is None:
            return
        assert self._stopping is not None
        self._stopping.set()
        await self._runner.cleanup()
        self._runner = None
        self._up = False

    # --- faults --------------------------------------------------------------------------------

    def slow(self, seconds: float, times: int | None = None) -> None:
        """Wait ``seconds`` before answering (the next ``times`` requests, or all; 0 to stop)."""
        with self._lock:
            self._delay, self._delay_times = seconds, times

    def drip(self, seconds_per_byte: float, times: int | None = None) -> None:
        """Send the body of the next ``times`` answers (or all) one byte every ``seconds_per_byte``:
        headers at once, then a trickle that no per-read timeout ever catches."""
        with self._lock:
            self._faults = [f for f in self._faults if f.kind != "drip"]
            if seconds_per_byte > 0:
                self._faults.append(Fault("drip", times, seconds_per_byte))

    def _clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._delay, self._delay_times = 0.0, None

    def _take_fault(self, kinds: tuple[str, ...] | None = None) -> Fault | None:
        """The first fault (of ``kinds``, or any) with requests left to hit, counting this one off."""
        with self._lock:
            for fault in self._faults:
                if kinds is not None and fault.kind not in kinds:
                    continue
                if fault.times is None:
                    return fault
                if fault.times > 0:
                    fault.times -= 1
                    return fault
            return None

    def _take_delay(self) -> float:
        with self._lock:
            if not self._delay:
                return 0.0
            if self._delay_times is None:
                return self._delay
            if self._delay_times > 0:
                self._delay_times -= 1
                return self._delay
            return 0.0

    @web.middleware
    async def _dripping(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
            return response
        fault = self._take_fault(("drip",))
        if fault is None:
            return response
        body = response.body
        trickle = web.StreamResponse(status=response.status, reason=response.reason)
        trickle.headers.update({k: v for k, v in response.headers.items() if k.lower() != "content-length"})
        trickle.content_length = len(body)
        await trickle.prepare(request)
        assert self._stopping is not None
        try:
            for i in range(len(body)):
                await trickle.write(body[i : i + 1])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=fault.detail)
                if self._stopping.is_set():
                    break
        except ConnectionError:
            pass  # the client gave up waiting
        return trickle

    async def _pause(self) -> None:
        """Wait out the delay `slow` scripted for this request, or less if the server goes down meanwhile."""
        delay = self._take_delay()
        if not delay:
            return
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)
