"""An event on another kind's topic is dead-lettered, not taken for news of either kind.

Real broker, auth, order, billing and valkey, as in test_worker.py.
"""

from __future__ import annotations

from hopkit.events import ORDER_CANCELLED, ORDER_CONFIRMED
from hopkit.testing import KafkaBroker
from notification_testing import (
    Customer,
    Shop,
    an_order,
    dead_letter,
    drained,
    event,
    eventually,
    headers_of,
    publish,
    stored,
)


async def test_news_of_one_kind_on_another_kinds_topic_is_dead_lettered(
    kafka: KafkaBroker, database_url: str, shop: Shop, alice: Customer
) -> None:
    order_id = await an_order(shop, alice.user_id, "CONFIRMED")  # the event itself is true
    misplaced = event(ORDER_CONFIRMED, alice.user_id, order_id)
    await publish(kafka.bootstrap, ORDER_CANCELLED, misplaced.to_bytes())

    dead = await dead_letter(kafka.bootstrap, ORDER_CANCELLED, misplaced.event_id)
    assert headers_of(dead)["x-dlq-reason"] == (
        "poison: type 'order.confirmed' does not belong on topic 'order.cancelled'"
    )
    await eventually(lambda: drained(kafka.bootstrap, ORDER_CANCELLED), what="the commit")
    assert await stored(database_url, order_id) == []

    # The same news on its own topic is told.
    await publish(kafka.bootstrap, ORDER_CONFIRMED, misplaced.to_bytes())
    await eventually(lambda: _told(database_url, order_id), what="the notification")


async def _told(database_url: str, order_id: str) -> bool:
    return [row["kind"] for row in await stored(database_url, order_id)] == [ORDER_CONFIRMED]
