"""DPoP at notification, both sides (RFC 9449): bound tokens in, the worker's bound token out.

Receiving: notification runs with DPoP on and required (its one caller is the
gateway: users' exchanged tokens and its own broadcast token), proofs' ``jti``
in the real valkey. Sending: the worker's user-directory client, with the
worker's key, gets a bound token from the real issuer and looks alice up at
the auth service, which checks the proof.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
from auth_testing import login
from dpop_testing import (
    assert_dpop_refused,
    bound_client_credentials,
    bound_exchange,
    jwt_claims,
    with_proof,
)
from hopauth import DPoPKey
from hopkit.testing import ServerThread, ValkeyServer, free_port
from notification_service.app import create_app
from notification_service.directory import Contact, UserDirectory, directory_client
from notification_testing import Customer, bearer, make_settings


@pytest.fixture(scope="module")
def notification(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer
) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp("notification-dpop")
    port = free_port()
    settings = make_settings(
        tmp,
        issuer,
        None,
        redis_url=valkey.url,
        dpop=True,
        notification_url=f"http://127.0.0.1:{port}",
    )
    with ServerThread(create_app(settings), port) as server:
        yield server


@pytest.fixture(scope="module")
def gateway_key() -> DPoPKey:
    return DPoPKey.generate()


@pytest.fixture(scope="module")
def bound_alice(auth: httpx.Client, gateway_key: DPoPKey) -> str:
    """alice's token as the gateway exchanges it for notification, bound to the gateway's key."""
    user = login(auth, "alice").access_token
    return bound_exchange(auth, gateway_key, "gateway", user, "notification", "notifications:read")


@pytest.fixture(scope="module")
def bound_gateway(auth: httpx.Client, gateway_key: DPoPKey) -> str:
    """The gateway's own broadcast token, bound to its key."""
    return bound_client_credentials(
        auth, gateway_key, "gateway", "notification", "notifications:broadcast"
    )


def test_a_broadcast_and_its_reading_with_bound_tokens(
    notification: ServerThread, gateway_key: DPoPKey, bound_gateway: str, bound_alice: str
) -> None:
    message = f"DPoP broadcast {uuid.uuid4().hex[:8]}"
    url = f"{notification.base_url}/broadcasts"
    posted = httpx.post(
        url, json={"message": message}, headers=with_proof(gateway_key, "POST", url, bound_gateway)
    )
    assert posted.status_code == 201, posted.text

    url = f"{notification.base_url}/notifications"
    listed = httpx.get(url, headers=with_proof(gateway_key, "GET", url, bound_alice))
    assert listed.status_code == 200, listed.text
    assert message in [n["message"] for n in listed.json()]


def test_unbound_tokens_are_refused(
    notification: ServerThread, alice: Customer, gateway: str
) -> None:
    """The plain tokens notification accepted before DPoP: a user's and the gateway's own."""
    listed = httpx.get(f"{notification.base_url}/notifications", headers=bearer(alice.token))
    assert_dpop_refused(listed, "invalid-token", "accepts only DPoP-bound tokens")
    posted = httpx.post(
        f"{notification.base_url}/broadcasts", json={"message": "hi"}, headers=bearer(gateway)
    )
    assert_dpop_refused(posted, "invalid-token", "accepts only DPoP-bound tokens")


def test_a_bound_token_presented_as_bearer_is_refused(
    notification: ServerThread, bound_gateway: str
) -> None:
    response = httpx.post(
        f"{notification.base_url}/broadcasts",
        json={"message": "from a thief"},
        headers=bearer(bound_gateway),
    )
    assert_dpop_refused(response, "invalid-token", "presented as a bearer token")


def test_a_replayed_proof_is_refused(
    notification: ServerThread, gateway_key: DPoPKey, bound_alice: str
) -> None:
    url = f"{notification.base_url}/notifications"
    headers = with_proof(gateway_key, "GET", url, bound_alice)
    assert httpx.get(url, headers=headers).status_code == 200
    assert_dpop_refused(httpx.get(url, headers=headers), "invalid-dpop-proof", "replayed")


def test_the_workers_directory_client_uses_a_bound_token(
    notification: ServerThread, alice: Customer
) -> None:
    """Built as the worker builds it: a bound token, a proof per lookup, the real directory."""
    key = DPoPKey.generate()
    settings = notification.app.state.settings

    async def look_up() -> tuple[Contact | None, httpx.Headers]:
        async with (
            httpx.AsyncClient(timeout=5) as http,
            directory_client(settings, http, None, key) as directory_http,
        ):
            sent: list[httpx.Request] = []

            async def keep(request: httpx.Request) -> None:
                sent.append(request)

            directory_http.event_hooks["request"].append(keep)
            contact = await UserDirectory(directory_http).contact(alice.user_id)
            return contact, sent[-1].headers

    contact, headers = asyncio.run(look_up())
    assert contact is not None and contact.user_id == alice.user_id
    assert headers["authorization"].startswith("DPoP ")
    assert jwt_claims(headers["dpop"])["htm"] == "GET"
