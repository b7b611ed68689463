"""Replay: a credential used again, somewhere else, or by someone else.

The attacker captured a token (and, for DPoP, its proof) from one hop, holds a
spent code or refresh token, or can write to Kafka.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from dpop_proofs import ProofKey
from kafka_events import ORDER_CONFIRMED, ORDER_PLACED, PAYMENT_SUCCEEDED, publish, records_about
from oauth_flows import (
    HopToken,
    Login,
    as_login,
    authorize,
    hop_token,
    login,
    redeem,
    refresh,
    revoke,
    service_token,
)
from recorder import Expect, Observed, Recorder, observed, refused, succeeded
from shop import (
    available,
    bearer,
    drain,
    invoices,
    notifications,
    order,
    paid_order,
    stocked_product,
    until_refused,
    unused_order_id,
)
from stacks import Target

CATEGORY = "replay"

AUD_CHECK = "aud check: the token names another service (hopauth/rfc9068.py)"
NO_AUD_CHECK = "audience not checked: a forwarded token is valid at every service"


def _listed(response: httpx.Response, key: str, value: str) -> bool:
    """Did a list endpoint answer with the item the attacker was after?"""
    return response.status_code == 200 and any(item.get(key) == value for item in response.json())


def test_billing_token_replayed_at_order(
    target: Target, attack: Recorder, alice: Login, alice_paid_order: dict[str, Any]
) -> None:
    attack.expect(
        Expect(
            secure=refused(401, "invalid_token", AUD_CHECK, detail="wrong audience"),
            vulnerable=succeeded(
                200, f"{NO_AUD_CHECK}, and no caller check: billing's token reads her orders"
            ),
        )
    )
    captured = hop_token(target, alice, "billing", "billing:read")
    service = target.service("order")
    response = service.get("/orders", headers=captured.headers(service, "GET", "/orders"))
    attack.observe(observed(response, effect=_listed(response, "id", alice_paid_order["id"])))


def test_billing_token_replayed_at_inventory(
    target: Target, attack: Recorder, alice: Login
) -> None:
    attack.expect(
        Expect(
            secure=refused(401, "invalid_token", AUD_CHECK, detail="wrong audience"),
            vulnerable=succeeded(
                201,
                f"{NO_AUD_CHECK}, and no caller check; inventory asks only for the user's "
                "orders:write, which the forwarded token carries: stock held for no order",
            ),
        )
    )
    captured = hop_token(target, alice, "billing", "billing:read")
    product = stocked_product(target)
    before = available(target, product["id"])
    service = target.service("inventory")
    order_id = unused_order_id()
    body = {"order_id": order_id, "items": [{"product_id": product["id"], "quantity": 1}]}
    response = service.post(
        "/reservations", json=body, headers=captured.headers(service, "POST", "/reservations")
    )
    held = available(target, product["id"]) < before
    release(target, order_id, response)
    attack.observe(observed(response, effect=held or response.is_success))


def release(target: Target, order_id: str, reservation: httpx.Response) -> None:
    """Put back stock an attack managed to hold, as the order service would (its own
    client-credentials token), so repeated runs do not drain the catalogue."""
    if reservation.is_success:
        order_service = service_token(target, "order", audience="inventory")
        inventory = target.service("inventory")
        path = f"/reservations/{order_id}/release"
        inventory.post(path, headers=order_service.headers(inventory, "POST", path))


STRAIGHT = [
    pytest.param("order", "GET", "/orders", id="order"),
    pytest.param("inventory", "POST", "/reservations", id="inventory"),
    pytest.param("billing", "GET", "/invoices", id="billing"),
    pytest.param("notification", "GET", "/notifications", id="notification"),
]


@pytest.mark.parametrize(("service_name", "method", "path"), STRAIGHT)
def test_user_token_sent_straight_to_internal_service(
    target: Target,
    attack: Recorder,
    alice: Login,
    alice_paid_order: dict[str, Any],
    service_name: str,
    method: str,
    path: str,
) -> None:
    attack.expect(
        Expect(
            secure=refused(
                401,
                "invalid_token",
                "aud check: the user's token is for the gateway alone (hopauth/rfc9068.py)",
                detail="wrong audience",
            ),
            vulnerable=succeeded(
                201 if method == "POST" else 200,
                "the gateway is skipped: services take the gateway's audience and check no "
                "caller, so the user's own token opens them directly (no gateway, no rate limit)",
            ),
        )
    )
    product = stocked_product(target)
    before = available(target, product["id"])
    service = target.service(service_name)
    order_id = unused_order_id()
    body: dict[str, Any] | None = None
    if service_name == "inventory":
        body = {"order_id": order_id, "items": [{"product_id": product["id"], "quantity": 1}]}
    response = service.request(method, path, json=body, headers=bearer(alice))
    if service_name == "order":
        effect = _listed(response, "id", alice_paid_order["id"])
    elif service_name == "inventory":
        effect = response.is_success or available(target, product["id"]) < before
        release(target, order_id, response)
    else:
        effect = _listed(response, "order_id", alice_paid_order["id"])
    attack.observe(observed(response, effect=effect))


DPOP_REPLAYS = [
    pytest.param("captured proof", id="with its captured proof"),
    pytest.param("another key", id="with a new proof from another key"),
    pytest.param("bearer", id="as a plain bearer token"),
]
DPOP_DEFENCES = {
    "captured proof": refused(
        401,
        "invalid_dpop_proof",
        "the proof's jti was seen before: proofs are single-use (hopauth/rfc9449.py, Redis)",
        detail="jti already used",
    ),
    "another key": refused(
        401,
        "invalid_dpop_proof",
        "the proof's key is not the one the token is bound to, cnf.jkt (hopauth/rfc9449.py)",
        detail="proof key does not match",
    ),
    "bearer": refused(
        401,
        "invalid_token",
        "a DPoP-bound token presented as a bearer token (hopauth/fastapi.py)",
        detail="presented as a bearer token",
    ),
}


@pytest.mark.parametrize("replay", DPOP_REPLAYS)
def test_captured_dpop_token_replayed(
    target: Target,
    attack: Recorder,
    alice: Login,
    alice_paid_order: dict[str, Any],
    attacker_key: ProofKey,
    replay: str,
) -> None:
    attack.expect(
        Expect(
            secure=DPOP_DEFENCES[replay],
            vulnerable=succeeded(
                200,
                "no proof of possession (DPoP off): whoever holds the token can use it "
                "until it expires",
            ),
        )
    )
    captured: HopToken = hop_token(target, alice, "billing", "billing:read")
    service = target.service("billing")
    headers = captured.headers(service, "GET", "/invoices")
    legitimate = service.get("/invoices", headers=headers)
    assert legitimate.status_code == 200, (
        f"the request the attacker captures must itself work: {legitimate.status_code} "
        f"{legitimate.text}"
    )

    if replay == "captured proof":
        again = headers
    elif replay == "another key":
        url = str(service.base_url.join("/invoices"))
        proof = attacker_key.proof("GET", url, access_token=captured.token)
        again = {"Authorization": headers["Authorization"], "DPoP": proof}
    else:
        again = {"Authorization": f"Bearer {captured.token}"}
    response = service.get("/invoices", headers=again)
    attack.observe(observed(response, effect=_listed(response, "order_id", alice_paid_order["id"])))


def test_spent_authorization_code(target: Target, attack: Recorder) -> None:
    attack.expect(
        Expect.both(
            refused(
                400,
                "invalid_grant",
                "codes are single-use, and a replay revokes the login made from the code "
                "(auth_service/oauth/authorization_code.py, RFC 6749 §4.1.2)",
            )
        )
    )
    authorization = authorize(target, "alice")
    first = as_login(redeem(target, authorization))
    replay = redeem(target, authorization)
    # The login the code made dies with the replay (RFC 9700 §4.5): its token too.
    first_token = until_refused(lambda: target.gw.get("/api/orders", headers=bearer(first)))
    attack.observe(
        observed(
            replay,
            effect=replay.is_success or first_token.is_success,
            seen=f"the first token then got {first_token.status_code} at the gateway",
        )
    )


def test_spent_refresh_token_kills_the_family(target: Target, attack: Recorder) -> None:
    attack.expect(
        Expect.both(
            refused(
                400,
                "invalid_grant",
                "refresh tokens rotate; a spent one revokes its whole login, the family "
                "(auth_service/oauth/refresh_token.py, RFC 9700 §4.14.2)",
            )
        )
    )
    first = login(target, "alice")
    assert first.refresh_token, "the web client's login must come with a refresh token"
    rotated = as_login(refresh(target, first.refresh_token))
    assert rotated.refresh_token

    replay = refresh(target, first.refresh_token)
    family_refresh = refresh(target, rotated.refresh_token)
    family_access = until_refused(lambda: target.gw.get("/api/orders", headers=bearer(rotated)))
    attack.observe(
        observed(
            replay,
            effect=replay.is_success or family_refresh.is_success or family_access.is_success,
            seen=(
                f"then the family's live refresh token got {family_refresh.status_code}, "
                f"its access token {family_access.status_code}"
            ),
        )
    )


HOLDERS = [
    pytest.param("gateway", id="the user's token at the gateway"),
    pytest.param("billing", id="its exchanged descendant at billing"),
]


@pytest.mark.parametrize("holder", HOLDERS)
def test_token_used_after_its_login_was_revoked(
    target: Target, attack: Recorder, holder: str
) -> None:
    attack.expect(
        Expect.both(
            refused(
                401,
                "invalid_token",
                "revocation by login session (sid) in Redis, checked on every request "
                "(hopauth/redis_revocation.py)",
                detail="session revoked",
            )
        )
    )
    user = login(target, "alice")
    descendant = hop_token(target, user, "billing", "billing:read")
    if holder == "gateway":
        client = target.gw

        def send() -> httpx.Response:
            return client.get("/api/invoices", headers=bearer(user))
    else:
        client = target.service("billing")

        def send() -> httpx.Response:
            return client.get("/invoices", headers=descendant.headers(client, "GET", "/invoices"))

    assert send().status_code == 200, "the token must work before the logout"
    logout = revoke(target, user.access_token)
    assert logout.status_code == 200, logout.text
    response = until_refused(send)
    attack.observe(observed(response, effect=response.is_success))


def test_kafka_event_published_twice(target: Target, attack: Recorder, alice: Login) -> None:
    attack.expect(
        Expect.both(
            refused(
                None,
                "handled once",
                "consumers store each processed event id in the effect's own transaction "
                "(hopkit/consumer.py)",
            )
        )
    )
    assert target.kafka, "this attack writes to Kafka: give --kafka or --state-dir"
    order_id = paid_order(target, alice)["id"]  # its own: other attacks forge events about theirs
    charged = len(invoices(target, alice, order_id))
    notified = len(notifications(target, alice, order_id))
    assert charged == 1 and notified == 2, (charged, notified)
    records = [
        record
        for topic in (ORDER_PLACED, PAYMENT_SUCCEEDED, ORDER_CONFIRMED)
        for record in records_about(target.kafka, topic, order_id)
    ]
    assert sorted(r.topic for r in records) == sorted(
        [ORDER_CONFIRMED, ORDER_PLACED, PAYMENT_SUCCEEDED]
    ), [r.topic for r in records]

    publish(target.kafka, records)
    drain(target, alice)

    charged = len(invoices(target, alice, order_id))
    notified = len(notifications(target, alice, order_id))
    status = order(target, alice, order_id)["status"]
    once = charged == 1 and notified == 2 and status == "CONFIRMED"
    attack.observe(
        Observed(
            "refused" if once else "succeeded",
            None,
            "handled once" if once else f"{charged} invoices, {notified} notifications",
            f"order {status}",
        )
    )
