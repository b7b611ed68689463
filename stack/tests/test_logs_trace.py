"""`hopshop logs --trace`: one request's lines from every service, in the order they were logged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hopshop_stack import tracelog
from hopshop_stack.cli import main

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER = "00f067aa0ba902b700f067aa0ba902b7"


def line(ts: float, service: str, trace: str, msg: str) -> str:
    return json.dumps({"ts": ts, "service": service, "trace_id": trace, "msg": msg}) + "\n"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "gateway.log").write_text(
        "INFO:     Started server process [1]\n"
        + line(10.0, "gateway", TRACE, "POST /api/orders 201")
        + line(11.0, "gateway", OTHER, "GET /api/orders 200")
    )
    (logs / "order.log").write_text(
        line(9.5, "order", TRACE, "POST /orders 201")
        + line(9.9, "order", OTHER, "not this one")
        + line(12.0, "order", TRACE, "payment.succeeded: CONFIRMED")
    )
    (logs / "inventory.log").write_text(line(9.2, "inventory", TRACE, "POST /reservations 201"))
    (logs / "kafka.log").write_text("broker started\n")
    return tmp_path


def test_every_line_of_the_trace_in_time_order(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["logs", "--state-dir", str(state_dir), "--trace", TRACE.upper()]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [row.split(" | ")[0].strip() for row in out] == [
        "inventory",
        "order",
        "gateway",
        "order",
    ]
    assert [row.split(" | ")[1].split(" ", 1)[1] for row in out] == [
        "POST /reservations 201",
        "POST /orders 201",
        "POST /api/orders 201",
        "payment.succeeded: CONFIRMED",
    ]
    assert all(len(row) <= 100 for row in out)


def test_a_request_line_shows_the_token_it_carried() -> None:
    record = {
        "ts": 1.5,
        "level": "info",
        "logger": "access",
        "msg": "request",
        "trace_id": TRACE,
        "method": "POST",
        "path": "/reservations",
        "status": 201,
        "token": {
            "sub": "d23b5b94-1f2e-4c3d-9a8b-7c6d5e4f3a2b",
            "aud": ["inventory"],
            "client_id": "order",
            "act": ["order", "gateway"],
            "scope": ["inventory:reserve"],
        },
    }
    first, claims = tracelog.summary(json.dumps(record))
    assert first.endswith(" POST /reservations 201")
    assert claims == (
        "  sub d23b5b94 · aud inventory · client order · act order ← gateway"
        " · scope inventory:reserve"
    )
    worker = {**record, "token": {"sub": "billing-worker", "client_id": "billing-worker"}}
    assert tracelog.summary(json.dumps(worker))[1] == "  sub billing-worker"  # client = sub
    issued = {**record, "event": "token_exchanged", "issued": {"aud": "order", "scope": "a b"}}
    del issued["token"]
    lines = tracelog.summary(json.dumps(issued))
    assert lines[0].endswith("POST /reservations 201 token_exchanged")
    assert lines[1] == "  issued: aud order · scope a b"


def test_claims_are_wrapped_to_the_width_and_foreign_lines_kept() -> None:
    scopes = [f"scope:{n}" for n in range(30)]
    record = {"ts": 1.0, "method": "GET", "path": "/x", "status": 200, "token": {"scope": scopes}}
    lines = tracelog.summary(json.dumps(record), width=60)
    assert len(lines) > 3 and all(len(line) <= 60 for line in lines)
    assert " ".join(" ".join(lines[1:]).split()) == "scope " + " ".join(scopes)
    assert tracelog.summary("INFO:     Started server process [1]") == [
        "INFO:     Started server process [1]"
    ]


def test_one_component_only(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "order", "--state-dir", str(state_dir), "--trace", TRACE]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [row.split(" ", 1)[1] for row in out] == [
        "POST /orders 201",
        "payment.succeeded: CONFIRMED",
    ]


@pytest.mark.parametrize(
    ("trace", "code", "message"),
    [
        ("abc", 2, "not a trace id"),
        ("g" * 32, 2, "not a trace id"),
        ("0" * 31 + "1", 1, "no log line has trace id"),
    ],
)
def test_a_trace_that_is_not_one_or_is_nowhere_is_said_so(
    state_dir: Path, capsys: pytest.CaptureFixture[str], trace: str, code: int, message: str
) -> None:
    assert main(["logs", "--state-dir", str(state_dir), "--trace", trace]) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("hopshop: ") and message in captured.err


def test_a_plain_line_shows_its_level_as_the_consumer_lines_do() -> None:
    record = {"ts": 1.0, "level": "warning", "logger": "order_service.inventory"}
    line = tracelog.summary(json.dumps({**record, "msg": "inventory unreachable"}))[0]
    assert line.endswith(" WARNING inventory unreachable")  # as "WARNING event handler failed"
