"""The vulnerable teaching mode: the whole shop forwarding users' tokens, and still working.

A second shop runs here with ``propagation=forward`` everywhere (its own
Kafka-protocol broker, so its workers never meet the exchange-mode shop's):
alice buys through it and gets paid, and tokens that the exchange-mode
gateway refuses are accepted. It is loud at start-up and stamped on every
response.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from auth_testing import bad_token, claims, login, mint
from gateway_service.app import create_app
from gateway_testing import assert_problem, bearer, make_settings
from hopkit.events import ALL_TOPICS
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer, eventually
from shop_testing import running_shop

MODE = "x-hopshop-mode"
FORWARD: dict[str, object] = {
    "env": "test",
    "json_logs": False,
    "access_log": False,
    "propagation": "forward",
}


@pytest.fixture(scope="module")
def caplog_module() -> Iterator[list[logging.LogRecord]]:
    """Log records of the module's set-up (caplog is function-scoped)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.WARNING)
    logging.getLogger().addHandler(handler)
    yield records
    logging.getLogger().removeHandler(handler)


@pytest.fixture(scope="module")
def forwarding(
    tmp_path_factory: pytest.TempPathFactory,
    issuer: str,
    valkey: ValkeyServer,
    caplog_module: list[logging.LogRecord],
) -> Iterator[httpx.Client]:
    """The forward-mode gateway in front of a forward-mode shop on a broker of its own."""
    with KafkaBroker() as broker:
        broker.create_topics(ALL_TOPICS)
        common = {
            **FORWARD,
            "issuer": issuer,
            "redis_url": valkey.url,
            "kafka_bootstrap": broker.bootstrap,
        }
        with running_shop(tmp_path_factory.mktemp("forward-shop"), common) as shop:
            settings = make_settings(
                issuer, redis_url=valkey.url, propagation="forward", **shop.urls
            )
            with (
                ServerThread(create_app(settings)) as gateway,
                httpx.Client(base_url=gateway.base_url, timeout=30) as client,
            ):
                yield client


def test_start_up_warns_loudly_in_every_service(
    forwarding: httpx.Client, caplog_module: list[logging.LogRecord]
) -> None:
    warnings = [r.getMessage() for r in caplog_module if r.name == "hopkit.forwarding"]
    for service in ("gateway", "order", "inventory", "billing", "notification"):
        [mine] = [w for w in warnings if w.split("!!! ")[2].startswith(f"{service} ")]
        assert "VULNERABLE" in mine
        assert "HOPSHOP_PROPAGATION=forward" in mine


def test_the_shop_works_alice_buys_and_pays(forwarding: httpx.Client, auth: httpx.Client) -> None:
    alice = login(auth, "alice").access_token
    products = forwarding.get("/api/products").json()
    product = max(products, key=lambda p: p["available"])
    placed = forwarding.post(
        "/api/orders",
        json={"items": [{"product_id": product["id"], "quantity": 1}], "card": "4242424242424242"},
        headers=bearer(alice),
    )
    assert placed.status_code == 201, placed.text
    assert placed.headers[MODE] == "vulnerable-forwarding"
    order_id = placed.json()["id"]

    def confirmed() -> dict[str, Any] | None:
        order: dict[str, Any] = forwarding.get(
            f"/api/orders/{order_id}", headers=bearer(alice)
        ).json()
        return order if order["status"] == "CONFIRMED" else None

    eventually(confirmed, "the order to be confirmed")

    def paid() -> dict[str, Any] | None:
        invoices = forwarding.get("/api/invoices", headers=bearer(alice)).json()
        found = [i for i in invoices if i["order_id"] == order_id and i["status"] == "PAID"]
        return found[0] if found else None

    eventually(paid, "a paid invoice")

    def notified() -> list[Any] | None:
        notes = forwarding.get("/api/notifications", headers=bearer(alice)).json()
        return [n for n in notes if n["order_id"] == order_id] or None

    eventually(notified, "a notification about the order")


def test_an_idempotency_key_works_as_in_exchange_mode(
    forwarding: httpx.Client, auth: httpx.Client
) -> None:
    """The header is checked and passed on the same way: one order per key, a 400 if bad."""
    bob = login(auth, "bob").access_token
    product = max(forwarding.get("/api/products").json(), key=lambda p: p["available"])
    body = {"items": [{"product_id": product["id"], "quantity": 1}], "card": "4242424242424242"}
    headers = {**bearer(bob), "Idempotency-Key": f'"{uuid.uuid4()}"'}
    first = forwarding.post("/api/orders", json=body, headers=headers)
    again = forwarding.post("/api/orders", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.json()["id"] == first.json()["id"]
    bad = {**bearer(bob), "Idempotency-Key": '"two words"'}
    problem = assert_problem(
        forwarding.post("/api/orders", json=body, headers=bad), 400, "invalid-idempotency-key"
    )
    assert problem["header"] == "Idempotency-Key"


def test_a_token_made_for_another_service_opens_the_front_door(
    forwarding: httpx.Client, http: httpx.Client, auth_server: ServerThread, auth: httpx.Client
) -> None:
    alice = claims(login(auth, "alice").access_token)["sub"]
    # What inventory would hold in exchange mode: a token for inventory, presented by order.
    leaked = mint(
        auth_server,
        audience="inventory",
        client_id="order",
        subject=alice,
        scopes=["orders:read"],
        act={"sub": "order", "act": {"sub": "gateway"}},
    )
    accepted = forwarding.get("/api/orders", headers=bearer(leaked))
    assert accepted.status_code == 200, accepted.text
    refused = http.get("/api/orders", headers=bearer(leaked))
    assert_problem(refused, 401, "urn:hopauth:problem:invalid-token")
    assert MODE not in refused.headers


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/products"),
        ("GET", "/api/orders"),  # 401: no token
        ("GET", "/"),
        ("GET", "/config.json"),
        ("GET", "/healthz"),
        ("GET", "/nowhere"),  # 404
    ],
)
def test_every_response_says_so(forwarding: httpx.Client, method: str, path: str) -> None:
    response = forwarding.request(method, path)
    assert response.headers[MODE] == "vulnerable-forwarding"


@pytest.mark.parametrize("kind", ["junk", "forged", "expired"])
def test_bad_tokens_are_still_refused(
    forwarding: httpx.Client, auth_server: ServerThread, auth: httpx.Client, kind: str
) -> None:
    token = bad_token(kind, auth_server, login(auth, "alice").access_token, "orders:read")
    response = forwarding.get("/api/orders", headers=bearer(token))
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
    assert response.headers[MODE] == "vulnerable-forwarding"


def test_the_users_own_scope_is_still_needed(
    forwarding: httpx.Client, auth_server: ServerThread
) -> None:
    reader = mint(auth_server, audience="order", client_id="gateway", scopes=["orders:read"])
    response = forwarding.get("/api/invoices", headers=bearer(reader))
    assert_problem(response, 403, "urn:hopauth:problem:insufficient-scope")


def test_exchange_mode_has_no_such_header(http: httpx.Client) -> None:
    for path in ("/api/products", "/api/orders", "/"):
        assert MODE not in http.get(path).headers


def test_stats_name_the_mode(forwarding: httpx.Client, http: httpx.Client) -> None:
    assert forwarding.get("/stats").json()["propagation"] == "forward"
    assert http.get("/stats").json()["propagation"] == "exchange"
