"""Bad input is a 4xx problem that names the field, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from inventory_testing import add_product, assert_problem, available, bearer


@pytest.fixture(scope="module")
def product(database_url: str) -> int:
    return add_product(database_url, 5)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"items": [{"product_id": 1, "quantity": 1}]}, ["body", "order_id"]),
        ({"order_id": "v-1"}, ["body", "items"]),
        ({"order_id": "v-1", "items": []}, ["body", "items"]),
        (
            {"order_id": "v-1", "items": [{"product_id": 1, "quantity": 0}]},
            ["body", "items", "0", "quantity"],
        ),
        (
            {"order_id": "v-1", "items": [{"product_id": 1, "quantity": -2}]},
            ["body", "items", "0", "quantity"],
        ),
        (
            {"order_id": "v-1", "items": [{"product_id": 1, "quantity": 10**6}]},
            ["body", "items", "0", "quantity"],
        ),
        (
            {"order_id": "v-1", "items": [{"product_id": 1, "quantity": "2"}]},
            ["body", "items", "0", "quantity"],
        ),
        (
            {"order_id": "v-1", "items": [{"product_id": 1, "quantity": 1.5}]},
            ["body", "items", "0", "quantity"],
        ),
        (
            {"order_id": "v-1", "items": [{"product_id": 2**40, "quantity": 1}]},
            ["body", "items", "0", "product_id"],
        ),
        (
            {"order_id": "v-1", "items": [{"product_id": None, "quantity": 1}]},
            ["body", "items", "0", "product_id"],
        ),
        ({"order_id": "v-1", "items": [{"quantity": 1}]}, ["body", "items", "0", "product_id"]),
        ({"order_id": "", "items": [{"product_id": 1, "quantity": 1}]}, ["body", "order_id"]),
        ({"order_id": "x" * 65, "items": [{"product_id": 1, "quantity": 1}]}, ["body", "order_id"]),
        ({"order_id": "a/b", "items": [{"product_id": 1, "quantity": 1}]}, ["body", "order_id"]),
        ({"order_id": 12, "items": [{"product_id": 1, "quantity": 1}]}, ["body", "order_id"]),
        (
            {"order_id": "v-1", "items": [{"product_id": 1, "quantity": 1}], "extra": 1},
            ["body", "extra"],
        ),
        ({"order_id": "v-1", "items": {"product_id": 1}}, ["body", "items"]),
    ],
)
def test_malformed_reservations_are_422(
    http: httpx.Client, reserver: str, body: dict[str, Any], loc: list[str]
) -> None:
    response = http.post("/reservations", json=body, headers=bearer(reserver))
    problem = assert_problem(response, 422)
    assert loc in [error["loc"] for error in problem["errors"]], problem


@pytest.mark.parametrize(
    "content", [b"", b"{", b"[]", b"null", b'"text"', b"\xff\xfe", b'{"order_id": "v"' * 100]
)
def test_unparseable_bodies_are_422(http: httpx.Client, reserver: str, content: bytes) -> None:
    headers = {**bearer(reserver), "content-type": "application/json"}
    assert_problem(http.post("/reservations", content=content, headers=headers), 422)


def test_bad_order_ids_in_paths_are_422(http: httpx.Client, scheduler: str) -> None:
    for bad in ("a%20b", "x" * 65, "-leading-dash"):
        response = http.post(f"/reservations/{bad}/release", headers=bearer(scheduler))
        body = assert_problem(response, 422)
        assert body["errors"][0]["loc"] == ["path", "order_id"]


def test_invalid_requests_reserve_nothing(http: httpx.Client, reserver: str, product: int) -> None:
    body = {"order_id": "v-2", "items": [{"product_id": product, "quantity": 1}, {"quantity": 1}]}
    assert_problem(http.post("/reservations", json=body, headers=bearer(reserver)), 422)
    assert available(http, product) == 5


def test_malformed_bearer_tokens_are_401(http: httpx.Client, product: int) -> None:
    body = {"order_id": "v-3", "items": [{"product_id": product, "quantity": 1}]}
    for header in (
        "Bearer",
        "Bearer a b",
        "Bearer " + "x" * 10000,
        "Bearer e30.e30.sig",
        "Basic Zm9vOmJhcg==",
    ):
        response = http.post("/reservations", json=body, headers={"Authorization": header})
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith('Bearer realm="inventory"')


def test_unknown_routes_and_methods_are_problems(http: httpx.Client) -> None:
    assert_problem(http.get("/nope"), 404)
    assert_problem(http.delete("/products"), 405)
