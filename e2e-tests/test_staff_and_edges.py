"""Support access, broadcasts, and what the edge does: auth errors, rate limit, trace ids."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import GOOD_CARD, System, bearer, eventually, login
from hopshop_stack.demo import Hop, collect_hops, jwt_claims, traceparent
from hopshop_stack.state import logs_dir


def sub(headers: dict[str, str]) -> str:
    """The user id in a bearer token (decoded, not verified: the test only compares it)."""
    subject: str = jwt_claims(headers["Authorization"].removeprefix("Bearer "))["sub"]
    return subject


@pytest.fixture(scope="module")
def alice(system: System) -> dict[str, str]:
    return bearer(login(system.auth, "alice"))


@pytest.fixture(scope="module")
def carol(system: System) -> dict[str, str]:
    return bearer(login(system.auth, "carol"))


@pytest.fixture(scope="module")
def alices_order(gateway: httpx.Client, alice: dict[str, str]) -> str:
    products: list[dict[str, Any]] = gateway.get("/api/products").json()
    body = {"items": [{"product_id": products[0]["id"], "quantity": 1}], "card": GOOD_CARD}
    placed = gateway.post("/api/orders", json=body, headers=alice)
    assert placed.status_code == 201, placed.text
    order_id: str = placed.json()["id"]
    return order_id


def test_support_staff_can_view_a_customers_order(
    gateway: httpx.Client, alice: dict[str, str], carol: dict[str, str], alices_order: str
) -> None:
    viewed = gateway.get(f"/api/support/orders/{alices_order}", headers=carol)
    assert viewed.status_code == 200, viewed.text
    assert viewed.json()["id"] == alices_order
    assert viewed.json()["customer_id"] == sub(alice)
    # A customer has no support:read.
    assert gateway.get(f"/api/support/orders/{alices_order}", headers=alice).status_code == 403
    assert gateway.get("/api/support/orders/no-such-order", headers=carol).status_code == 404


def test_support_access_shows_carol_in_act(
    system: System,
    gateway: httpx.Client,
    alice: dict[str, str],
    carol: dict[str, str],
    alices_order: str,
) -> None:
    """The token order received names the customer as sub, carol under the gateway in act.

    Read from the request log line of order in our own trace, as `hopshop demo` does.
    """
    if "state_dir" not in system.env:
        pytest.skip("reads the logs of a local stack (not --base-url / --stack compose)")
    trace_id = secrets.token_hex(16)
    viewed = gateway.get(
        f"/api/support/orders/{alices_order}", headers={**carol, **traceparent(trace_id)}
    )
    assert viewed.status_code == 200, viewed.text

    logs = logs_dir(Path(system.env["state_dir"]))

    def order_hops() -> dict[str, Hop]:
        hops = collect_hops(logs, trace_id)
        found = {hop.path: hop for hop in hops if hop.service == "order"}
        return found if f"/orders/{alices_order}" in found else {}

    hops = eventually(order_hops, "order's request lines of the support trace", timeout=10)
    lookup = hops[f"/support/orders/{alices_order}/owner"]
    assert (lookup.sub, lookup.act, lookup.scope) == (sub(carol), ["gateway"], ["support:read"])
    view = hops[f"/orders/{alices_order}"]
    assert view.sub == sub(alice)
    assert view.act == ["gateway", sub(carol)]
    assert (view.aud, view.client_id, view.scope) == (["order"], "gateway", ["orders:read"])


def test_a_broadcast_reaches_customers(
    system: System, gateway: httpx.Client, alice: dict[str, str], carol: dict[str, str]
) -> None:
    # carol's login asked for support:broadcast (SCOPES), which only support staff get.
    message = "Maintenance tonight at 22:00"
    sent = gateway.post("/api/broadcasts", json={"message": message}, headers=carol)
    assert sent.status_code == 201, sent.text
    eventually(
        lambda: [
            n
            for n in gateway.get("/api/notifications", headers=alice).json()
            if n["message"] == message and n["broadcast"]
        ],
        "the broadcast",
    )
    # Reading any order (support:read) is not posting: a login without the scope is refused,
    # and so is a customer, whatever she asked for.
    reader = bearer(login(system.auth, "carol", scope="notifications:read support:read"))
    for headers in (reader, alice):
        refused = gateway.post("/api/broadcasts", json={"message": "x"}, headers=headers)
        assert refused.status_code == 403, refused.text
        challenge = refused.headers["www-authenticate"]
        assert 'error="insufficient_scope"' in challenge, challenge
        assert 'scope="support:broadcast"' in challenge, challenge


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YWxpY2U6cHc="}],
)
def test_orders_need_a_valid_user_token(gateway: httpx.Client, headers: dict[str, str]) -> None:
    response = gateway.get("/api/orders", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_request_id_is_echoed_and_created_at_the_edge(gateway: httpx.Client) -> None:
    assert (
        gateway.get("/api/products", headers={"x-request-id": "e2e-42"}).headers["x-request-id"]
        == "e2e-42"
    )
    assert gateway.get("/api/products").headers["x-request-id"]


async def test_per_user_rate_limit(system: System) -> None:
    token = bearer(login(system.auth, "bob"))
    # All at once: the limit counts per fixed one-second window, which a
    # sequential loop on a busy machine can straddle without ever exceeding it.
    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        responses = await asyncio.gather(
            *(client.get("/api/orders", headers=token) for _ in range(90))
        )
    limited = [r for r in responses if r.status_code == 429]
    assert limited, sorted({r.status_code for r in responses})
    assert {r.status_code for r in responses} <= {200, 429}
    assert int(limited[0].headers["retry-after"]) >= 1
    assert limited[0].headers["content-type"].startswith("application/problem+json")
