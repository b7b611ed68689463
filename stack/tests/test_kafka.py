"""Topic creation stops when asked, and a stop signal never lands inside its event loop."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import traceback
from pathlib import Path

import pytest
from hopshop_stack import lifecycle
from hopshop_stack.components import Plan
from hopshop_stack.kafka import StopRequested, create_topics


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
