"""`hopshop logs --trace` on a consumer's lines: events as summaries, retries and waits as notes.

The lines are made by hopkit's own JSON formatter from records shaped as
hopkit.consumer logs them (message, level and fields copied from its log calls).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from hopkit.logs import JsonFormatter
from hopshop_stack import tracelog
from hopshop_stack.cli import main

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
EVENT_ID = "0b7e8c2a-5d4f-4e3b-9a1c-2f6d8e0a4b71"


def consumer_line(level: int, msg: str, **fields: Any) -> str:
    """One JSON line as a service writes it for a hopkit.consumer log call."""
    record = logging.getLogger("hopkit.consumer").makeRecord(
        "hopkit.consumer", level, "consumer.py", 1, msg, (), None, extra=fields
    )
    record.created = 1_700_000_000.25
    return JsonFormatter("billing").format(record)


RETRYING = consumer_line(
    logging.WARNING,
    "event handler failed; retrying",
    event_id=EVENT_ID,
    topic="order.placed",
    partition=0,
    attempt=2,
    error="DependencyUnavailable",
    retry_in=0.4,
    transient=True,
    reason="order answered 503",
    trace_id=TRACE,
)
STUCK = consumer_line(
    logging.ERROR,
    "event handler waiting for a dependency; partition stuck",
    event_id=EVENT_ID,
    topic="order.placed",
    partition=0,
    attempt=6,
    error="OperationalError",
    retry_in=5.0,
    transient=True,
    trace_id=TRACE,
)
BACK = consumer_line(
    logging.WARNING,
    "event handled after its dependency came back",
    event_id=EVENT_ID,
    attempt=7,
    trace_id=TRACE,
)
REASSIGNED = consumer_line(
    logging.INFO,
    "partition reassigned while its event waited; its new owner retries it",
    group="billing",
    topic="order.placed",
    partition=0,
    offset=12,
    trace_id=TRACE,
)
HANDLED = consumer_line(
    logging.INFO,
    "event",
    group="billing",
    topic="order.placed",
    partition=0,
    offset=12,
    event_id=EVENT_ID,
    type="order.placed",
    outcome="handled",
    attempts=7,
    ms=3.1,
    trace_id=TRACE,
)


def test_a_retry_is_its_level_message_and_why() -> None:
    first, *details = tracelog.summary(RETRYING, width=80)
    assert first.endswith(" WARNING event handler failed; retrying")
    assert details == [
        "  error DependencyUnavailable · reason order answered 503 · attempt 2 ·",
        "    retry in 0.4 s · order.placed[0]",
    ]


def test_a_stuck_partition_is_an_error_with_its_attempt_and_next_retry() -> None:
    first, detail = tracelog.summary(STUCK)
    assert first.endswith(" ERROR event handler waiting for a dependency; partition stuck")
    assert detail == "  error OperationalError · attempt 6 · retry in 5 s · order.placed[0]"


def test_recovery_and_reassignment_read_as_what_happened() -> None:
    first, detail = tracelog.summary(BACK)
    assert first.endswith(" WARNING event handled after its dependency came back")
    assert detail == "  attempt 7"
    first, detail = tracelog.summary(REASSIGNED)
    assert first.endswith(
        ".250 partition reassigned while its event waited; its new owner retries it"
    )
    assert detail == "  order.placed[0]"


def test_an_event_line_is_still_its_summary() -> None:
    assert [line.split(" ", 1)[1] for line in tracelog.summary(HANDLED)] == [
        "event order.placed handled"
    ]


def test_the_trace_reads_within_100_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "billing.log").write_text("\n".join([RETRYING, STUCK, BACK, HANDLED]) + "\n")
    (logs / "notification.log").write_text(REASSIGNED + "\n")
    assert main(["logs", "--state-dir", str(tmp_path), "--trace", TRACE]) == 0
    out = capsys.readouterr().out
    assert "event ?" not in out
    assert all(len(line) <= 100 for line in out.splitlines()), out
    assert "billing      |   error DependencyUnavailable · reason order answered 503" in out
    assert "notification | " in out and "event order.placed handled" in out
