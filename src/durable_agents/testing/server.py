"""TestModelServer (uvicorn in a background thread) and serve() (in the foreground) for the test model server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import uvicorn

from .app import ServerState, build_app
from .control import ModelServerControl
from .rules import Rule


class _SignallingServer(uvicorn.Server):
    """A uvicorn server that tells other threads when it is serving, so nobody has to poll with sleeps."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class TestModelServer:
    """An OpenAI-compatible chat model for tests, served over real HTTP from a background thread.

    Point the SDK at `url` (`OpenAI(base_url=server.url, api_key="test")`) and steer it with `control`,
    or from another process with `ModelServerControl(server.url)`.
    """

    __test__ = False  # a helper, not a pytest test class, despite the name

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        rules: Sequence[Rule | Mapping[str, Any]] | None = None,
        latency_ms: int = 0,
        json_schema: bool = True,
    ) -> None:
        """`json_schema=False` makes a server that refuses `response_format` of type json_schema."""
        self.host = host
        self._requested_port = port
        self._state = ServerState(rules, latency_ms, json_schema)
        self._server: _SignallingServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._control: ModelServerControl | None = None

    def start(self, timeout: float = 10.0) -> TestModelServer:
        """Serve from a background thread; returns once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("this TestModelServer is already running; stop() it before starting it again")
        sock = bind_socket(self.host, self._requested_port)
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            build_app(self._state),
            log_config=None,  # leave the host process's logging alone
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._server = _SignallingServer(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"test-model-server-{self._port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.ready.wait(0.05):
            if not self._thread.is_alive():
                sock.close()
                self._thread = None
                raise RuntimeError("the test model server stopped while starting; its error is logged above")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the test model server did not start within {timeout}s")
        self._control = ModelServerControl(self.url)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the thread to end; a no-op when not running."""
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout)
        self._server = None
        self._thread = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server has no port yet: call start() first (port=0 picks a free one)")
        return self._port

    @property
    def url(self) -> str:
        """The base URL for the OpenAI SDK, ending in /v1."""
        return base_url(self.host, self.port)

    @property
    def control(self) -> ModelServerControl:
        if self._control is None:
            raise RuntimeError("the server is not running: call start() (or use it as a context manager) first")
        return self._control

    def __enter__(self) -> TestModelServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve(host: str, port: int, latency_ms: int = 0, json_schema: bool = True) -> None:
    """Run the test model server in the foreground until interrupted; prints its base URL first."""
    sock = bind_socket(host, port)
    print(base_url(host, sock.getsockname()[1]), flush=True)
    app = build_app(ServerState(latency_ms=latency_ms, json_schema=json_schema))
    config = uvicorn.Config(app, log_level="info", timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket; binding here (not in uvicorn) lets port 0 be read back before serving starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say so, and without it every
    # response on a kept-alive connection waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(
            error.errno, f"cannot listen on {host}:{port} ({error.strerror}); pick another port, or 0 for any free one"
        ) from error
    sock.listen(1024)  # hundreds of clients at once (benchmarks) must not overflow the accept queue
    return sock


def base_url(host: str, port: int) -> str:
    # A wildcard address is where the server listens, not where a client can connect.
    connect_host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in connect_host:
        connect_host = f"[{connect_host}]"
    return f"http://{connect_host}:{port}/v1"
