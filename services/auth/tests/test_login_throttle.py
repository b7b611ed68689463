"""Password guessing at the login form is throttled (OWASP Authentication Cheat Sheet).

Real auth servers with small limits, counting in memory and in a real
valkey-server of their own (the shared one's counts for 127.0.0.1 and the
demo users must stay untouched). Each test sends from its own loopback
address (127.0.x.y) and uses users of its own, so tests do not share counts.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from auth_service.app import create_app
from auth_service.db import transaction
from auth_service.login_throttle import Limits, MemoryLoginThrottle
from auth_service.models import User
from auth_service.passwords import hash_password
from auth_testing import (
    ServerThread,
    ValkeyServer,
    authorize_params,
    free_port,
    make_settings,
    pkce_pair,
)

MAX_FAILURES = 3
MAX_FAILURES_PER_IP = 6
WINDOW = 120
THROTTLED = re.compile(r"Too many failed attempts; try again in (\d+) s\.")

_addresses = (f"127.0.{i // 250}.{i % 250 + 2}" for i in itertools.count(1000))


def start(tmp: Path, redis_url: str | None, **overrides: object) -> ServerThread:
    port = free_port()
    limits: dict[str, object] = {
        "login_max_failures": MAX_FAILURES,
        "login_max_failures_per_ip": MAX_FAILURES_PER_IP,
        "login_failure_window": WINDOW,
    }
    settings = make_settings(tmp, port, redis_url=redis_url, **{**limits, **overrides})
    return ServerThread(create_app(settings), port).start()


@pytest.fixture(scope="module")
def own_valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyServer]:
    with ValkeyServer(tmp_path_factory.mktemp("throttle-valkey")) as server:
        yield server


@pytest.fixture(scope="module", params=["memory", "redis"])
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    own_valkey: ValkeyServer,
) -> Iterator[ServerThread]:
    """An auth server counting failures in memory, or in the valkey."""
    redis_url = own_valkey.url if request.param == "redis" else None
    thread = start(tmp_path_factory.mktemp(f"throttle-{request.param}"), redis_url)
    yield thread
    thread.stop()


class Browser:
    """Posts the login form from one loopback address."""

    def __init__(self, server: ServerThread, address: str | None = None) -> None:
        self.address = address or next(_addresses)
        transport = httpx.HTTPTransport(local_address=self.address)
        self.http = httpx.Client(base_url=server.base_url, transport=transport, timeout=30)
        self.params = authorize_params(pkce_pair()[1])

    def login(self, username: str, password: str) -> httpx.Response:
        return self.http.post(
            "/authorize", params=self.params, data={"username": username, "password": password}
        )

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def browser(server: ServerThread) -> Iterator[Browser]:
    b = Browser(server)
    yield b
    b.close()


def new_user(*servers: ServerThread) -> tuple[str, str]:
    """A user of its own in each server's database: (username, password)."""
    username, password = f"u-{uuid.uuid4().hex[:12]}", f"pw-{uuid.uuid4().hex}"
    for server in servers:
        with transaction(server.app.state.oauth_server.context.db) as session:
            session.add(
                User(
                    id=str(uuid.uuid4()),
                    username=username,
                    password_hash=hash_password(password),
                    roles="customer",
                    email=f"{username}@example.com",
                    display_name=username,
                    created_at=int(time.time()),
                )
            )
    return username, password


def ghost() -> str:
    return f"ghost-{uuid.uuid4().hex[:12]}"


def assert_failed(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert "Invalid username or password." in response.text


def assert_throttled(response: httpx.Response, window: int = WINDOW) -> int:
    """429, the form again with the wait in words, and the same wait in Retry-After."""
    assert response.status_code == 429, response.text
    assert "location" not in response.headers
    assert 'name="password"' in response.text
    match = THROTTLED.search(response.text)
    assert match is not None, response.text
    assert response.headers["retry-after"] == match.group(1)
    wait = int(match.group(1))
    assert 1 <= wait <= window
    return wait


def fail(browser: Browser, username: str, times: int) -> None:
    for _ in range(times):
        assert_failed(browser.login(username, "not-the-password"))


def test_wrong_passwords_then_the_right_one_is_refused(
    browser: Browser, server: ServerThread
) -> None:
    username, password = new_user(server)
    fail(browser, username, MAX_FAILURES)
    assert_throttled(browser.login(username, password))
    # Per username, not per address: another address is refused for it too...
    elsewhere = Browser(server)
    try:
        assert_throttled(elsewhere.login(username, password))
        # ...while other users from that address are not.
        other, other_password = new_user(server)
        assert elsewhere.login(other, other_password).status_code == 302
    finally:
        elsewhere.close()


def test_an_unknown_username_is_throttled_the_same_way(
    browser: Browser, server: ServerThread
) -> None:
    username, _ = new_user(server)
    nobody = ghost()
    answers = []
    for name in (username, nobody):
        for _ in range(MAX_FAILURES):
            answers.append(browser.login(name, "guess").status_code)
        throttled = browser.login(name, "guess")
        assert_throttled(throttled)
        answers.append(throttled.status_code)
    assert answers == [401] * MAX_FAILURES + [429] + [401] * MAX_FAILURES + [429]


def test_throttled_attempts_are_logged_and_the_password_is_not_checked(
    browser: Browser, server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    username, password = new_user(server)
    fail(browser, username, MAX_FAILURES)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="auth_service"):
        assert_throttled(browser.login(username, password))
    throttled = [r for r in caplog.records if r.getMessage() == "login throttled"]
    assert len(throttled) == 1
    assert throttled[0].__dict__["username"] == username
    assert throttled[0].__dict__["client_ip"] == browser.address
    # Refused before the password check: neither outcome of a check is logged.
    messages = {r.getMessage() for r in caplog.records}
    assert "login failed" not in messages and "login succeeded" not in messages
    assert password not in caplog.text


def test_per_address_limit_across_many_usernames(browser: Browser, server: ServerThread) -> None:
    for _ in range(MAX_FAILURES_PER_IP):
        assert_failed(browser.login(ghost(), "guess"))
    username, password = new_user(server)
    # A user never tried before, with the right password: the address is over its limit.
    assert_throttled(browser.login(username, password))
    elsewhere = Browser(server)
    try:
        assert elsewhere.login(username, password).status_code == 302
    finally:
        elsewhere.close()


def test_a_success_clears_its_own_username_only(browser: Browser, server: ServerThread) -> None:
    username, password = new_user(server)
    fail(browser, username, MAX_FAILURES - 1)
    assert browser.login(username, password).status_code == 302
    # The count started again: as many failures again are not throttled.
    fail(browser, username, MAX_FAILURES - 1)
    assert browser.login(username, password).status_code == 302
    # 4 failures from this address so far; the successes took nothing off them.
    for _ in range(MAX_FAILURES_PER_IP - 2 * (MAX_FAILURES - 1)):
        assert_failed(browser.login(ghost(), "guess"))
    assert_throttled(browser.login(username, password))


def test_correct_logins_are_never_counted(browser: Browser, server: ServerThread) -> None:
    username, password = new_user(server)
    for _ in range(3 * MAX_FAILURES_PER_IP):
        assert browser.login(username, password).status_code == 302


def test_parallel_guesses_do_not_get_past_the_limit(browser: Browser, server: ServerThread) -> None:
    username, _ = new_user(server)

    async def guess() -> int:
        transport = httpx.AsyncHTTPTransport(local_address=browser.address)
        async with httpx.AsyncClient(
            base_url=server.base_url, transport=transport, timeout=30
        ) as http:
            response = await http.post(
                "/authorize",
                params=browser.params,
                data={"username": username, "password": "guess"},
            )
            return response.status_code

    async def burst() -> list[int]:
        return await asyncio.gather(*(guess() for _ in range(10)))

    statuses = asyncio.run(burst())
    # Each attempt is counted as it starts: only the limit's worth is ever checked.
    assert sorted(statuses) == [401] * MAX_FAILURES + [429] * (10 - MAX_FAILURES)


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_the_window_runs_out(
    store: str, tmp_path: Path, own_valkey: ValkeyServer, browser_address: str
) -> None:
    redis_url = own_valkey.url if store == "redis" else None
    # One failure to reach the limit: each costs a password hash, and all must land
    # inside the two-second window on a slow machine too.
    server = start(tmp_path, redis_url, login_failure_window=2, login_max_failures=1)
    browser = Browser(server, browser_address)
    try:
        username, password = new_user(server)
        fail(browser, username, 1)
        wait = assert_throttled(browser.login(username, password), window=2)
        time.sleep(wait + 0.2)
        assert browser.login(username, password).status_code == 302
    finally:
        browser.close()
        server.stop()


@pytest.fixture
def browser_address() -> str:
    return next(_addresses)


def test_replicas_share_the_counts_through_redis(
    tmp_path: Path, own_valkey: ValkeyServer, browser_address: str
) -> None:
    first = start(tmp_path / "a", own_valkey.url)
    second = start(tmp_path / "b", own_valkey.url)
    to_first, to_second = Browser(first, browser_address), Browser(second, next(_addresses))
    try:
        username, password = new_user(first, second)
        fail(to_first, username, MAX_FAILURES - 1)
        fail(to_second, username, 1)
        # The first replica saw fewer failures than the limit itself.
        assert_throttled(to_first.login(username, password))
        assert_throttled(to_second.login(username, password))
    finally:
        to_first.close()
        to_second.close()
        first.stop()
        second.stop()


def test_without_redis_logins_are_refused_not_let_through(
    tmp_path: Path, browser_address: str
) -> None:
    # Nothing listens there: the counts cannot be read, so no password is checked.
    server = start(tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    browser = Browser(server, browser_address)
    try:
        response = browser.login("alice", "alice-dev-password")
        assert response.status_code == 503, response.text
        assert "Sign-in is unavailable right now" in response.text
        assert response.headers["retry-after"] == "5"
        assert "location" not in response.headers
    finally:
        browser.close()
        server.stop()


def test_the_memory_counts_stay_bounded() -> None:
    now = [0.0]
    throttle = MemoryLoginThrottle(
        Limits(per_username=1, per_ip=100, window=60), max_entries=10, clock=lambda: now[0]
    )

    async def run() -> None:
        assert await throttle.attempt("target", "198.51.100.1") == 0
        assert await throttle.attempt("target", "198.51.100.1") == 60
        now[0] = 30.0
        assert await throttle.attempt("target", "198.51.100.2") == 30
        for i in range(20):
            await throttle.attempt(f"spray-{i}", "198.51.100.3")
        assert len(throttle) <= 10
        now[0] = 61.0
        assert await throttle.attempt("target", "198.51.100.1") == 0

    asyncio.run(run())
