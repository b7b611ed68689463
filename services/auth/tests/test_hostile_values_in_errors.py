"""Client values quoted back in an OAuth error are made safe, never a 500 (RFC 6749 §5.2).

``error_description`` may hold only %x20-21 / %x23-5B / %x5D-7E, and Authlib
raises ValueError when asked for anything else. Each error below quotes a
value the client sent (an audience, a scope, a redirect URI, a response
type), so each is sent with characters outside that set: a quote, a
backslash, a NUL, a newline, a non-ASCII letter.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from auth_testing import (
    ACCESS_TOKEN_TYPE,
    EXCHANGE,
    REDIRECT_URI,
    Login,
    ServerThread,
    authorize_params,
    login,
    pkce_pair,
    secret,
)

# RFC 6749 §5.2 (error_description) and Appendix A.
DESCRIPTION = re.compile(r"^[\x20-\x21\x23-\x5b\x5d-\x7e]*$")
HOSTILE = ['a"b', "a\\b", "a\x00b", "a\nb", "caf\u00e9"]


@pytest.fixture(scope="module")
def alice(auth_server: ServerThread) -> Login:
    with httpx.Client(base_url=auth_server.base_url, timeout=10) as client:
        return login(client, "alice")


@pytest.fixture
def client(auth_server: ServerThread) -> httpx.Client:
    # A fresh connection per request: a server error drops its connection.
    return httpx.Client(
        base_url=auth_server.base_url,
        headers={"Connection": "close"},
        follow_redirects=False,
        timeout=10,
    )


def assert_safe_oauth_error(response: httpx.Response, error: str) -> None:
    assert response.status_code == 400, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("cache-control") == "no-store"
    body = response.json()
    assert body["error"] == error, body
    assert DESCRIPTION.match(body.get("error_description", "")), body


@pytest.mark.parametrize("value", HOSTILE)
def test_client_credentials_for_a_hostile_audience_is_invalid_target(
    client: httpx.Client, value: str
) -> None:
    response = client.post(
        "/token",
        data={"grant_type": "client_credentials", "audience": value},
        auth=secret("gateway"),
    )
    assert_safe_oauth_error(response, "invalid_target")


@pytest.mark.parametrize("value", HOSTILE)
def test_client_credentials_for_a_hostile_scope_is_invalid_scope(
    client: httpx.Client, value: str
) -> None:
    response = client.post(
        "/token",
        data={"grant_type": "client_credentials", "audience": "notification", "scope": value},
        auth=secret("gateway"),
    )
    assert_safe_oauth_error(response, "invalid_scope")


@pytest.mark.parametrize(
    ("field", "error"),
    [
        ("audience", "invalid_target"),
        ("scope", "invalid_scope"),
    ],
)
@pytest.mark.parametrize("value", HOSTILE)
def test_token_exchange_with_a_hostile_value_is_a_400(
    client: httpx.Client, alice: Login, field: str, error: str, value: str
) -> None:
    form = {
        "grant_type": EXCHANGE,
        "subject_token": alice.access_token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "audience": "order",
        field: value,
    }
    assert_safe_oauth_error(client.post("/token", data=form, auth=secret("gateway")), error)


@pytest.mark.parametrize("value", HOSTILE)
def test_actor_token_for_a_hostile_audience_is_invalid_request(
    client: httpx.Client, alice: Login, value: str
) -> None:
    form = {
        "grant_type": EXCHANGE,
        "subject_token": alice.access_token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "actor_token": alice.access_token,
        "actor_token_type": ACCESS_TOKEN_TYPE,
        "audience": value,
    }
    response = client.post("/token", data=form, auth=secret("gateway"))
    assert_safe_oauth_error(response, "invalid_request")


@pytest.mark.parametrize("value", HOSTILE)
def test_authorize_with_a_hostile_redirect_uri_shows_an_error_page(
    client: httpx.Client, value: str
) -> None:
    # RFC 6749 §4.1.2.1: a redirect URI in doubt is never redirected to.
    _, challenge = pkce_pair()
    response = client.get("/authorize", params=authorize_params(challenge, redirect_uri=value))
    assert response.status_code == 400, f"{response.status_code}: {response.text}"
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "<code>invalid_request</code>" in response.text


@pytest.mark.parametrize("value", HOSTILE)
def test_authorize_with_a_hostile_response_type_redirects_the_error(
    client: httpx.Client, value: str
) -> None:
    # Client and redirect URI are good, so the error goes back to the client (§4.1.2.1).
    _, challenge = pkce_pair()
    response = client.get("/authorize", params=authorize_params(challenge, response_type=value))
    assert response.status_code == 302, f"{response.status_code}: {response.text}"
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["error"] == ["unsupported_response_type"], query
    assert query["state"] == ["st4te"], query
    assert all(DESCRIPTION.match(text) for text in query.get("error_description", [])), query
