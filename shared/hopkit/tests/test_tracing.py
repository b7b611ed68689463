"""Request ids and W3C trace context through the middleware, the logs and outgoing calls."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request
from hopkit import tracing
from hopkit.logs import JsonFormatter, annotate

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def app() -> FastAPI:
    application = FastAPI()

    @application.get("/hop")
    async def hop() -> dict[str, str]:
        annotate(audited="yes")
        return tracing.outgoing_headers()

    application.add_middleware(tracing.TracingMiddleware, access_log=False)
    return application


async def call(headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/hop", headers=headers)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (INCOMING, (TRACE_ID, True)),
        (f"00-{TRACE_ID}-00f067aa0ba902b7-00", (TRACE_ID, False)),
        (None, None),
        ("", None),
        ("garbage", None),
        (f"01-{TRACE_ID}-00f067aa0ba902b7-01", None),  # unknown version
        (f"00-{'0' * 32}-00f067aa0ba902b7-01", None),  # all-zero trace id is invalid
        (f"00-{TRACE_ID}-{'0' * 16}-01", None),  # all-zero parent id is invalid
        (f"00-{TRACE_ID.upper()}-00f067aa0ba902b7-01", None),  # must be lower-case hex
    ],
)
def test_parse_traceparent(value: str | None, expected: tuple[str, bool] | None) -> None:
    assert tracing.parse_traceparent(value) == expected


async def test_incoming_trace_is_continued_with_a_new_span() -> None:
    response = await call({"traceparent": INCOMING, "x-request-id": "req-1"})
    outgoing = response.json()
    assert response.headers["x-request-id"] == "req-1"
    assert outgoing["x-request-id"] == "req-1"
    version, trace_id, span_id, flags = outgoing["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    assert span_id != "00f067aa0ba902b7"


async def test_a_request_without_context_starts_a_trace() -> None:
    response = await call({})
    outgoing = response.json()
    parsed = tracing.parse_traceparent(outgoing["traceparent"])
    assert parsed is not None
    assert outgoing["x-request-id"] == response.headers["x-request-id"]
    # The caller learns the trace it started (W3C Trace Context Level 2 traceresponse):
    # this service's span, the one its own calls name as their parent.
    assert response.headers["traceresponse"] == outgoing["traceparent"]


async def test_hostile_request_id_is_replaced() -> None:
    response = await call({"x-request-id": "x" * 65})
    assert response.headers["x-request-id"] != "x" * 65


async def test_non_ascii_request_id_is_replaced_so_downstream_calls_can_carry_it() -> None:
    # Latin-1 bytes arrive from the wire; httpx refuses to send a non-ASCII header
    # value, so keeping the id would turn every downstream call into a 500.
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/hop", headers=[(b"x-request-id", b"caf\xe9")])
    outgoing = response.json()
    assert response.status_code == 200
    assert outgoing["x-request-id"] == response.headers["x-request-id"]
    assert outgoing["x-request-id"].isascii()
    httpx.Request("GET", "http://downstream/", headers=outgoing)  # encodes, or raises


def test_a_consumer_trace_refuses_a_non_ascii_request_id() -> None:
    # Kafka record headers are decoded as UTF-8: the same rule applies to them.
    token = tracing.start("caf\u00e9", INCOMING)
    try:
        outgoing = tracing.outgoing_headers()
    finally:
        tracing.reset(token)
    assert outgoing["x-request-id"].isascii()
    assert outgoing["x-request-id"] != "caf\u00e9"
    httpx.Request("GET", "http://downstream/", headers=outgoing)


async def test_log_lines_carry_the_ids_and_annotations(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="access")
    await call({"traceparent": INCOMING, "x-request-id": "req-2"})
    [record] = [r for r in caplog.records if r.name == "access"]
    assert record.__dict__["audited"] == "yes"  # logged although the access log is off
    assert record.__dict__["status"] == 200


def test_formatter_adds_the_trace_of_the_work_in_progress() -> None:
    token = tracing.start("req-3", INCOMING)
    try:
        record = logging.LogRecord("x", logging.INFO, "", 0, "hello %s", ("world",), None)
        line = JsonFormatter("svc").format(record)
    finally:
        tracing.reset(token)
    assert '"msg":"hello world"' in line
    assert f'"trace_id":"{TRACE_ID}"' in line
    assert '"request_id":"req-3"' in line
    assert tracing.current() is None


@dataclass(frozen=True)
class FakePrincipal:
    """The attributes hopauth's Principal has; hopkit reads them by duck typing."""

    token_id: str
    subject: str
    audience: tuple[str, ...]
    scopes: frozenset[str]
    client_id: str
    actors: tuple[str, ...]


async def test_log_line_carries_the_claims_of_the_token_the_request_was_made_with(
    caplog: pytest.LogCaptureFixture,
) -> None:
    application = FastAPI()

    @application.get("/secured")
    async def secured(request: Request) -> dict[str, bool]:
        request.state.principal = FakePrincipal(
            token_id="jti-1",
            subject="alice",
            audience=("inventory",),
            scopes=frozenset({"inventory:reserve", "b:read"}),
            client_id="order",
            actors=("order", "gateway"),
        )
        return {"ok": True}

    @application.get("/public")
    async def public() -> dict[str, bool]:
        return {"ok": True}

    application.add_middleware(tracing.TracingMiddleware)
    caplog.set_level(logging.INFO, logger="access")
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers={"traceparent": INCOMING}
    ) as client:
        assert (await client.get("/secured")).status_code == 200
        assert (await client.get("/public")).status_code == 200

    secured_record, public_record = [r for r in caplog.records if r.name == "access"]
    assert secured_record.__dict__["token"] == {
        "jti": "jti-1",
        "sub": "alice",
        "aud": ["inventory"],
        "scope": ["b:read", "inventory:reserve"],
        "client_id": "order",
        "act": ["order", "gateway"],
    }
    line = orjson.loads(JsonFormatter("inventory").format(secured_record))
    assert line["token"]["act"] == ["order", "gateway"]
    assert "token" not in public_record.__dict__


#: A real-looking access token, as a caller might paste one into a URL.
TOKEN = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsxIn0"
    ".eyJzdWIiOiJhbGljZSIsImF1ZCI6Im9yZGVyIiwic2NvcGUiOiJvcmRlcnM6cmVhZCJ9"
    ".c2lnbmF0dXJlLW9mLXRoZS1pc3N1ZXItd2l0aC1pdHMtcHJpdmF0ZS1rZXk"
)


async def test_the_access_line_has_no_token_from_the_path_nor_the_query(
    caplog: pytest.LogCaptureFixture,
) -> None:
    application = FastAPI()
    application.add_middleware(tracing.TracingMiddleware)
    caplog.set_level(logging.INFO, logger="access")
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(f"/orders/{TOKEN}", params={"access_token": TOKEN})
    assert response.status_code == 404
    [record] = [r for r in caplog.records if r.name == "access"]
    assert record.__dict__["path"] == "/orders/[redacted]"
    assert "eyJ" not in JsonFormatter("svc").format(record)


def test_a_request_id_shaped_like_a_token_is_replaced() -> None:
    refresh_token = "Zx9_kQ2-vLm8RtY4wPa7cN1dE5fGh3jK6sT0uVbXyZq"  # token_urlsafe(32)
    token = tracing.start(refresh_token, None)
    try:
        context = tracing.current()
    finally:
        tracing.reset(token)
    assert context is not None
    assert context.request_id != refresh_token
