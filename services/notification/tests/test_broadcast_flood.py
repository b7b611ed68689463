"""A flood of broadcasts cannot bury a customer's own notifications.

``GET /notifications`` limits the customer's own (``limit``, 50 by default)
and the broadcasts (``broadcasts``, 10 by default) apart, then merges them
newest first. The customer's notification comes the real way: an event the
worker checks with order and reads through the customer's exchanged token.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from hopkit.events import ORDER_CONFIRMED
from hopkit.testing import KafkaBroker
from notification_service.api import BROADCASTS_LISTED, MAX_LIST
from notification_testing import (
    Customer,
    Shop,
    about,
    an_order,
    assert_problem,
    bearer,
    event,
    eventually,
    notifications,
    publish,
)

FLOOD = 60


def _broadcast(http: httpx.Client, gateway: str, message: str) -> None:
    posted = http.post("/broadcasts", json={"message": message}, headers=bearer(gateway))
    assert posted.status_code == 201, posted.text


def _newest_first(found: list[dict[str, Any]]) -> bool:
    times = [datetime.fromisoformat(n["created_at"]) for n in found]
    return times == sorted(times, reverse=True)


async def _told(kafka: KafkaBroker, http: httpx.Client, shop: Shop, who: Customer) -> str:
    """A confirmed order of ``who``'s, told the real way (event, worker, owner check)."""
    order_id = await an_order(shop, who.user_id, "CONFIRMED")
    confirmed = event(ORDER_CONFIRMED, who.user_id, order_id)
    await publish(kafka.bootstrap, ORDER_CONFIRMED, confirmed.to_bytes(), key=order_id.encode())
    await eventually(
        lambda: bool(about(notifications(http, who.token), order_id)), what="the notification"
    )
    return order_id


async def test_sixty_broadcasts_leave_alices_own_notification_in_view(
    kafka: KafkaBroker, http: httpx.Client, gateway: str, shop: Shop, alice: Customer
) -> None:
    order_id = await _told(kafka, http, shop, alice)
    flood = [f"Flood {i} ({uuid.uuid4().hex[:8]})" for i in range(FLOOD)]
    for message in flood:
        _broadcast(http, gateway, message)

    found = notifications(http, alice.token)
    [own] = about(found, order_id)
    assert own["broadcast"] is False
    # Only the newest broadcasts, newest first, and the older notification after them.
    shown = [n["message"] for n in found if n["broadcast"]]
    assert shown == flood[::-1][:BROADCASTS_LISTED]
    assert found.index(own) > max(i for i, n in enumerate(found) if n["broadcast"])
    assert _newest_first(found)


async def test_own_and_broadcasts_are_limited_apart(
    kafka: KafkaBroker, http: httpx.Client, gateway: str, shop: Shop, bob: Customer
) -> None:
    older = await _told(kafka, http, shop, bob)
    newer = await _told(kafka, http, shop, bob)
    for i in range(3):
        _broadcast(http, gateway, f"Apart {i} ({uuid.uuid4().hex[:8]})")

    assert [n for n in notifications(http, bob.token, broadcasts=0) if n["broadcast"]] == []
    # `limit` counts bob's own only, `broadcasts` the broadcasts only.
    found = notifications(http, bob.token, limit=1, broadcasts=2)
    assert [n["broadcast"] for n in found] == [True, True, False]
    assert found[2]["order_id"] == newer
    both = notifications(http, bob.token, limit=2, broadcasts=1)
    assert [n["order_id"] for n in both] == [None, newer, older]


@pytest.mark.parametrize(
    "params",
    [{"broadcasts": -1}, {"broadcasts": MAX_LIST + 1}, {"broadcasts": "ten"}, {"limit": 0}],
)
def test_a_bad_list_parameter_is_a_422(
    http: httpx.Client, bob: Customer, params: dict[str, object]
) -> None:
    response = http.get("/notifications", params=params, headers=bearer(bob.token))
    problem = assert_problem(response, 422)
    assert problem["errors"], problem
