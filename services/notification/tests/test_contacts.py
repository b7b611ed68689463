"""The contact cache: pure logic with a clock of the test's own, then against the real
directory, then in the running worker (a server and broker of its own, cache on).

What is kept: only contacts the directory found, for the TTL, at most so
many (the oldest go first). What is not: "no such user", failures, anything
at all with a TTL of 0.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hopkit.events import ORDER_CONFIRMED, PAYMENT_SUCCEEDED
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer
from notification_service.app import create_app
from notification_service.contacts import Contact, ContactCache
from notification_service.directory import DirectoryUnavailable
from notification_testing import (
    Customer,
    Shop,
    a_payment,
    about,
    an_order,
    captured_logs,
    event,
    eventually,
    make_settings,
    notifications,
    publish,
    stored,
    worker_parts,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def contact(n: int) -> Contact:
    return Contact(user_id=f"user-{n}", email=f"user{n}@example.com", display_name=f"User {n}")


def test_a_contact_is_kept_for_the_ttl_and_not_a_moment_longer() -> None:
    clock = Clock()
    cache = ContactCache(60, clock=clock)
    assert cache.get("user-1") is None
    cache.put(contact(1))
    clock.now += 59.9
    assert cache.get("user-1") == contact(1)
    clock.now += 0.1
    assert cache.get("user-1") is None
    assert len(cache) == 0  # an expired entry is dropped, not only hidden


def test_a_refreshed_contact_replaces_the_old_one_and_lives_a_full_ttl_again() -> None:
    clock = Clock()
    cache = ContactCache(60, clock=clock)
    cache.put(contact(1))
    clock.now += 50
    changed = Contact(user_id="user-1", email="new@example.com", display_name="User 1")
    cache.put(changed)
    clock.now += 50
    assert cache.get("user-1") == changed
    assert len(cache) == 1


def test_the_cache_is_bounded_and_evicts_the_oldest() -> None:
    clock = Clock()
    cache = ContactCache(60, max_entries=3, clock=clock)
    for n in range(1, 4):
        cache.put(contact(n))
        clock.now += 1
    cache.put(contact(4))
    assert len(cache) == 3
    assert cache.get("user-1") is None
    assert [cache.get(f"user-{n}") for n in (2, 3, 4)] == [contact(2), contact(3), contact(4)]
    # Refreshing one makes it the newest: the next to go is user-3.
    cache.put(contact(2))
    cache.put(contact(5))
    assert cache.get("user-3") is None
    assert cache.get("user-2") == contact(2)


def test_expired_entries_make_room_before_a_live_one_is_evicted() -> None:
    clock = Clock()
    cache = ContactCache(10, max_entries=2, clock=clock)
    cache.put(contact(1))
    clock.now += 5
    cache.put(contact(2))
    clock.now += 6  # user-1 expired, user-2 has 4 seconds left
    cache.put(contact(3))
    assert cache.get("user-2") == contact(2)
    assert cache.get("user-3") == contact(3)


def test_a_ttl_of_zero_turns_the_cache_off() -> None:
    cache = ContactCache(0)
    assert not cache.enabled
    cache.put(contact(1))
    assert cache.get("user-1") is None
    assert len(cache) == 0


@pytest.mark.parametrize("ttl, max_entries", [(-1, 10), (60, 0)])
def test_nonsense_is_refused(ttl: float, max_entries: int) -> None:
    with pytest.raises(ValueError):
        ContactCache(ttl, max_entries)


# -- with the real directory (auth's GET /users/{id}) -----------------------------------------


async def test_a_found_contact_is_asked_for_once(
    tmp_path: Path, issuer: str, alice: Customer
) -> None:
    cache = ContactCache(60)
    async with worker_parts(make_settings(tmp_path, issuer, None), cache) as parts:
        first = await parts.directory.contact(alice.user_id)
        second = await parts.directory.contact(alice.user_id)
    assert first is not None and first.email == "alice@example.com"
    assert second == first
    assert [request.url.path for request in parts.lookups] == [f"/users/{alice.user_id}"]


async def test_with_a_ttl_of_zero_every_lookup_asks(
    tmp_path: Path, issuer: str, alice: Customer
) -> None:
    async with worker_parts(make_settings(tmp_path, issuer, None), ContactCache(0)) as parts:
        for _ in range(2):
            assert await parts.directory.contact(alice.user_id) is not None
    assert len(parts.lookups) == 2


async def test_no_such_user_is_never_cached(tmp_path: Path, issuer: str) -> None:
    nobody = str(uuid.uuid4())
    cache = ContactCache(60)
    async with worker_parts(make_settings(tmp_path, issuer, None), cache) as parts:
        for _ in range(2):
            assert await parts.directory.contact(nobody) is None
    assert len(parts.lookups) == 2  # the directory answered 404 both times
    assert len(cache) == 0


async def test_a_directory_that_cannot_answer_is_never_cached(
    tmp_path: Path, issuer: str, alice: Customer
) -> None:
    # Nothing listens on port 9 (discard): every lookup fails, and none is remembered.
    settings = make_settings(tmp_path, issuer, None, auth_url="http://127.0.0.1:9")
    cache = ContactCache(60)
    async with worker_parts(settings, cache) as parts:
        for _ in range(2):
            with pytest.raises(DirectoryUnavailable):
                await parts.directory.contact(alice.user_id)
    assert len(cache) == 0


# -- in the running worker ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def cached(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer, shop: Shop
) -> Iterator[tuple[KafkaBroker, ServerThread]]:
    """A notification service with the default contact TTL, on a broker of its own."""
    with KafkaBroker() as broker:
        settings = make_settings(
            tmp_path_factory.mktemp("notification-cache"),
            issuer,
            broker.bootstrap,
            redis_url=valkey.url,
            auth_url=issuer,
            **shop.urls,
        )
        assert settings.contact_ttl == 60  # the default: what runs in the shop
        with ServerThread(create_app(settings)) as server:
            yield broker, server


async def test_an_orders_two_events_cost_one_directory_call(
    cached: tuple[KafkaBroker, ServerThread], shop: Shop, alice: Customer
) -> None:
    broker, server = cached
    order_id = await an_order(shop, alice.user_id, "CONFIRMED")
    await a_payment(shop, alice.user_id, order_id)
    # Each event under a trace of its own: auth's access log says which event looked alice up.
    traces = {PAYMENT_SUCCEEDED: uuid.uuid4().hex, ORDER_CONFIRMED: uuid.uuid4().hex}
    with captured_logs() as logs, httpx.Client(base_url=server.base_url, timeout=10) as http:
        for topic, trace_id in traces.items():
            await publish(
                broker.bootstrap,
                topic,
                event(topic, alice.user_id, order_id).to_bytes(),
                headers=[("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01".encode())],
            )
        await eventually(
            lambda: len(about(notifications(http, alice.token), order_id)) == 2,
            what="both notifications",
        )
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    lookups = [
        entry
        for entry in lines
        if entry.get("path") == f"/users/{alice.user_id}"
        and entry.get("trace_id") in traces.values()
    ]
    assert len(lookups) == 1, lookups
    assert lookups[0]["status"] == 200
    rows = await stored(server.app.state.settings.database_url, order_id)  # type: ignore[attr-defined]
    assert sorted(row["kind"] for row in rows) == sorted(traces)
    assert {row["email"] for row in rows} == {"alice@example.com"}
    # Nothing about the cache reaches the log, and no email address does.
    assert "alice@example.com" not in logs.getvalue()
