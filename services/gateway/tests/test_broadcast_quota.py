"""Broadcasts: their own scope, a quota per staff member, and a list they cannot bury.

A broadcast reaches every customer, so posting one takes ``support:broadcast``
(only support staff get it at login; ``support:read`` alone does not post),
and each staff member may post ``GATEWAY_BROADCAST_QUOTA`` per
``GATEWAY_BROADCAST_WINDOW`` seconds, counted in the real valkey. However
many get through, a customer's own notifications stay in their list.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from auth_service.db import transaction
from auth_service.models import User
from auth_service.passwords import hash_password
from auth_testing import Login, authorization_code, login, redeem
from gateway_testing import StartGateway, assert_problem, bearer, refresh
from hopkit.testing import ServerThread, eventually

QUOTA = 10
# A window no other test's gateway uses: the window is part of the counter's key, so
# this quota starts from zero whatever carol posted elsewhere in the session.
WINDOW = 1234
PAYS = "4242424242424242"
CHALLENGE = 'Bearer realm="gateway", error="insufficient_scope", scope="support:broadcast"'


def _message() -> str:
    return f"Maintenance tonight ({uuid.uuid4().hex[:8]})"


def _post(http: httpx.Client, token: str, message: str | None = None) -> httpx.Response:
    body = {"message": _message() if message is None else message}
    return http.post("/api/broadcasts", json=body, headers=bearer(token))


@pytest.fixture(scope="module")
def quota_gateway(start_gateway: StartGateway) -> Iterator[httpx.Client]:
    server = start_gateway(broadcast_quota=QUOTA, broadcast_window=WINDOW)
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client


def new_staff_member(auth_server: ServerThread, auth: httpx.Client) -> Login:
    """A second support user (the demo realm has one), logged in as the web UI does."""
    username, password = f"dave-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    with transaction(auth_server.app.state.oauth_server.context.db) as session:  # type: ignore[attr-defined]
        session.add(
            User(
                id=str(uuid.uuid4()),
                username=username,
                password_hash=hash_password(password),
                roles="support",
                email=f"{username}@example.com",
                display_name="Dave Support",
                created_at=int(time.time()),
            )
        )
    code, verifier = authorization_code(auth, username, password)
    response = redeem(auth, code, verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "support:broadcast" in body["scope"].split()
    return Login(body["access_token"], body["refresh_token"], body["scope"])


def test_support_read_alone_does_not_post(http: httpx.Client, auth: httpx.Client) -> None:
    # A fresh login of carol's, narrowed (refresh) to all she had but support:broadcast.
    session = login(auth, "carol")
    reader = refresh(
        auth, session.refresh_token, "orders:read billing:read notifications:read support:read"
    )
    response = _post(http, reader)
    assert_problem(response, 403, "urn:hopauth:problem:insufficient-scope")
    assert response.headers["www-authenticate"] == CHALLENGE
    # The same login with the scope posts.
    assert _post(http, session.access_token).status_code == 201


def test_a_customer_cannot_post(http: httpx.Client, alice: Login) -> None:
    message = _message()
    response = _post(http, alice.access_token, message)
    assert_problem(response, 403, "urn:hopauth:problem:insufficient-scope")
    assert response.headers["www-authenticate"] == CHALLENGE
    notes = http.get("/api/notifications", headers=bearer(alice.access_token)).json()
    assert message not in [n["message"] for n in notes]


def test_the_quota_is_per_staff_member_and_a_refused_body_costs_nothing(
    quota_gateway: httpx.Client, carol: Login, auth_server: ServerThread, auth: httpx.Client
) -> None:
    # Invalid bodies are refused (422) before the quota counts anything.
    for _ in range(3):
        assert_problem(_post(quota_gateway, carol.access_token, " "), 422)
    sent = [_post(quota_gateway, carol.access_token).status_code for _ in range(QUOTA)]
    assert sent == [201] * QUOTA

    message = _message()
    refused = _post(quota_gateway, carol.access_token, message)
    problem = assert_problem(refused, 429, "broadcast-quota")
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW
    assert problem["retry_after"] == retry_after
    assert f"at most {QUOTA} broadcasts per {WINDOW} s" in problem["detail"]
    notes = quota_gateway.get("/api/notifications", headers=bearer(carol.access_token)).json()
    assert message not in [n["message"] for n in notes]

    # Another staff member has a quota of their own.
    dave = new_staff_member(auth_server, auth)
    assert _post(quota_gateway, dave.access_token).status_code == 201
    assert _post(quota_gateway, carol.access_token).status_code == 429


def test_a_flood_of_broadcasts_does_not_bury_alices_notifications(
    start_gateway: StartGateway, alice: Login, carol: Login
) -> None:
    server = start_gateway(broadcast_quota=100, broadcast_window=WINDOW + 1)
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        products: list[dict[str, Any]] = http.get("/api/products").json()
        product = max(products, key=lambda p: p["available"])
        order = {"items": [{"product_id": product["id"], "quantity": 1}], "card": PAYS}
        placed = http.post("/api/orders", json=order, headers=bearer(alice.access_token))
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["id"]

        def mine() -> list[dict[str, Any]] | None:
            notes = http.get("/api/notifications", headers=bearer(alice.access_token)).json()
            return [n for n in notes if n["order_id"] == order_id] or None

        before = {n["id"] for n in eventually(mine, "alice's notification")}
        flood = [_message() for _ in range(60)]
        for message in flood:
            assert _post(http, carol.access_token, message).status_code == 201

        notes = http.get("/api/notifications", headers=bearer(alice.access_token)).json()
        assert before <= {n["id"] for n in notes if not n["broadcast"]}
        shown = [n["message"] for n in notes if n["broadcast"]]
        assert shown == flood[::-1][:10]
