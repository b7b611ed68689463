"""Topic creation: bounded by its timeout, failures as TopicError, stops when asked, and a
stop signal never lands inside its event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import struct
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from aiokafka.protocol.admin import (  # type: ignore[import-untyped]
    CreateTopicsResponse_v0,
    CreateTopicsResponse_v2,
)
from hopkit.testing import KafkaBroker, free_port
from hopshop_stack import lifecycle
from hopshop_stack.components import TOPICS, Plan
from hopshop_stack.kafka import StopRequested, TopicError, create_topics, refusals

# Time past the timeout allowed for the event loop to notice and clean up.
MARGIN = 1.5


def silent_bootstrap() -> str:
    """host:port where nothing listens, so create_topics keeps retrying."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


# A never-awaited coroutine. Not every warning: another test's garbage may warn meanwhile.
@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_create_topics_stops_when_asked() -> None:
    began = time.monotonic()
    with pytest.raises(StopRequested):
        create_topics(
            silent_bootstrap(),
            ["order.placed"],
            timeout=30,
            stop_requested=lambda: time.monotonic() - began > 0.3,
        )
    assert time.monotonic() - began < 5


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_a_stop_signal_during_topic_creation_is_held_until_asyncio_is_done(
    tmp_path: Path,
) -> None:
    # Raised inside the event loop, the signal's exception can land while the loop is
    # being made, and Python prints a traceback for the half-made loop at exit.
    runner = lifecycle.Runner(tmp_path, "detached", vulnerable=False, stop_timeout=5)
    plan = Plan(components=(), skipped=(), kafka_bootstrap=silent_bootstrap())
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    began = time.monotonic()
    with lifecycle._stop_signals():
        timer.start()
        try:
            with pytest.raises(lifecycle.Interrupted, match="SIGTERM") as caught:
                runner.create_topics(plan, timeout=30)
        finally:
            timer.cancel()
    assert time.monotonic() - began < 5
    frames = traceback.walk_tb(caught.value.__traceback__)
    raised_in = [frame.f_code.co_filename for frame, _ in frames]
    assert not [name for name in raised_in if "asyncio" in name], raised_in


# --- bounded by the timeout --------------------------------------------------------------


class SilentPeer:
    """Accepts TCP connections and never says a word: a broker that is wedged."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.bootstrap = f"127.0.0.1:{self._server.getsockname()[1]}"
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self._held.append(self._server.accept()[0])

    def close(self) -> None:
        self._server.close()
        for conn in self._held:
            conn.close()


class DroppingProxy:
    """Passes Kafka traffic to a real broker but swallows the requests with one API key.

    The broker seems to accept a request and never answer it. Requests are
    length-prefixed frames whose body starts with the int16 API key (Kafka protocol
    guide, "Requests"); replies are copied back unread.
    """

    def __init__(self, broker_port: int, port: int, drop_api_key: int) -> None:
        self._broker_port = broker_port
        self._drop = drop_api_key
        self._server = socket.create_server(("127.0.0.1", port))
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client = self._server.accept()[0]
                broker = socket.create_connection(("127.0.0.1", self._broker_port))
                self._sockets += [client, broker]
                threading.Thread(target=self._requests, args=(client, broker), daemon=True).start()
                threading.Thread(target=self._replies, args=(broker, client), daemon=True).start()

    def _requests(self, client: socket.socket, broker: socket.socket) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while True:
                head = _read_exactly(client, 4)
                body = _read_exactly(client, struct.unpack(">i", head)[0])
                if struct.unpack(">h", body[:2])[0] != self._drop:
                    broker.sendall(head + body)

    @staticmethod
    def _replies(broker: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := broker.recv(65536):
                client.sendall(chunk)

    def close(self) -> None:
        self._server.close()
        for sock in self._sockets:
            sock.close()


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


CREATE_TOPICS_API_KEY = 19


@pytest.fixture
def silent_peer() -> Iterator[SilentPeer]:
    peer = SilentPeer()
    yield peer
    peer.close()


def test_a_broker_that_never_answers_fails_within_the_timeout(silent_peer: SilentPeer) -> None:
    began = time.monotonic()
    with pytest.raises(TopicError) as caught:
        create_topics(silent_peer.bootstrap, ["order.placed"], timeout=1)
    elapsed = time.monotonic() - began
    assert 1 <= elapsed < 1 + MARGIN
    assert str(caught.value) == (
        f"Kafka at {silent_peer.bootstrap} did not answer a connection attempt within 1 s"
    )


def test_a_broker_that_never_answers_the_create_request_fails_within_the_timeout() -> None:
    proxy_port = free_port()
    with KafkaBroker(advertised_port=proxy_port) as broker:
        proxy = DroppingProxy(broker.port, proxy_port, CREATE_TOPICS_API_KEY)
        try:
            began = time.monotonic()
            with pytest.raises(TopicError) as caught:
                create_topics(broker.bootstrap, ["order.placed"], timeout=2)
            elapsed = time.monotonic() - began
        finally:
            proxy.close()
    assert 2 <= elapsed < 2 + MARGIN
    assert str(caught.value) == (
        f"Kafka at {broker.bootstrap} did not answer a request to create topics within 2 s"
    )


# --- against a real broker ---------------------------------------------------------------


@pytest.fixture(scope="module")
def kafka() -> Iterator[KafkaBroker]:
    with KafkaBroker() as broker:
        yield broker


def test_creates_the_missing_topics_once(kafka: KafkaBroker) -> None:
    assert create_topics(kafka.bootstrap, TOPICS, timeout=10) == list(TOPICS)
    assert create_topics(kafka.bootstrap, TOPICS, timeout=10) == []
    assert create_topics(kafka.bootstrap, [*TOPICS, "extra", "extra"], timeout=10) == ["extra"]
    assert set(asyncio.run(list_topics(kafka.bootstrap))) >= {*TOPICS, "extra"}


@pytest.mark.parametrize("name", ["bad name!", "x" * 300, "..", ""])
def test_an_illegal_topic_name_is_a_topic_error_naming_it(kafka: KafkaBroker, name: str) -> None:
    with pytest.raises(TopicError) as caught:
        create_topics(kafka.bootstrap, ["legal.before", name], timeout=10)
    message = str(caught.value)
    assert repr(name) in message
    assert kafka.bootstrap in message
    assert "\n" not in message
    # Checked before anything is made, so no half-made set of topics.
    assert "legal.before" not in asyncio.run(list_topics(kafka.bootstrap))


def test_a_refusal_names_each_refused_topic() -> None:
    response = CreateTopicsResponse_v2(
        throttle_time_ms=0,
        topic_errors=[
            ("made", 0, None),
            ("kept", 36, "Topic with this name already exists."),
            ("bad name!", 17, "Topic name is invalid"),
            ("crowded", 37, None),
        ],
    )
    assert refusals(response) == (
        "topic 'bad name!' (error 17: Topic name is invalid), topic 'crowded' (error 37)"
    )
    assert refusals(CreateTopicsResponse_v0(topic_errors=[("t", 36), ("u", 0)])) == ""
    assert refusals(CreateTopicsResponse_v0(topic_errors=[("t", 41)])) == "topic 't' (error 41)"


async def list_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()
