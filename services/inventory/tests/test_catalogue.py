"""The public catalogue: no token needed, availability = stock minus active reservations."""

from __future__ import annotations

import httpx
from inventory_service.seed import DEMO_PRODUCTS
from inventory_testing import add_product, assert_problem, available, bearer, reservation


def test_catalogue_is_public_and_seeded(http: httpx.Client) -> None:
    response = http.get("/products")
    assert response.status_code == 200
    products = response.json()
    by_sku = {product["sku"]: product for product in products}
    for demo in DEMO_PRODUCTS:
        product = by_sku[demo.sku]
        assert set(product) == {
            "id",
            "sku",
            "name",
            "price_cents",
            "currency",
            "available",
            "max_held_per_customer",
        }
        assert product["name"] == demo.name
        assert product["max_held_per_customer"] == demo.max_held_per_customer
        assert product["price_cents"] == demo.price_cents
        assert product["currency"] == "EUR"
        assert isinstance(product["id"], int)
    assert http.get(f"/products/{products[0]['id']}").json() == products[0]
    # The scarce ones are capped per customer, so clients can show "1 per customer".
    assert (
        by_sku["HOP-LAST"]["max_held_per_customer"],
        by_sku["HOP-KEY"]["max_held_per_customer"],
    ) == (1, 2)


def test_available_counts_active_reservations(
    http: httpx.Client, database_url: str, reserver: str
) -> None:
    product = add_product(database_url, quantity=7)
    assert available(http, product) == 7
    reserved = http.post(
        "/reservations", json=reservation("cat-1", (product, 3)), headers=bearer(reserver)
    )
    assert reserved.status_code == 201, reserved.text
    assert available(http, product) == 4


def test_unknown_product_is_a_404_problem(http: httpx.Client) -> None:
    body = assert_problem(http.get("/products/999999"), 404, "product-not-found")
    assert body["product_id"] == 999999


def test_bad_product_ids_are_422_not_500(http: httpx.Client) -> None:
    for bad in ("abc", "0", "-1", str(2**63), "1.5"):
        body = assert_problem(http.get(f"/products/{bad}"), 422)
        assert body["errors"][0]["loc"] == ["path", "product_id"]


def test_a_product_has_one_url(http: httpx.Client) -> None:
    # Pydantic's lax integers would read each of these as product 1.
    assert http.get("/products/1").status_code == 200
    for other_spelling in ("1.0", "01", "+1", "%201", "1%20", "1_0"):
        body = assert_problem(http.get(f"/products/{other_spelling}"), 422)
        assert body["errors"][0]["loc"] == ["path", "product_id"], other_spelling
