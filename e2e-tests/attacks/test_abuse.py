"""Abuse: a customer's own account used to harm the shop or another customer, within the rules.

No token is stolen or forged here: the attacker is a customer and does what
the API lets a customer do, at a scale or in a way it is not meant for.

- Denial of inventory (OWASP automated threat OAT-021): orders that are
  never paid (the card ``4000000000003063`` waits for an authentication that
  never comes) hold their stock until they expire. Many of them, one huge
  one, or a burst of them racing the check would take the catalogue off sale;
  and a product scarcer than those limits (3 posters) would be held whole by
  one customer, renewed as the orders expire.
- ``Idempotency-Key`` misuse: another customer's key replayed to get their
  order, or one's own key reused for another order.

Every attack cancels the orders it placed: the limits count per customer, and
the other attacks use the same customers.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from oauth_flows import Login
from recorder import Expect, Observed, Recorder, error_code, observed, refused
from shop import (
    PENDING_CARD,
    available,
    bearer,
    cancel_all,
    products,
    stocked_product,
    unpaid_ids,
)
from stacks import Target

CATEGORY = "abuse"

#: Order's defaults (ORDER_MAX_OPEN_ORDERS, ORDER_MAX_OPEN_UNITS), as README.md states them.
MAX_OPEN_ORDERS = 5
MAX_OPEN_UNITS = 50
#: Placements one after another before giving up on a refusal: the limit, plus room for
#: unpaid orders that expire meanwhile (12 s in the e2e stack).
ATTEMPTS = 2 * MAX_OPEN_ORDERS + 2
#: Placements sent at once by the burst.
BURST = 12

LIMITS = "order_service/limits.py"
HOLD_CAP = "inventory_service/service.py"
IDEMPOTENCY = "order_service/idempotency.py"


def _body(product_id: int, quantity: int = 1) -> dict[str, Any]:
    """An order that will never be paid: it holds its stock until cancelled or expired."""
    return {"items": [{"product_id": product_id, "quantity": quantity}], "card": PENDING_CARD}


def _key() -> str:
    """An Idempotency-Key field value: an sf-string (draft-ietf-httpapi-idempotency-key §2.1)."""
    return f'"{uuid.uuid4()}"'


def _place(
    target: Target, user: Login, body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    headers = bearer(user) if key is None else {**bearer(user), "Idempotency-Key": key}
    return target.gw.post("/api/orders", json=body, headers=headers)


def test_unpaid_orders_placed_until_refused(target: Target, attack: Recorder, alice: Login) -> None:
    attack.expect(
        Expect.both(
            refused(
                409,
                "too-many-unpaid-orders",
                f"at most {MAX_OPEN_ORDERS} unpaid orders per customer (ORDER_MAX_OPEN_ORDERS), "
                "counted before anything is reserved: the next is refused, no stock held "
                f"({LIMITS})",
                detail=f"you have {MAX_OPEN_ORDERS} unpaid orders",
            )
        )
    )
    product_id = int(stocked_product(target)["id"])
    placed: list[str] = []
    most = 0  # the most unpaid orders alice held at once
    refusal: httpx.Response | None = None
    try:
        # Until refused, counting the unpaid orders she has already (another test's, say):
        # the refused one is the one over the limit, whatever she held before.
        for _ in range(ATTEMPTS):
            unpaid_before = unpaid_ids(target, alice)
            stock_before = available(target, product_id)
            response = _place(target, alice, _body(product_id))
            if response.status_code == 201:
                placed.append(str(response.json()["id"]))
                most = max(most, len(unpaid_ids(target, alice)))
                continue
            refusal = response
            break
        # What the refused placement left behind: a new order, or stock held.
        new = unpaid_ids(target, alice) - unpaid_before if refusal is not None else set()
        stock_after = available(target, product_id) if refusal is not None else stock_before
    finally:
        cancel_all(target, alice, placed)
    held = stock_before - stock_after
    seen = (
        f"{len(placed)} placed, at most {most} unpaid at once; the refused one found "
        f"{len(unpaid_before)} unpaid, stored {len(new)} order(s), held {held} unit(s)"
    )
    if refusal is None:
        attack.observe(
            Observed("succeeded", 201, None, f"never refused in {ATTEMPTS} placements; {seen}")
        )
        return
    effect = most > MAX_OPEN_ORDERS or bool(new) or held != 0
    attack.observe(observed(refusal, effect=effect, seen=seen))


def test_one_order_larger_than_the_units_limit(
    target: Target, attack: Recorder, alice: Login
) -> None:
    attack.expect(
        Expect.both(
            refused(
                422,
                "order-too-large",
                f"one order may hold at most {MAX_OPEN_UNITS} units (ORDER_MAX_OPEN_UNITS), "
                f"checked before anything is claimed, held or reserved ({LIMITS})",
                detail=f"at most {MAX_OPEN_UNITS} units",
            )
        )
    )
    product = stocked_product(target)
    product_id = int(product["id"])
    assert int(product["available"]) > MAX_OPEN_UNITS, f"too little stock to try: {product}"
    unpaid_before = unpaid_ids(target, alice)
    stock_before = available(target, product_id)
    try:
        response = _place(target, alice, _body(product_id, MAX_OPEN_UNITS + 1))
    finally:
        new = unpaid_ids(target, alice) - unpaid_before
        stock_after = available(target, product_id)
        cancel_all(target, alice, new)
    held = stock_before - stock_after
    attack.observe(
        observed(
            response,
            effect=response.is_success or bool(new) or held != 0,
            seen=f"{len(new)} order(s) stored, {held} unit(s) held",
        )
    )


def test_concurrent_unpaid_orders_race_the_limit(
    target: Target, attack: Recorder, bob: Login
) -> None:
    attack.expect(
        Expect.both(
            refused(
                409,
                "too-many-unpaid-orders",
                "one conditional UPDATE of the customer's totals, committed before inventory is "
                "called: placements at once cannot all find a free place "
                f"({LIMITS}, repository.take_hold)",
                # Exactly the limit: not one more (a race), not fewer (a check too eager).
                detail=f"{MAX_OPEN_ORDERS} unpaid after",
            )
        )
    )
    product_id = int(stocked_product(target)["id"])
    unpaid_before = unpaid_ids(target, bob)  # none, unless another test left one
    start = threading.Barrier(BURST, timeout=60)

    def place_at_once() -> httpx.Response:
        start.wait()
        return _place(target, bob, _body(product_id))

    try:
        with ThreadPoolExecutor(BURST) as pool:
            sent = [pool.submit(place_at_once) for _ in range(BURST)]
        unpaid_after = unpaid_ids(target, bob)
    finally:
        # Whatever the burst stored, even where an answer got lost.
        cancel_all(target, bob, unpaid_ids(target, bob) - unpaid_before)
    answers = [future.result() for future in sent]
    placed = [a for a in answers if a.status_code == 201]
    refusals = [a for a in answers if a.status_code != 201]
    # The decisive answer: any refusal other than the limit's, else the limit's.
    odd = [a for a in refusals if error_code(a) != "too-many-unpaid-orders"]
    decisive = (odd or refusals or answers)[0]
    held_at_once = max(len(unpaid_after), len(placed) + len(unpaid_before))
    effect = held_at_once > MAX_OPEN_ORDERS
    attack.observe(
        observed(
            decisive,
            effect=effect,
            seen=f"{len(placed)} of {BURST} placed at once with {len(unpaid_before)} unpaid "
            f"before, {len(unpaid_after)} unpaid after",
        )
    )


def test_every_unit_of_a_scarce_product_held(
    target: Target, attack: Recorder, alice: Login
) -> None:
    attack.expect(
        Expect.both(
            refused(
                409,
                "hold-limit-reached",
                "inventory caps the units one customer's unpaid orders hold of a scarce "
                "product (HOP-LAST 1, HOP-KEY 2), counted under the stock row's lock: nothing "
                f"is held ({HOLD_CAP})",
                detail="you already hold",
            )
        )
    )
    # The scarcest cap among the products with a unit to spare beyond it.
    capped = [
        p
        for p in products(target)
        if p.get("max_held_per_customer") and p["available"] > p["max_held_per_customer"]
    ]
    assert capped, "no product capped per customer with stock to try"
    product = min(capped, key=lambda p: (p["max_held_per_customer"], p["available"]))
    product_id, cap = int(product["id"]), int(product["max_held_per_customer"])
    unpaid_before = unpaid_ids(target, alice)
    placed: list[str] = []
    try:
        # Every unit one customer may hold, unpaid ...
        first = _place(target, alice, _body(product_id, cap))
        assert first.status_code == 201, first.text
        placed.append(str(first.json()["id"]))
        stock_before = available(target, product_id)
        # ... and one more: with 3 posters, three such orders would take them all.
        response = _place(target, alice, _body(product_id))
        new = unpaid_ids(target, alice) - unpaid_before - set(placed)
        placed += sorted(new)
        stock_after = available(target, product_id)
    finally:
        cancel_all(target, alice, placed)
    held = stock_before - stock_after
    attack.observe(
        observed(
            response,
            effect=response.is_success or bool(new) or held != 0,
            seen=f"holding {cap} of {product['sku']} unpaid, one more stored {len(new)} "
            f"order(s) and held {held} more unit(s)",
        )
    )


def test_idempotency_key_of_another_customer_replayed(
    target: Target, attack: Recorder, alice: Login, bob: Login
) -> None:
    own_order = "a new order of his own"
    attack.expect(
        Expect.both(
            refused(
                201,
                own_order,
                "keys are per customer (the token's sub): bob's request under alice's key is "
                f"a new order of his, and tells him nothing of hers ({IDEMPOTENCY})",
            )
        )
    )
    body = _body(int(stocked_product(target)["id"]))
    key = _key()
    placed: dict[str, list[str]] = {"alice": [], "bob": []}
    try:
        hers = _place(target, alice, body, key)
        assert hers.status_code == 201, hers.text
        alice_order = str(hers.json()["id"])
        placed["alice"].append(alice_order)
        # bob learned her key (a log, a shared proxy) and sends her request under it.
        response = _place(target, bob, body, key)
        got: dict[str, Any] = response.json() if response.status_code == 201 else {}
        if got.get("id") and got["id"] != alice_order:
            placed["bob"].append(str(got["id"]))
        his_orders = unpaid_ids(target, bob)
    finally:
        cancel_all(target, alice, placed["alice"])
        cancel_all(target, bob, placed["bob"])
    leaked = alice_order in response.text or got.get("customer_id") == alice.sub
    own = response.status_code == 201 and got.get("customer_id") == bob.sub
    attack.observe(
        observed(
            response,
            effect=leaked,
            note=own_order if own and got["id"] in his_orders else "not a new order of his",
            seen=(
                "alice's order given to bob"
                if leaked
                else f"bob's order {'is' if own else 'is not'} a new one of his own"
            ),
        )
    )


def test_own_idempotency_key_reused_for_another_order(
    target: Target, attack: Recorder, alice: Login
) -> None:
    attack.expect(
        Expect.both(
            refused(
                422,
                "idempotency-key-reused",
                "a key belongs to the request that placed its order: another body under it is "
                f"refused before anything is held or reserved ({IDEMPOTENCY}; Idempotency-Key "
                "draft §2.7)",
            )
        )
    )
    product_id = int(stocked_product(target)["id"])
    key = _key()
    placed: list[str] = []
    try:
        first = _place(target, alice, _body(product_id), key)
        assert first.status_code == 201, first.text
        placed.append(str(first.json()["id"]))
        unpaid_before = unpaid_ids(target, alice)
        stock_before = available(target, product_id)
        # The same key, more units: a second order riding on the first one's key.
        response = _place(target, alice, _body(product_id, 3), key)
        new = unpaid_ids(target, alice) - unpaid_before
        placed += sorted(new)
        stock_after = available(target, product_id)
    finally:
        cancel_all(target, alice, placed)
    held = stock_before - stock_after
    attack.observe(
        observed(
            response,
            effect=bool(new) or held != 0,
            seen=f"{len(new)} more order(s) stored, {held} more unit(s) held",
        )
    )
