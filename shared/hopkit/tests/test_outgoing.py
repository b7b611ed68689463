"""hopkit.outgoing: httpx clients on aiohttp's transport, against real local servers.

A uvicorn server (hopkit.testing.ServerThread) for well-behaved HTTP; raw asyncio
servers for what uvicorn never does (hanging up, a body cut short, garbage).
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from contextlib import asynccontextmanager

import aiohttp
import httpx
import pytest
from hopkit.outgoing import DEFAULT_LIMITS, AiohttpTransport, _httpx_errors, async_client
from hopkit.testing import ServerThread, free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

# --- the well-behaved server -------------------------------------------------------------


async def echo(request: Request) -> JSONResponse:
    """What arrived, as sent: raw path bytes, headers in order, body, the caller's port."""
    assert request.client is not None
    return JSONResponse(
        {
            "method": request.method,
            "raw_path": request.scope["raw_path"].decode("latin-1"),
            "query": request.scope["query_string"].decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.headers.raw],
            "body": (await request.body()).decode(),
            "port": request.client.port,
        }
    )


async def slow(request: Request) -> JSONResponse:
    await asyncio.sleep(float(request.query_params["seconds"]))
    return await echo(request)


async def stalled_body(request: Request) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        yield b"first part, "
        await asyncio.sleep(1.5)
        yield b"the rest"

    return StreamingResponse(body(), media_type="text/plain")


async def needs_fresh_token(request: Request) -> Response:
    if request.headers.get("authorization") != "Bearer fresh":
        return Response(
            status_code=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
    return await echo(request)


async def set_cookie(request: Request) -> Response:
    response = await echo(request)
    response.set_cookie("session", "abc")
    return response


APP = Starlette(
    routes=[
        Route("/echo/{rest:path}", echo, methods=["GET", "POST", "PUT"]),
        Route("/slow", slow),
        Route("/stalled-body", stalled_body),
        Route("/needs-fresh-token", needs_fresh_token),
        Route("/set-cookie", set_cookie),
    ]
)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(APP) as running:
        yield running


def headers_of(response: httpx.Response) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for name, value in response.json()["headers"]:
        seen.setdefault(name, []).append(value)
    return seen


# --- raw servers that misbehave ------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    """A plain TCP server in this event loop; yields its base URL."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> None:
    """Read one request's head (the tests send no body to raw servers)."""
    await reader.readuntil(b"\r\n\r\n")


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.close()


async def cut_body_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
    await writer.drain()
    writer.close()


async def answer_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"this is not HTTP\r\n\r\n")
    await writer.drain()
    writer.close()


async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A 200 whose body comes one byte every 0.2 s: each read is quick, the whole takes 2 s."""
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
    try:
        for _ in range(10):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.2)
    except ConnectionError:
        pass  # the client gave up: what the test wants
    finally:
        writer.close()


# --- tests ---------------------------------------------------------------------------------


async def test_get_and_post_round_trip_json_and_headers(server: ServerThread) -> None:
    async with async_client(
        base_url=server.base_url, timeout=5, headers={"X-Client": "order"}
    ) as client:
        got = await client.get("/echo/x", params={"q": "1"}, headers={"X-Request-Id": "r-1"})
        posted = await client.post("/echo/y", json={"sku": "A-1", "quantity": 2})

    assert got.status_code == 200
    assert got.json()["method"] == "GET"
    assert got.json()["query"] == "q=1"
    assert headers_of(got)["x-client"] == ["order"]
    assert headers_of(got)["x-request-id"] == ["r-1"]
    assert headers_of(got)["user-agent"][0].startswith("python-httpx/")
    assert posted.json()["method"] == "POST"
    assert json.loads(posted.json()["body"]) == {"sku": "A-1", "quantity": 2}
    assert headers_of(posted)["content-type"] == ["application/json"]
    assert posted.headers["content-type"] == "application/json"


async def test_the_request_goes_out_as_httpx_built_it(server: ServerThread) -> None:
    # aiohttp would re-quote these (%7E -> ~, %2E%2E/ eats its parent); a DPoP proof's
    # htu and the gateway's checks are made on httpx's URL, so the bytes must not change.
    path = "/echo/orders/a%2Fb/%7E/%2E%2E/x"
    async with async_client(base_url=server.base_url, timeout=5) as client:
        request = client.build_request("PUT", path + "?next=a%2Fb", content=b"raw bytes")
        request.headers["X-Twice"] = "1"
        request.headers.update([("X-Twice", "2")])
        response = await client.send(request)

    assert response.json()["raw_path"] == request.url.raw_path.split(b"?")[0].decode()
    assert response.json()["raw_path"] == path
    assert response.json()["query"] == "next=a%2Fb"
    seen = headers_of(response)
    assert "content-type" not in seen  # aiohttp would add application/octet-stream
    assert seen["content-length"] == ["9"]
    assert [name for name, _ in response.json()["headers"]].count("host") == 1


async def test_an_auth_flow_that_retries_on_401_works_through_the_transport(
    server: ServerThread,
) -> None:
    class RefreshingAuth(httpx.Auth):
        """Like hopauth's flows: send the cached token, renew it once on a 401."""

        def __init__(self) -> None:
            self.token = "stale"
            self.renewals = 0

        def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
            request.headers["Authorization"] = f"Bearer {self.token}"
            response = yield request
            if response.status_code == 401:
                self.token = "fresh"
                self.renewals += 1
                request.headers["Authorization"] = f"Bearer {self.token}"
                yield request

    auth = RefreshingAuth()
    async with async_client(base_url=server.base_url, timeout=5, auth=auth) as client:
        first = await client.get("/needs-fresh-token")
        second = await client.get("/needs-fresh-token")

    assert (first.status_code, second.status_code) == (200, 200)
    assert auth.renewals == 1
    assert headers_of(first)["authorization"] == ["Bearer fresh"]
    # The 401's connection was reused for the retry: the body was read and released.
    assert first.json()["port"] == second.json()["port"]


async def test_sequential_requests_reuse_one_connection_until_it_has_been_idle_too_long(
    server: ServerThread,
) -> None:
    # Margins wide enough for a busy CI machine: three requests well within 1 s of each other.
    limits = httpx.Limits(max_connections=10, keepalive_expiry=1.0)
    async with async_client(base_url=server.base_url, timeout=5, limits=limits) as client:
        ports = [(await client.get("/echo/")).json()["port"] for _ in range(3)]
        await asyncio.sleep(1.6)
        after_idle = (await client.get("/echo/")).json()["port"]

    assert len(set(ports)) == 1
    assert after_idle != ports[0]


async def test_the_connection_limit_reaches_the_transport(server: ServerThread) -> None:
    one = httpx.Limits(max_connections=1)
    async with async_client(base_url=server.base_url, timeout=5, limits=one) as client:
        responses = await asyncio.gather(
            *(client.get("/slow", params={"seconds": "0.1"}) for _ in range(3))
        )
        # With the only connection busy, waiting longer than the pool timeout fails.
        busy = asyncio.create_task(client.get("/slow", params={"seconds": "2"}))
        await asyncio.sleep(0.1)
        with pytest.raises(httpx.TimeoutException):
            await client.get("/echo/", timeout=httpx.Timeout(5, pool=0.1))
        assert (await busy).status_code == 200

    assert len({r.json()["port"] for r in responses}) == 1


def test_the_default_pool_keeps_every_connection_for_2_seconds() -> None:
    assert DEFAULT_LIMITS.max_connections == 100
    assert DEFAULT_LIMITS.max_keepalive_connections == 100
    assert DEFAULT_LIMITS.keepalive_expiry == 2.0


async def test_connection_refused_is_a_connect_error() -> None:
    async with async_client(timeout=5) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{free_port()}/")


async def test_no_connection_in_time_is_a_connect_timeout() -> None:
    # A listening socket that never accepts, its backlog full: the SYN goes unanswered.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
            async with async_client(timeout=httpx.Timeout(5, connect=0.3)) as client:
                with pytest.raises(httpx.ConnectTimeout):
                    await client.get(f"http://127.0.0.1:{port}/")
        finally:
            for filler in fillers:
                filler.close()


async def test_a_slow_answer_is_a_read_timeout(server: ServerThread) -> None:
    async with async_client(base_url=server.base_url, timeout=httpx.Timeout(5, read=0.2)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/slow", params={"seconds": "1.5"})
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/stalled-body")
        # The client is still usable afterwards (given time to answer this once).
        assert (await client.get("/echo/", timeout=5)).status_code == 200


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (hang_up, httpx.RemoteProtocolError),
        (cut_body_short, httpx.RemoteProtocolError),
        (answer_garbage, httpx.RemoteProtocolError),
    ],
)
async def test_a_server_that_misbehaves_is_a_transport_error_not_a_timeout(
    handler: Handler, expected: type[httpx.TransportError]
) -> None:
    async with raw_server(handler) as url, async_client(timeout=5) as client:
        with pytest.raises(httpx.TransportError) as caught:
            await client.post(url + "/", json={"a": 1})

    assert isinstance(caught.value, expected)
    # The gateway answers a timeout with 504 and any other failure with 503.
    assert not isinstance(caught.value, httpx.TimeoutException)
    assert caught.value.request.url == url + "/"


async def test_a_header_with_a_line_break_is_refused_before_sending(server: ServerThread) -> None:
    async with async_client(base_url=server.base_url, timeout=5) as client:
        with pytest.raises(httpx.LocalProtocolError):
            await client.get("/echo/", headers={"X-Id": "a\r\nX-Injected: 1"})


async def test_cookies_are_httpx_s_alone(server: ServerThread) -> None:
    # By name: aiohttp's own jar would ignore cookies from an IP address.
    base_url = f"http://localhost:{server.port}"
    async with async_client(base_url=base_url, timeout=5) as client:
        await client.get("/set-cookie")
        with_jar = await client.get("/echo/")
        client.cookies.clear()
        cleared = await client.get("/echo/")

    assert headers_of(with_jar)["cookie"] == ["session=abc"]
    assert "cookie" not in headers_of(cleared)


async def test_closing_the_client_closes_its_connections_and_session() -> None:
    closed = asyncio.Event()

    async def answer_then_wait(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        if await reader.read() == b"":  # the client closed its end
            closed.set()
        writer.close()

    transport = AiohttpTransport()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with raw_server(answer_then_wait) as url:
            async with httpx.AsyncClient(transport=transport, timeout=5) as client:
                assert (await client.get(url + "/")).text == "ok"
                assert not closed.is_set()  # kept alive while the client is open
            await asyncio.wait_for(closed.wait(), 2)
        del client, transport
        gc.collect()

    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


async def test_a_client_that_never_sent_anything_closes_cleanly() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with async_client(timeout=5):
            pass
        gc.collect()

    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (TimeoutError(), httpx.TimeoutException),
        (aiohttp.SocketTimeoutError("read"), httpx.ReadTimeout),
        (aiohttp.ConnectionTimeoutError("connect"), httpx.ConnectTimeout),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientConnectionResetError("reset"), httpx.ReadError),
        (aiohttp.ClientOSError(104, "reset"), httpx.ReadError),
        (aiohttp.ClientPayloadError("short"), httpx.RemoteProtocolError),
        (aiohttp.ClientError("other"), httpx.TransportError),
    ],
)
def test_each_aiohttp_error_becomes_the_httpx_error_callers_decide_on(
    raised: Exception, expected: type[httpx.TransportError]
) -> None:
    """Ones the servers above cannot provoke on cue, by their class."""
    with pytest.raises(httpx.TransportError) as caught, _httpx_errors():
        raise raised

    assert type(caught.value) is expected
    assert caught.value.__cause__ is raised
    is_timeout = isinstance(raised, asyncio.TimeoutError)
    assert isinstance(caught.value, httpx.TimeoutException) == is_timeout


def test_other_errors_pass_through_unchanged() -> None:
    with pytest.raises(KeyError), _httpx_errors():
        raise KeyError("ours")


async def test_a_total_timeout_bounds_a_dripping_body() -> None:
    async with raw_server(drip) as url, async_client(timeout=5.0, total_timeout=0.8) as client:
        # The whole body takes 2 s; each read alone is well inside 5 s.
        with pytest.raises(httpx.TimeoutException):
            await client.get(url)


async def test_without_a_total_timeout_a_dripping_body_is_read_to_the_end() -> None:
    # The case above needs its total: per-read timeouts alone let the drip finish.
    async with raw_server(drip) as url, async_client(timeout=1.0) as client:
        response = await client.get(url)
    assert response.content == b"x" * 10
