"""Run a fake aiohttp Application on 127.0.0.1 with an OS-chosen port.

In async tests:

    async with serve(app) as base_url: ...

For sync callers (typer CliRunner, which runs its own event loop), `ServerThread` runs the app
on a private loop in a background thread:

    with ServerThread(lambda: build_app(...)) as server: server.base_url
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import TracebackType

from aiohttp import web

from tests.fakes.faults import FAULTS_KEY

HOST = "127.0.0.1"  # loopback only: tests never touch the network


async def _start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    server = site._server
    assert server is not None and server.sockets  # type: ignore[attr-defined]
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return runner, f"http://{HOST}:{port}"


async def _stop(app: web.Application, runner: web.AppRunner) -> None:
    faults = app.get(FAULTS_KEY)
    if faults is not None:
        faults.release_stalls()
    await runner.cleanup()


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` on loopback for the block; yields its base URL."""
    runner, base_url = await _start(app)
    try:
        yield base_url
    finally:
        await _stop(app, runner)


class ServerThread:
    """`app_factory()` served on loopback from a background thread with its own loop."""

    def __init__(self, app_factory: Callable[[], web.Application]) -> None:
        self._factory = app_factory
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.app: web.Application | None = None
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    def call(self, fn: Callable[[], object]) -> object:
        """Run a plain function on the server's loop (e.g. to mutate fake state safely)."""

        async def run() -> object:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def __enter__(self) -> ServerThread:
        self._thread.start()

        async def start() -> None:
            self.app = self._factory()
            self._runner, self.base_url = await _start(self.app)

        asyncio.run_coroutine_threadsafe(start(), self._loop).result(timeout=10)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None and self.app is not None:
            asyncio.run_coroutine_threadsafe(_stop(self.app, self._runner), self._loop).result(
                timeout=10
            )
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
