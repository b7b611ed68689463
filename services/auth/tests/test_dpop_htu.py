"""DPoP ``htu`` at the token endpoint (RFC 9449 §4.3 point 9): the URL the request came to.

The auth server is reached under another name than its issuer here: the issuer
is ``http://127.0.0.1:<port>``, the clients call ``http://localhost:<port>``,
as services do when ``HOPSHOP_AUTH_URL`` differs from ``HOPSHOP_ISSUER``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from auth_testing import ServerThread, assert_oauth_error, claims, free_port, secret
from dpop_testing import client_credentials
from hopauth import DPoPKey, TokenEndpoint


@pytest.fixture
def local_url(auth_server: ServerThread) -> str:
    return f"http://localhost:{auth_server.port}"


@pytest.fixture
def via_localhost(local_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_url, follow_redirects=False, timeout=10) as client:
        yield client


@pytest.fixture
def key() -> DPoPKey:
    return DPoPKey.generate()


def test_issuer_and_request_url_differ(auth_server: ServerThread, local_url: str) -> None:
    # Guards the premise of this module: otherwise the tests below prove nothing.
    assert auth_server.app.state.settings.issuer != local_url


def test_proof_for_the_url_called_is_bound(
    via_localhost: httpx.Client, local_url: str, key: DPoPKey
) -> None:
    proof = key.proof("POST", f"{local_url}/token")
    response = client_credentials(via_localhost, "billing-worker", "order", proof)
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    assert claims(response.json()["access_token"])["cnf"] == {"jkt": key.thumbprint}


def test_proof_for_the_published_token_endpoint_is_bound(
    via_localhost: httpx.Client, key: DPoPKey
) -> None:
    # What a client read from discovery, even if a proxy changed the URL the server sees.
    published = via_localhost.get("/.well-known/oauth-authorization-server").json()
    proof = key.proof("POST", published["token_endpoint"])
    response = client_credentials(via_localhost, "billing-worker", "order", proof)
    assert response.status_code == 200, response.text
    assert claims(response.json()["access_token"])["cnf"] == {"jkt": key.thumbprint}


async def test_hopauth_client_at_the_auth_url_gets_a_bound_token(
    local_url: str, key: DPoPKey
) -> None:
    # The services' own client, configured with the auth URL rather than the issuer.
    async with httpx.AsyncClient(timeout=10) as http:
        endpoint = TokenEndpoint(
            token_url=f"{local_url}/token",
            client_id="billing-worker",
            client_secret=secret("billing-worker")[1],
            http=http,
            dpop_key=key,
        )
        response = await endpoint.client_credentials(audience="order", scopes=["orders:read"])
    assert claims(response.access_token)["cnf"] == {"jkt": key.thumbprint}


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
    via_localhost: httpx.Client, auth_server: ServerThread, key: DPoPKey, htu: str
) -> None:
    url = htu.format(port=auth_server.port, other_port=free_port())
    response = client_credentials(via_localhost, "billing-worker", "order", key.proof("POST", url))
    assert_oauth_error(response, 400, "invalid_dpop_proof")
    assert response.json()["error_description"] == "htu does not match the request URL"
    assert "access_token" not in response.json()
