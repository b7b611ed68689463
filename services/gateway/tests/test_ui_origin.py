"""The web UI's pages asked for at another loopback name redirect to the public URL.

The page keeps the PKCE verifier and ``state`` in ``sessionStorage``, which is per
origin, and the issuer always sends the browser back to the public URL's
``/callback`` (redirect URIs match exactly). A page opened at ``localhost:8000``
could not finish its login at ``127.0.0.1:8000``, so the gateway sends it there first.
Any other Host gets the page: it may be a reverse proxy's, and a redirect would loop.
"""

from __future__ import annotations

import socket

import httpx
import pytest
from gateway_testing import StartGateway
from hopkit.testing import ServerThread

#: The test gateway's GATEWAY_PUBLIC_URL: the default.
PUBLIC = "http://127.0.0.1:8000"


def page(http: httpx.Client, path: str, host: str) -> httpx.Response:
    """GET ``path`` as a browser that reached the gateway as ``host``."""
    return http.get(path, headers={"Host": host})


@pytest.mark.parametrize(
    ("path", "query"),
    [("/", ""), ("/callback", "code=abc&state=x%2Fy"), ("/", "next=%2Forders&a=1&a=2")],
)
@pytest.mark.parametrize("host", ["localhost:8000", "LocalHost:8000", "[::1]:8000"])
def test_a_page_at_another_loopback_name_redirects_to_the_public_url(
    http: httpx.Client, path: str, query: str, host: str
) -> None:
    url = f"{path}?{query}" if query else path
    response = page(http, url, host)
    assert response.status_code == 307, response.text
    # The path and the query exactly as sent: the callback's code and state survive.
    assert response.headers["location"] == f"{PUBLIC}{url}"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "127.0.0.1:8000".upper()])
@pytest.mark.parametrize("path", ["/", "/callback"])
def test_the_public_host_gets_the_page(http: httpx.Client, path: str, host: str) -> None:
    response = page(http, path, host)
    assert response.status_code == 200, response.headers
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8000",
        "gateway:8000",  # a proxy that sets Host to its upstream's name
        "127.0.0.1",  # the default port (80) is not the public URL's 8000
        "localhost",
        "localhost:8001",
        "127.0.0.1:8000@evil.example",
        "127.0.0.1:8000/evil",
        "127.0.0.1:port",
        "[::1",
        "",
    ],
)
def test_any_other_host_gets_the_page_never_a_redirect(http: httpx.Client, host: str) -> None:
    response = page(http, "/callback?code=c", host)
    assert response.status_code == 200, response.headers
    assert response.headers["content-type"].startswith("text/html")


def test_a_request_without_a_host_gets_the_page_not_an_error(gateway: ServerThread) -> None:
    # HTTP/1.0 lets a client leave Host out (httpx always sends one): a raw socket.
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(b"GET /?a=b HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    assert head.startswith("http/1.1 200"), head


@pytest.mark.parametrize("path", ["/api/products", "/config.json", "/app.js", "/healthz"])
def test_the_api_and_the_assets_are_not_redirected(http: httpx.Client, path: str) -> None:
    response = page(http, path, "localhost:8000")
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def proxied(start_gateway: StartGateway) -> ServerThread:
    """A gateway whose public URL is a TLS proxy's, on the default port."""
    return start_gateway(public_url="https://Shop.Example/")


@pytest.mark.parametrize("host", ["shop.example", "SHOP.EXAMPLE:443"])
def test_the_default_port_is_the_public_schemes(proxied: ServerThread, host: str) -> None:
    # Behind the proxy the request itself is plain http: the Host is what counts.
    with httpx.Client(base_url=proxied.base_url, timeout=30) as http:
        assert page(http, "/", host).status_code == 200


@pytest.mark.parametrize("host", ["gateway:8000", "shop.example:80", "localhost:443"])
def test_the_proxied_gateway_never_redirects(proxied: ServerThread, host: str) -> None:
    # A proxy may set Host to the upstream's name: a redirect would send the browser
    # back through the proxy to the same answer, in a loop.
    with httpx.Client(base_url=proxied.base_url, timeout=30) as http:
        response = page(http, "/callback?state=s", host)
    assert response.status_code == 200, response.headers
