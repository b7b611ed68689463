"""AUTH_EXTRA_REDIRECT_URIS: a deployment's own callbacks, on top of the policy's.

Registered URIs are still matched exactly (RFC 9700 §4.1.1); a bad entry stops
start-up with a message naming it, as a bad policy entry does.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from auth_service.app import create_app
from auth_service.config import DEFAULT_POLICY_FILE, Settings
from auth_service.policy import PolicyError, load_policy
from auth_service.redirect_uris import add_redirect_uris
from auth_testing import (
    REDIRECT_URI,
    ServerThread,
    authorize_params,
    free_port,
    make_settings,
    pkce_pair,
)

# A gateway moved off DESIGN.md's port 8000, as `hopshop up --port-offset 100` runs it.
MOVED = "http://127.0.0.1:8100/callback"


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The real auth service with the moved gateway's callback registered for ``web``."""
    port = free_port()
    settings = make_settings(
        tmp_path_factory.mktemp("auth-extra"), port, extra_redirect_uris={"web": [MOVED]}
    )
    with (
        ServerThread(create_app(settings), port) as server,
        httpx.Client(base_url=server.base_url, follow_redirects=False, timeout=10) as client,
    ):
        yield client


def log_in(http: httpx.Client, redirect_uri: str) -> httpx.Response:
    _, challenge = pkce_pair()
    params = authorize_params(challenge, redirect_uri=redirect_uri)
    return http.post(
        "/authorize", params=params, data={"username": "alice", "password": "alice-dev-password"}
    )


# The merge


def test_extra_uris_are_added_after_the_policys_own_once() -> None:
    policy = load_policy(DEFAULT_POLICY_FILE)
    merged = add_redirect_uris(policy, {"web": [REDIRECT_URI, MOVED, MOVED]})
    assert merged.clients["web"].redirect_uris == (REDIRECT_URI, MOVED)
    # Nothing else changes, and the loaded policy is left as it was.
    assert policy.clients["web"].redirect_uris == (REDIRECT_URI,)
    assert {k: v for k, v in merged.clients.items() if k != "web"} == {
        k: v for k, v in policy.clients.items() if k != "web"
    }


def test_no_extra_uris_is_the_policy_unchanged() -> None:
    policy = load_policy(DEFAULT_POLICY_FILE)
    assert add_redirect_uris(policy, {}) == policy


def test_the_setting_is_json_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(("AUTH_", "HOPSHOP_")):
            monkeypatch.delenv(name)
    assert Settings().extra_redirect_uris == {}
    monkeypatch.setenv("AUTH_EXTRA_REDIRECT_URIS", json.dumps({"web": [MOVED]}))
    assert Settings().extra_redirect_uris == {"web": [MOVED]}


# At /authorize


def test_an_extra_uri_gets_the_code(moved: httpx.Client) -> None:
    response = log_in(moved, MOVED)
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == MOVED
    query = parse_qs(location.query)
    assert query["state"] == ["st4te"]
    assert query["code"][0]


def test_the_policys_own_uri_still_gets_the_code(moved: httpx.Client) -> None:
    response = log_in(moved, REDIRECT_URI)
    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith(REDIRECT_URI + "?")


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:8200/callback",  # another port: not registered
        MOVED + "/",  # exact match: no prefixes
        MOVED.replace("127.0.0.1", "localhost"),
        MOVED + "?next=https://evil.example",
    ],
)
def test_an_unregistered_uri_is_still_refused(moved: httpx.Client, uri: str) -> None:
    response = log_in(moved, uri)
    assert response.status_code == 400
    assert "location" not in response.headers


def test_with_two_uris_registered_the_request_must_name_one(moved: httpx.Client) -> None:
    # RFC 6749 §3.1.2.3: with several registered, no default is guessed.
    _, challenge = pkce_pair()
    params = authorize_params(challenge)
    del params["redirect_uri"]
    response = moved.get("/authorize", params=params)
    assert response.status_code == 400, response.text
    assert "location" not in response.headers


def test_production_takes_redirect_uris_from_the_policy_file_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="AUTH_EXTRA_REDIRECT_URIS must be empty"):
        Settings(
            env="production",
            issuer="https://auth.example",
            redis_url="redis://127.0.0.1:6379/0",
            seed_demo_realm=False,
            extra_redirect_uris={"web": ["https://shop.example/callback"]},
        )


# Start-up stops on a bad entry


BAD = [
    pytest.param({"nobody": [MOVED]}, "AUTH_EXTRA_REDIRECT_URIS['nobody']: ",
                 "no client 'nobody' in the policy", id="unknown-client"),
    pytest.param({"gateway": [MOVED]}, "AUTH_EXTRA_REDIRECT_URIS['gateway']: ",
                 "has no authorization_code grant", id="no-code-grant"),
    pytest.param({"web": ["/callback"]}, "AUTH_EXTRA_REDIRECT_URIS['web']: ",
                 "'/callback' must be an absolute http(s) URL", id="relative"),
    pytest.param({"web": ["javascript:alert(1)"]}, "AUTH_EXTRA_REDIRECT_URIS['web']: ",
                 "must be an absolute http(s) URL", id="javascript"),
    pytest.param({"web": [MOVED + "#top"]}, "AUTH_EXTRA_REDIRECT_URIS['web']: ",
                 f"'{MOVED}#top' must be an absolute http(s) URL", id="fragment"),
    pytest.param({"web": [MOVED, "myapp://cb"]}, "AUTH_EXTRA_REDIRECT_URIS['web']: ",
                 "'myapp://cb' must be an absolute http(s) URL", id="custom-scheme"),
    # Reads as loopback, goes to evil.example.
    pytest.param({"web": ["http://127.0.0.1:8100@evil.example/callback"]},
                 "AUTH_EXTRA_REDIRECT_URIS['web']: ", "must be an absolute http(s) URL",
                 id="userinfo"),
    pytest.param({"web": [MOVED + "#"]}, "AUTH_EXTRA_REDIRECT_URIS['web']: ",
                 "must be an absolute http(s) URL", id="empty-fragment"),
    pytest.param({"web": [" " + MOVED]}, "AUTH_EXTRA_REDIRECT_URIS['web']: ",
                 "must be an absolute http(s) URL", id="whitespace"),
    pytest.param({"web": ["http://127.0.0.1:99999/callback"]}, "AUTH_EXTRA_REDIRECT_URIS['web']: ",
                 "must be an absolute http(s) URL", id="port-out-of-range"),
    pytest.param({"web": ["http://[::1/callback"]}, "AUTH_EXTRA_REDIRECT_URIS['web']: ",
                 "must be an absolute http(s) URL", id="unparseable"),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "where", "what"), BAD)
async def test_start_up_stops_on_a_bad_extra_redirect_uri(
    tmp_path: Path, extra: dict[str, list[str]], where: str, what: str
) -> None:
    app = create_app(make_settings(tmp_path, free_port(), extra_redirect_uris=extra))
    with pytest.raises(PolicyError) as raised:
        async with app.router.lifespan_context(app):
            pytest.fail("the app started with a bad AUTH_EXTRA_REDIRECT_URIS")
    message = str(raised.value)
    assert re.match(re.escape(where), message), message
    assert what in message, message
    # Checked with the policy, first: nothing else (the database) was touched.
    assert not (tmp_path / "auth.db").exists()
