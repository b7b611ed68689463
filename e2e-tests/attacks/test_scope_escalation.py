"""Scope escalation: asking for, or using, more authority than one was given.

The attacker holds a user's own account, a token captured from one hop, or a
service's client credentials (for the re-exchange attacks: a compromised
order service).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from oauth_flows import (
    HopToken,
    Login,
    claims,
    client_credentials,
    delegate,
    exchange,
    hop_token,
    login,
    service_token,
)
from recorder import Expect, Recorder, observed, refused, succeeded
from shop import bearer, invoices, order, order_ids, stocked_product
from stacks import Target

CATEGORY = "scope escalation"

EXCHANGE_POLICY = "exchange policy: requested ⊆ what the subject holds ∩ the client's maximum"
WRONG_AUDIENCE = "aud check (hopauth/rfc9068.py)"
SCOPE_CHECK = "scope check: Requires(...) (hopauth/fastapi.py)"


def _issued(response: httpx.Response) -> bool:
    return response.status_code == 200 and "access_token" in response.json()


EXCESS_SCOPES = [
    pytest.param("customer", "support:read", id="support:read from a customer's token"),
    pytest.param("read-only", "orders:write", id="orders:write from a read-only login"),
]


@pytest.mark.parametrize(("who", "scope"), EXCESS_SCOPES)
def test_exchange_for_a_scope_the_subject_token_lacks(
    target: Target, attack: Recorder, alice: Login, who: str, scope: str
) -> None:
    attack.expect(
        Expect.both(refused(400, "invalid_scope", f"{EXCHANGE_POLICY} (auth rfc8693.py)"))
    )
    subject = alice if who == "customer" else login(target, "alice", scope="orders:read")
    response = exchange(target, "gateway", subject.access_token, "order", scope)
    attack.observe(observed(response, effect=_issued(response)))


@pytest.mark.parametrize("audience", ["inventory", "auth"])
def test_exchange_for_an_audience_the_client_may_not_target(
    target: Target, attack: Recorder, alice: Login, audience: str
) -> None:
    attack.expect(
        Expect.both(
            refused(
                400,
                "invalid_target",
                "exchange policy: the gateway may target order, billing, notification only "
                "(policy.toml)",
            )
        )
    )
    response = exchange(target, "gateway", alice.access_token, audience)
    attack.observe(observed(response, effect=_issued(response)))


UNREGISTERED = [
    pytest.param("billing-worker", "orders:write", None, id="billing-worker orders:write"),
    pytest.param(
        "order-scheduler", "inventory:reserve", "inventory", id="order-scheduler inventory:reserve"
    ),
    pytest.param("gateway", "notifications:read", "notification", id="gateway notifications:read"),
    pytest.param("notification-worker", "users:write", None, id="notification-worker users:write"),
]


@pytest.mark.parametrize(("client_id", "scope", "audience"), UNREGISTERED)
def test_client_credentials_for_scopes_not_registered(
    target: Target, attack: Recorder, client_id: str, scope: str, audience: str | None
) -> None:
    attack.expect(
        Expect.both(
            refused(
                400,
                "invalid_scope",
                "client registration: a client gets only its registered scopes (policy.toml)",
            )
        )
    )
    response = client_credentials(target, client_id, scope, audience)
    attack.observe(observed(response, effect=_issued(response)))


WORKER_TARGETS = [
    pytest.param("order", "GET", "/orders", id="customer orders at order"),
    pytest.param("order", "GET", "/support/orders/{order}/owner", id="support lookup at order"),
    pytest.param("gateway", "POST", "/api/broadcasts", id="broadcast at the gateway"),
    pytest.param("notification", "POST", "/broadcasts", id="broadcast at notification"),
]
WORKER_EXPECT = {
    "/orders": Expect(
        secure=refused(
            403,
            "forbidden-caller",
            "caller check: only the gateway may call (Requires callers=..., hopauth/fastapi.py)",
        ),
        vulnerable=succeeded(
            200, "caller not checked: any token holding orders:read opens the customer routes"
        ),
    ),
    "/support/orders/{order}/owner": Expect.both(
        refused(403, "insufficient_scope", f"{SCOPE_CHECK}: support:read")
    ),
    "/api/broadcasts": Expect(
        secure=refused(401, "invalid_token", f"{WRONG_AUDIENCE}: aud=order is not the gateway"),
        vulnerable=refused(
            403, "insufficient_scope", f"{SCOPE_CHECK}: support:broadcast", "support:broadcast"
        ),
    ),
    "/broadcasts": Expect(
        secure=refused(401, "invalid_token", f"{WRONG_AUDIENCE}: aud=order is not notification"),
        vulnerable=refused(403, "insufficient_scope", f"{SCOPE_CHECK}: notifications:broadcast"),
    ),
}


@pytest.mark.parametrize(("service_name", "method", "path"), WORKER_TARGETS)
def test_worker_token_on_customer_or_admin_endpoint(
    target: Target,
    attack: Recorder,
    alice: Login,
    alice_paid_order: dict[str, Any],
    service_name: str,
    method: str,
    path: str,
) -> None:
    attack.expect(WORKER_EXPECT[path])
    worker: HopToken = service_token(target, "billing-worker")  # aud order, orders:read
    client = target.gw if service_name == "gateway" else target.service(service_name)
    url = path.format(order=alice_paid_order["id"])
    message = f"attack {attack.mode}: broadcast by billing-worker"
    body = {"message": message} if method == "POST" else None
    response = client.request(method, url, json=body, headers=worker.headers(client, method, url))
    if method == "POST":
        notes = target.gw.get("/api/notifications", headers=bearer(alice)).json()
        effect = response.is_success or any(n["message"] == message for n in notes)
    else:
        effect = response.status_code == 200
    attack.observe(observed(response, effect=effect))


def test_notification_worker_token_reads_a_full_order(
    target: Target, attack: Recorder, alice_paid_order: dict[str, Any]
) -> None:
    """A token stolen from the notification worker opens the order's status, never the order."""
    attack.expect(
        Expect(
            secure=refused(
                403,
                "insufficient_scope",
                f"{SCOPE_CHECK}: orders:read; the worker is registered at order for "
                "orders:status alone, the status view (least privilege, policy.toml)",
                detail="orders:read",
            ),
            vulnerable=refused(
                403,
                "insufficient_scope",
                f"{SCOPE_CHECK}: orders:read; forwarding drops the caller check, not the "
                "scope check, and the worker's own token never held orders:read",
                detail="orders:read",
            ),
        )
    )
    worker = service_token(target, "notification-worker", "order")  # aud order, orders:status
    assert worker.claims["scope"] == "orders:status", worker.claims
    client = target.service("order")
    path = f"/internal/orders/{alice_paid_order['id']}"
    response = client.get(path, headers=worker.headers(client, "GET", path))
    # The effect sought: the amount and the card, which the status view never carries.
    leaked = response.status_code == 200 and {"total_cents", "card"} & set(response.json())
    attack.observe(observed(response, effect=bool(leaked)))


READ_ONLY_WRITES = [
    pytest.param("gateway", id="at the gateway"),
    pytest.param("order", id="at order"),
]


@pytest.mark.parametrize("where", READ_ONLY_WRITES)
def test_read_scope_used_to_write(
    target: Target, attack: Recorder, alice: Login, where: str
) -> None:
    attack.expect(Expect.both(refused(403, "insufficient_scope", f"{SCOPE_CHECK}: orders:write")))
    reader = login(target, "alice", scope="orders:read")
    before = order_ids(target, alice)
    body = {
        "items": [{"product_id": stocked_product(target)["id"], "quantity": 1}],
        "card": "4000000000003063",
    }
    if where == "gateway":
        response = target.gw.post("/api/orders", json=body, headers=bearer(reader))
    else:
        token = hop_token(target, reader, "order", "orders:read")
        client = target.service("order")
        response = client.post(
            "/orders", json=body, headers=token.headers(client, "POST", "/orders")
        )
    placed = order_ids(target, alice) - before
    for order_id in placed:  # leave no unpaid order holding stock
        target.gw.post(f"/api/orders/{order_id}/cancel", headers=bearer(alice))
    attack.observe(observed(response, effect=response.is_success or bool(placed)))


SUPPORT_ROUTES = [
    pytest.param("gateway", "GET", "/api/support/orders/{order}", id="order view at the gateway"),
    pytest.param("gateway", "POST", "/api/broadcasts", id="broadcast at the gateway"),
    pytest.param("order", "GET", "/support/orders/{order}/owner", id="support lookup at order"),
]
#: The scope each support route needs; only support staff get it at login (policy.toml).
SUPPORT_SCOPE = {"/api/broadcasts": "support:broadcast"}


@pytest.mark.parametrize(("service_name", "method", "path"), SUPPORT_ROUTES)
def test_customer_token_on_support_endpoints(
    target: Target,
    attack: Recorder,
    alice: Login,
    bob: Login,
    alice_paid_order: dict[str, Any],
    service_name: str,
    method: str,
    path: str,
) -> None:
    scope = SUPPORT_SCOPE.get(path, "support:read")
    attack.expect(
        Expect.both(
            refused(
                403,
                "insufficient_scope",
                f"{SCOPE_CHECK}: {scope}, which only support staff get at login",
                detail=scope,
            )
        )
    )
    url = path.format(order=alice_paid_order["id"])
    message = f"attack {attack.mode}: broadcast by a customer"
    body = {"message": message} if method == "POST" else None
    if service_name == "gateway":
        response = target.gw.request(method, url, json=body, headers=bearer(bob))
    else:
        client = target.service(service_name)
        token = hop_token(target, bob, "order", "orders:read")  # the most bob can get for order
        response = client.request(method, url, headers=token.headers(client, method, url))
    if method == "POST":
        notes = target.gw.get("/api/notifications", headers=bearer(alice)).json()
        effect = response.is_success or any(n["message"] == message for n in notes)
    else:
        effect = response.status_code == 200
    attack.observe(observed(response, effect=effect))


def test_customer_as_actor_asks_for_a_token_of_another_customer(
    target: Target, attack: Recorder, alice: Login, bob: Login
) -> None:
    attack.expect(
        Expect.both(
            refused(
                400,
                "invalid_request",
                "delegation (requested_subject) needs an actor token holding support:read "
                "(policy.toml delegation, auth rfc8693.py)",
            )
        )
    )
    response = delegate(target, actor=alice, requested_subject=bob.sub)
    attack.observe(observed(response, effect=_issued(response)))


NOT_TO_ORDER = refused(
    400,
    "invalid_request",
    "order may exchange only tokens sent to it; the forwarded token is the gateway's "
    "(auth rfc8693.py)",
)


def test_exchanged_token_exchanged_again_to_widen_its_scope(
    target: Target, attack: Recorder, alice: Login
) -> None:
    attack.expect(
        Expect(
            secure=refused(
                400,
                "invalid_scope",
                "inventory:reserve derives only from orders:write, which the subject token "
                "lacks (policy.toml, auth rfc8693.py)",
            ),
            vulnerable=NOT_TO_ORDER,
        )
    )
    received = hop_token(target, alice, "order", "orders:read")  # what order got for a read
    response = exchange(target, "order", received.token, "inventory", "inventory:reserve")
    attack.observe(observed(response, effect=_issued(response)))


def _chain(act: object) -> list[str]:
    chain: list[str] = []
    while isinstance(act, dict):
        chain.append(str(act.get("sub")))
        act = act.get("act")
    return chain


def test_exchanged_token_exchanged_again_to_drop_the_act_chain(
    target: Target, attack: Recorder, alice: Login
) -> None:
    kept = "act kept (order ← gateway)"
    attack.expect(
        Expect(
            secure=refused(
                200,
                kept,
                "the new act nests the asking client over the subject's chain, which no "
                "request can drop (auth rfc8693.py, RFC 8693 §4.1)",
            ),
            vulnerable=NOT_TO_ORDER,
        )
    )
    received = hop_token(target, alice, "order", "orders:write")  # what order got to place one
    response = exchange(target, "order", received.token, "inventory", "inventory:reserve")
    note = None
    effect = False
    if response.status_code == 200:
        chain = _chain(claims(response.json()["access_token"]).get("act"))
        effect = chain != ["order", "gateway"]
        note = kept if not effect else "act: " + (" ← ".join(chain) or "none")
    attack.observe(observed(response, effect=effect, note=note))


BOLA = [
    pytest.param("view at the gateway", id="order view at the gateway"),
    pytest.param("cancel at the gateway", id="order cancel at the gateway"),
    pytest.param("view at order", id="order view at order"),
    pytest.param("internal view", id="billing worker's internal view at order"),
]
OWNER_CHECK = refused(
    404,
    "order-not-found",
    "owner check: orders are looked up with the token's sub, so another's order "
    "is as missing as one that does not exist (order_service/service.py)",
)
BOLA_EXPECT = {
    "internal view": Expect(
        secure=refused(
            403,
            "forbidden-caller",
            "caller check: only billing-worker may call the internal view, which looks up "
            "any order by id (Requires callers=..., order_service/deps.py)",
            detail="may not make this request",
        ),
        vulnerable=succeeded(
            200,
            "caller not checked: the internal view asks only for orders:read, which every "
            "customer's forwarded token carries, and looks up any order by id "
            "(order_service/forwarding.py)",
        ),
    ),
}


@pytest.mark.parametrize("how", BOLA)
def test_customer_reads_an_order_of_another_customer(
    target: Target,
    attack: Recorder,
    alice: Login,
    bob: Login,
    alice_paid_order: dict[str, Any],
    how: str,
) -> None:
    """Bob after alice's order: through his own routes, and through the billing worker's
    internal one with the token order receives for him (in vulnerable mode his own)."""
    attack.expect(BOLA_EXPECT.get(how, Expect.both(OWNER_CHECK)))
    order_id = alice_paid_order["id"]
    read = False
    if how == "view at the gateway":
        response = target.gw.get(f"/api/orders/{order_id}", headers=bearer(bob))
    elif how == "cancel at the gateway":
        response = target.gw.post(f"/api/orders/{order_id}/cancel", headers=bearer(bob))
    else:
        token = hop_token(target, bob, "order", "orders:read")
        client = target.service("order")
        path = f"/orders/{order_id}" if how == "view at order" else f"/internal/orders/{order_id}"
        response = client.get(path, headers=token.headers(client, "GET", path))
        # The effect sought: her whole order, amount and card included.
        read = response.status_code == 200 and response.json().get("id") == order_id
    touched = order(target, alice, order_id)["status"] != "CONFIRMED"
    effect = response.is_success or read or touched
    attack.observe(observed(response, effect=effect))


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("gateway", id="list at the gateway"),
        pytest.param("billing", id="list at billing, naming her in the query"),
    ],
)
def test_customer_reads_an_invoice_of_another_customer(
    target: Target,
    attack: Recorder,
    alice: Login,
    bob: Login,
    alice_paid_order: dict[str, Any],
    where: str,
) -> None:
    own_only = "own invoices only"
    attack.expect(
        Expect.both(
            refused(
                200,
                own_only,
                "invoices are selected by the token's sub; nothing in the request can name "
                "another customer (billing_service/service.py)",
            )
        )
    )
    [invoice] = invoices(target, alice, alice_paid_order["id"])
    if where == "gateway":
        response = target.gw.get("/api/invoices", headers=bearer(bob))
    else:
        token = hop_token(target, bob, "billing", "billing:read")
        client = target.service("billing")
        path = f"/invoices?customer_id={alice.sub}&sub={alice.sub}&order_id={invoice['order_id']}"
        response = client.get(path, headers=token.headers(client, "GET", path))
    leaked = response.status_code == 200 and any(i["id"] == invoice["id"] for i in response.json())
    attack.observe(
        observed(response, effect=leaked, note=own_only if not leaked else "alice's invoice")
    )
