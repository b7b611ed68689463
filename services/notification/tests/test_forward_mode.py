"""Forward mode (the vulnerable teaching mode): notification takes a customer's own token.

A forward-mode notification API runs next to the session's exchange-mode
one; each attack that succeeds on the first is tried on the second, where it
fails.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from auth_testing import mint
from hopkit.testing import ServerThread, ValkeyServer
from notification_service.app import create_app
from notification_testing import Customer, assert_problem, bearer, make_settings

MODE = "x-hopshop-mode"


@pytest.fixture(scope="module")
def forward_server(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer
) -> Iterator[ServerThread]:
    # No Kafka, no worker: the API alone.
    settings = make_settings(
        tmp_path_factory.mktemp("notification-forward"),
        issuer,
        None,
        redis_url=valkey.url,
        propagation="forward",
    )
    with ServerThread(create_app(settings)) as server:
        yield server


@pytest.fixture(scope="module")
def forward(forward_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=forward_server.base_url, timeout=10) as client:
        yield client


def tampered(token: str) -> str:
    """The same token with another subject: its signature no longer matches."""
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["sub"] = "mallory"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def broadcast_token(auth_server: ServerThread, client_id: str) -> str:
    """A client-credentials-shaped token with ``notifications:broadcast`` for ``client_id``."""
    return mint(
        auth_server,
        audience="notification",
        client_id=client_id,
        subject=client_id,
        scopes=["notifications:broadcast"],
    )


def test_the_customers_gateway_token_reads_their_notifications(
    forward: httpx.Client, alice: Customer, auth_server: ServerThread
) -> None:
    message = f"forward mode {uuid.uuid4().hex[:8]}"
    posted = forward.post(
        "/broadcasts",
        json={"message": message},
        headers=bearer(broadcast_token(auth_server, "gateway")),
    )
    assert posted.status_code == 201, posted.text

    response = forward.get("/notifications", headers=bearer(alice.login_token))
    assert response.status_code == 200, response.text
    assert response.headers[MODE] == "vulnerable-forwarding"
    assert message in [n["message"] for n in response.json()]


def test_the_same_token_is_refused_in_exchange_mode(http: httpx.Client, alice: Customer) -> None:
    response = http.get("/notifications", headers=bearer(alice.login_token))
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
    assert "audience" in response.headers["www-authenticate"]
    assert MODE not in response.headers


def test_any_client_with_the_scope_may_broadcast(
    forward: httpx.Client, http: httpx.Client, auth_server: ServerThread
) -> None:
    token = broadcast_token(auth_server, "order")
    accepted = forward.post("/broadcasts", json={"message": "from order"}, headers=bearer(token))
    assert accepted.status_code == 201, accepted.text
    refused = http.post("/broadcasts", json={"message": "from order"}, headers=bearer(token))
    assert_problem(refused, 403, "urn:hopauth:problem:forbidden-caller")


def test_what_the_token_itself_says_is_still_checked(
    forward: httpx.Client, alice: Customer, auth_server: ServerThread
) -> None:
    # A user's token cannot broadcast (no scope), and a service's token cannot read (no user).
    assert_problem(
        forward.post("/broadcasts", json={"message": "x"}, headers=bearer(alice.login_token)),
        403,
        "urn:hopauth:problem:insufficient-scope",
    )
    service = mint(
        auth_server,
        audience="notification",
        client_id="gateway",
        subject="gateway",
        scopes=["notifications:read"],
    )
    assert_problem(
        forward.get("/notifications", headers=bearer(service)), 403, "user-context-required"
    )


@pytest.mark.parametrize("kind", ["forged", "expired"])
def test_bad_tokens_are_still_refused(
    forward: httpx.Client, auth_server: ServerThread, alice: Customer, kind: str
) -> None:
    token = {
        "forged": tampered(alice.login_token),
        "expired": mint(
            auth_server,
            audience="gateway",
            client_id="web",
            scopes=["notifications:read"],
            lifetime=-120,
        ),
    }[kind]
    response = forward.get("/notifications", headers=bearer(token))
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
    assert response.headers[MODE] == "vulnerable-forwarding"
