"""The HTTP clients services call each other with: httpx's API on aiohttp's connections.

Why: httpx's own transport (httpcore + h11 + anyio) was most of httpx's 15-37 %
share of the gateway's and order's CPU. A keep-alive JSON POST costs the caller
~0.9 ms of CPU with it and ~0.6 ms with aiohttp's (2-core machine, uvloop), and
an order makes ~7 internal calls. httpx stays the API, so hopauth's ``httpx.Auth``
flows (client credentials, token exchange, DPoP proofs) run unchanged; only the
transport under it (:class:`AiohttpTransport`) is aiohttp's.

The transport is ours, on aiohttp's public API, rather than ``httpx-aiohttp``'s:
that one (0.2) hands aiohttp the URL as a string, which aiohttp re-quotes
(``%7E`` becomes ``~`` and a ``%2E%2E`` segment is removed with its parent), so
the server would be sent another path than the one httpx built, the gateway
checked and a DPoP proof signed (RFC 9449 §4.2, ``htu``); it reports a server
that hung up as a connect *timeout* (a 504 at the gateway, not a 503), and lets
some of aiohttp's errors out unmapped; and its session keeps a cookie jar of
its own under httpx's, which no caller can see or clear.

Pool policy (:data:`DEFAULT_LIMITS`): keep every connection, since with httpx's
default of 20 idle ones a burst beyond 20 in flight closes and reopens
connections, which costs both sides CPU exactly when there is none to spare;
and drop idle ones after 2 s, well before uvicorn's 5 s keep-alive timeout, so
a request never picks a connection the server is closing at that moment.

The environment is not trusted for proxies or ``.netrc`` credentials (these are
calls to configured service URLs; a proxy picked up from the environment would
surprise), but ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` still name the CAs to trust,
as they do for httpx's own transport.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import aiohttp
import httpx
import yarl

__all__ = ["DEFAULT_LIMITS", "AiohttpTransport", "async_client"]

#: Every connection kept; idle ones closed after 2 s (see the module docstring).
DEFAULT_LIMITS = httpx.Limits(
    max_connections=100, max_keepalive_connections=100, keepalive_expiry=2.0
)

# aiohttp's errors as the httpx errors callers decide on (retry, 502/503/504):
# first match wins, so subclasses come before their bases.
_ERRORS: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    # ClientTimeout.connect / sock_connect: no connection (or pool slot) in time.
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    # sock_read: no byte from the server for the read timeout.
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    # Any other timeout, including the bare TimeoutError of aiohttp's timers.
    (TimeoutError, httpx.TimeoutException),
    (aiohttp.ClientProxyConnectionError, httpx.ProxyError),
    # Refused, unknown host, TLS handshake: the request was never sent.
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    # The server closed the connection before answering (httpcore's name for it).
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    # The body was cut short, or the response could not be parsed.
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    # Reset or closed while sending or reading.
    (aiohttp.ClientConnectionError, httpx.ReadError),
    (aiohttp.ClientError, httpx.TransportError),
    # A request aiohttp refuses to send, e.g. CR or LF in a header value.
    (ValueError, httpx.LocalProtocolError),
)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    """Raise aiohttp's errors as httpx's, so ``except httpx.HTTPError`` still catches them."""
    try:
        yield
    except Exception as exc:
        for aiohttp_error, httpx_error in _ERRORS:
            if isinstance(exc, aiohttp_error):
                raise httpx_error(str(exc) or type(exc).__name__) from exc
        raise


class _Body(httpx.AsyncByteStream):
    """A response body read from aiohttp; closing it gives the connection back to the pool."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        with _httpx_errors():
            self._response.release()
            await self._response.wait_for_close()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport that sends HTTP/1.1 requests with one aiohttp session.

    The session is made on the first request, inside the running event loop as
    aiohttp requires, and closed with the transport (the client's ``aclose``).
    httpx's ``Timeout`` applies: ``connect`` to connecting, ``pool`` to getting a
    connection at all, ``read`` to each wait for data (aiohttp has no write
    timeout). ``total``, when set, bounds a whole exchange, body included: a
    peer that sends one byte just inside each ``read`` timeout cannot hold the
    caller longer (httpx's ``TimeoutException``). ``limits.max_keepalive_connections``
    has no aiohttp equivalent: every idle connection is kept until ``keepalive_expiry``.
    """

    def __init__(self, limits: httpx.Limits = DEFAULT_LIMITS, total: float | None = None) -> None:
        self._limits = limits
        self._total = total
        # httpx's CA choice: certifi, or SSL_CERT_FILE / SSL_CERT_DIR when set.
        self._ssl = httpx.create_ssl_context()
        self._session: aiohttp.ClientSession | None = None

    def _new_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,  # 0: no limit, as None is for httpx
            keepalive_timeout=self._limits.keepalive_expiry,
            ssl=self._ssl,
        )
        return aiohttp.ClientSession(
            connector=connector,
            # Cookies are kept by httpx, where callers see and clear them; a second jar
            # here would send cookies no caller knows of.
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            # The headers sent are the ones httpx built, none added.
            skip_auto_headers=("Accept", "Accept-Encoding", "Content-Type", "User-Agent"),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` as httpx built it: same URL bytes, same headers, same body."""
        if self._session is None:
            self._session = self._new_session()
        timeout = request.extensions.get("timeout", {})
        data: bytes | httpx.AsyncByteStream | None
        try:
            data = request.content or None
        except httpx.RequestNotRead:
            # A streamed body: aiohttp frames it itself (chunked).
            data = request.stream  # type: ignore[assignment]
            request.headers.pop("transfer-encoding", None)
        with _httpx_errors():
            response = await self._session.request(
                request.method,
                # Already encoded by httpx: not to be re-quoted (see the module docstring).
                yarl.URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=data,
                allow_redirects=False,  # httpx follows redirects, or not
                auto_decompress=False,  # httpx decodes Content-Encoding
                timeout=aiohttp.ClientTimeout(
                    total=self._total,
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("ascii", "replace"),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def async_client(
    *,
    timeout: httpx.Timeout | float | None,
    base_url: httpx.URL | str = "",
    auth: httpx.Auth | None = None,
    headers: Mapping[str, str] | None = None,
    event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
    limits: httpx.Limits = DEFAULT_LIMITS,
    follow_redirects: bool = False,
    total_timeout: float | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on :class:`AiohttpTransport`; close it (``async with``).

    ``limits`` go to the transport: httpx ignores a client's own ``limits`` once
    it is given a transport. ``total_timeout`` bounds each request and its body
    as a whole (httpx's ``timeout`` bounds each wait only).
    """
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout,
        auth=auth,
        headers=headers,
        event_hooks=event_hooks,
        follow_redirects=follow_redirects,
        trust_env=False,
        transport=AiohttpTransport(limits, total_timeout),
    )
