"""A customer is told each kind of news about an order once, even when two copies of the
event (different event ids) are handled at the same time: a unique index on
(recipient, order_id, kind) decides, and the later copy changes nothing.

The same scenario runs on PostgreSQL in test_postgres.py.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from hopkit.testing import KafkaBroker
from notification_testing import Customer, Shop, bearer, notifications, two_copies_at_once


async def test_two_copies_handled_at_once_tell_the_customer_once(
    tmp_path: Path,
    issuer: str,
    kafka: KafkaBroker,
    database_url: str,
    http: httpx.Client,
    shop: Shop,
    bob: Customer,
) -> None:
    await two_copies_at_once(tmp_path, issuer, kafka.bootstrap, database_url, http, shop, bob)


def test_the_same_broadcast_twice_is_stored_twice(
    http: httpx.Client, gateway: str, alice: Customer
) -> None:
    """Broadcasts have no recipient and no order: NULLs are distinct, the index allows both."""
    message = f"Twice {uuid.uuid4().hex[:8]}"
    ids = []
    for _ in range(2):
        posted = http.post("/broadcasts", json={"message": message}, headers=bearer(gateway))
        assert posted.status_code == 201, posted.text
        ids.append(posted.json()["id"])
    seen = [n["id"] for n in notifications(http, alice.token) if n["message"] == message]
    assert sorted(seen) == sorted(ids) and len(set(ids)) == 2
