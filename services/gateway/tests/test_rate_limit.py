"""Per-user rate limit in (real) Redis: 429 with Retry-After, per user, failing open."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import redis.asyncio as redis
from auth_testing import Login
from gateway_service.ratelimit import RateLimiter
from gateway_testing import StartGateway, assert_problem, bearer
from hopkit.testing import free_port

# Valid JSON the gateway refuses (422) only after authentication and the limiter:
# the limit is exercised without calling any service behind the gateway.
REFUSED_BODY = {"items": []}
# Long enough that a slow machine still lands alice's four requests in one window.
WINDOW = 4


@pytest.fixture(scope="module")
def limited(start_gateway: StartGateway) -> Iterator[httpx.Client]:
    server = start_gateway(rate_limit=3, rate_window=WINDOW)
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield client


def test_over_the_limit_is_a_429_with_retry_after(
    limited: httpx.Client, alice: Login, bob: Login
) -> None:
    def place(user: Login) -> httpx.Response:
        return limited.post("/api/orders", json=REFUSED_BODY, headers=bearer(user.access_token))

    assert [place(alice).status_code for _ in range(3)] == [422, 422, 422]
    refused = place(alice)
    problem = assert_problem(refused, 429, "rate-limited")
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW
    assert problem["retry_after"] == retry_after
    # The limit is per user: bob is not held back by alice.
    assert place(bob).status_code == 422
    # ... and it is a window: once it has passed, alice may go on.
    time.sleep(retry_after)
    assert place(alice).status_code == 422


def test_invalid_tokens_do_not_count_against_anyone(limited: httpx.Client, bob: Login) -> None:
    for _ in range(5):
        assert limited.get("/api/orders", headers=bearer("junk")).status_code == 401
    time.sleep(WINDOW + 0.2)  # a fresh window for bob, whatever the test before did
    for _ in range(3):
        response = limited.post("/api/orders", json=REFUSED_BODY, headers=bearer(bob.access_token))
        assert response.status_code == 422


def test_the_public_catalogue_is_not_limited_per_user(limited: httpx.Client) -> None:
    assert {limited.get("/api/products").status_code for _ in range(6)} == {200}


async def test_the_limiter_fails_open_when_redis_is_down() -> None:
    store = redis.Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.2, socket_connect_timeout=0.2
    )
    try:
        limiter = RateLimiter(store, limit=1, window=1)
        verdicts = [await limiter.hit("alice") for _ in range(3)]
    finally:
        await store.aclose()
    assert all(verdict.allowed for verdict in verdicts)
