"""DPoP ``htu`` at the issuer (RFC 9449 §4.3 point 9, §11.1): the URLs it is given, never Host.

The auth server here has three names, as in docker compose: the issuer
(``http://127.0.0.1:<port>``), the URL services are given (``HOPSHOP_AUTH_URL``,
``http://localhost:<port>``), and a published one (``AUTH_PUBLIC_URL``,
``http://auth.example:<port>``, reached here through 127.0.0.1 with that Host).
A proof naming any of them, at the right path, passes; the ``Host`` header the
request arrives with names nothing: a client chooses it, so a proof made for
another server could otherwise be replayed here.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from auth_service.app import create_app
from auth_testing import (
    ServerThread,
    ValkeyServer,
    assert_oauth_error,
    claims,
    free_port,
    login,
    make_settings,
    secret,
)
from dpop_testing import client_credentials
from hopauth import DPoPKey, TokenEndpoint

PUBLIC_HOST = "auth.example"


@pytest.fixture(scope="module")
def named_server(
    tmp_path_factory: pytest.TempPathFactory, valkey: ValkeyServer
) -> Iterator[ServerThread]:
    port = free_port()
    settings = make_settings(
        tmp_path_factory.mktemp("auth-htu"),
        port,
        redis_url=valkey.url,
        auth_url=f"http://localhost:{port}",
        public_url=f"http://{PUBLIC_HOST}:{port}/",
    )
    with ServerThread(create_app(settings), port) as server:
        yield server


@pytest.fixture(scope="module")
def http(named_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=named_server.base_url, timeout=10) as client:
        yield client


@pytest.fixture
def key() -> DPoPKey:
    return DPoPKey.generate()


def names(server: ServerThread) -> dict[str, str]:
    return {
        "issuer": server.base_url,
        "auth_url": f"http://localhost:{server.port}",
        "public_url": f"http://{PUBLIC_HOST}:{server.port}",
    }


@pytest.mark.parametrize("name", ["issuer", "auth_url", "public_url"])
@pytest.mark.parametrize("host", [None, "evil.example", PUBLIC_HOST])
def test_a_proof_for_any_configured_name_is_bound_whatever_the_host(
    http: httpx.Client, named_server: ServerThread, key: DPoPKey, name: str, host: str | None
) -> None:
    proof = key.proof("POST", f"{names(named_server)[name]}/token")
    headers = {"DPoP": proof} if host is None else {"DPoP": proof, "Host": host}
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "audience": "order"},
        auth=secret("billing-worker"),
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    assert claims(response.json()["access_token"])["cnf"] == {"jkt": key.thumbprint}


@pytest.mark.parametrize(
    ("host", "htu"),
    [
        ("evil.example", "http://evil.example/token"),  # the reported replay
        ("evil.example:{port}", "http://evil.example:{port}/token"),
        ("127.0.0.2:{port}", "http://127.0.0.2:{port}/token"),  # an unlisted name of this host
        ("auth.example:{other_port}", "http://auth.example:{other_port}/token"),
    ],
)
def test_a_proof_for_the_host_header_is_invalid_dpop_proof(
    http: httpx.Client, named_server: ServerThread, key: DPoPKey, host: str, htu: str
) -> None:
    """RFC 9449 §11.1: a proof made for another server, sent with that server's Host."""
    port, other_port = named_server.port, free_port()
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "audience": "order"},
        auth=secret("billing-worker"),
        headers={
            "DPoP": key.proof("POST", htu.format(port=port, other_port=other_port)),
            "Host": host.format(port=port, other_port=other_port),
        },
    )
    assert_oauth_error(response, 400, "invalid_dpop_proof")
    assert response.json()["error_description"] == "htu does not match the request URL"
    assert "access_token" not in response.json()


@pytest.mark.parametrize(
    "htu",
    [
        "http://localhost:{port}/introspect",  # another endpoint of this server
        "http://localhost:{port}/token2",
        "http://localhost:{port}/token/",
        "http://other.example:{port}/token",  # another host
        "http://localhost:{other_port}/token",  # another port
        "https://localhost:{port}/token",  # another scheme
        "http://127.0.0.1:{port}/introspect",  # the issuer's name, another endpoint
    ],
)
def test_proof_for_another_url_is_invalid_dpop_proof(
    http: httpx.Client, named_server: ServerThread, key: DPoPKey, htu: str
) -> None:
    url = htu.format(port=named_server.port, other_port=free_port())
    response = client_credentials(http, "billing-worker", "order", key.proof("POST", url))
    assert_oauth_error(response, 400, "invalid_dpop_proof")
    assert response.json()["error_description"] == "htu does not match the request URL"


def test_the_published_token_endpoint_is_the_issuer_s(
    http: httpx.Client, named_server: ServerThread, key: DPoPKey
) -> None:
    # What a client read from discovery, whatever Host it asked with.
    published = http.get(
        "/.well-known/oauth-authorization-server", headers={"Host": "evil.example"}
    ).json()
    assert published["token_endpoint"] == f"{named_server.base_url}/token"
    proof = key.proof("POST", published["token_endpoint"])
    response = client_credentials(http, "billing-worker", "order", proof)
    assert response.status_code == 200, response.text


async def test_hopauth_client_at_the_auth_url_gets_a_bound_token(
    named_server: ServerThread, key: DPoPKey
) -> None:
    # The services' own client, configured with the auth URL rather than the issuer.
    async with httpx.AsyncClient(timeout=10) as http:
        endpoint = TokenEndpoint(
            token_url=f"{names(named_server)['auth_url']}/token",
            client_id="billing-worker",
            client_secret=secret("billing-worker")[1],
            http=http,
            dpop_key=key,
        )
        response = await endpoint.client_credentials(audience="order", scopes=["orders:read"])
    assert claims(response.access_token)["cnf"] == {"jkt": key.thumbprint}


@pytest.mark.parametrize(
    ("htu_base", "host", "status"),
    [
        ("http://localhost:{port}", "evil.example", 200),  # a configured name: Host is moot
        ("http://evil.example", "evil.example", 401),  # the reported replay
        ("http://evil.example:{port}", "evil.example:{port}", 401),
    ],
)
def test_the_user_directory_checks_htu_against_its_names_not_host(
    http: httpx.Client,
    named_server: ServerThread,
    key: DPoPKey,
    htu_base: str,
    host: str,
    status: int,
) -> None:
    """/users/{id} takes hopauth's Requires: the same rule for a resource server (§7.1)."""
    port = named_server.port
    body = client_credentials(
        http, "notification-worker", "auth", key.proof("POST", f"{named_server.base_url}/token")
    ).json()
    token = body["access_token"]
    path = f"/users/{claims(login(http, 'alice').access_token)['sub']}"
    proof = key.proof("GET", htu_base.format(port=port) + path, access_token=token)
    response = http.get(
        path,
        headers={"Authorization": f"DPoP {token}", "DPoP": proof, "Host": host.format(port=port)},
    )
    assert response.status_code == status, response.text
    if status == 401:
        assert response.json()["detail"] == "htu does not match the request URL"
        assert 'error="invalid_dpop_proof"' in response.headers["www-authenticate"]
