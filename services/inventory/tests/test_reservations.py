"""Reserve, release, commit: all-or-nothing, idempotent, with real exchanged tokens."""

from __future__ import annotations

import httpx
from inventory_testing import add_product, assert_problem, available, bearer, reservation


def test_order_reserves_with_a_twice_exchanged_user_token(
    http: httpx.Client, database_url: str, reserver: str
) -> None:
    mug, tee = add_product(database_url, 5), add_product(database_url, 5)
    response = http.post(
        "/reservations",
        json=reservation("ord-1", (tee, 2), (mug, 1)),
        headers=bearer(reserver),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["order_id"] == "ord-1"
    assert body["status"] == "RESERVED"
    assert body["reservation_id"]
    # One line per product, in product order.
    assert body["items"] == [
        {"product_id": mug, "quantity": 1},
        {"product_id": tee, "quantity": 2},
    ]
    assert (available(http, mug), available(http, tee)) == (4, 3)


def test_reserving_again_for_the_same_order_changes_nothing(
    http: httpx.Client, database_url: str, reserver: str
) -> None:
    product = add_product(database_url, 5)
    body = reservation("ord-idem", (product, 2))
    first = http.post("/reservations", json=body, headers=bearer(reserver))
    again = http.post("/reservations", json=body, headers=bearer(reserver))
    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert available(http, product) == 3

    other = http.post(
        "/reservations", json=reservation("ord-idem", (product, 1)), headers=bearer(reserver)
    )
    problem = assert_problem(other, 409, "reservation-conflict")
    assert problem["reservation_id"] == first.json()["reservation_id"]
    assert available(http, product) == 3


def test_insufficient_stock_is_a_409_and_nothing_is_reserved(
    http: httpx.Client, database_url: str, reserver: str
) -> None:
    plenty, scarce = add_product(database_url, 10), add_product(database_url, 2)
    response = http.post(
        "/reservations",
        json=reservation("ord-short", (plenty, 4), (scarce, 3)),
        headers=bearer(reserver),
    )
    problem = assert_problem(response, 409, "insufficient-stock")
    assert problem["product_id"] == scarce
    assert (problem["requested"], problem["available"]) == (3, 2)
    assert str(scarce) in problem["detail"]
    # All or nothing: the line that fitted was rolled back too ...
    assert (available(http, plenty), available(http, scarce)) == (10, 2)
    # ... and the order id is still free for a reservation that fits.
    retry = http.post(
        "/reservations",
        json=reservation("ord-short", (plenty, 4), (scarce, 2)),
        headers=bearer(reserver),
    )
    assert retry.status_code == 201, retry.text
    assert (available(http, plenty), available(http, scarce)) == (6, 0)


def test_unknown_product_in_a_reservation_is_a_422(
    http: httpx.Client, database_url: str, reserver: str
) -> None:
    product = add_product(database_url, 3)
    response = http.post(
        "/reservations",
        json=reservation("ord-unknown", (product, 1), (2**31 - 1, 1)),
        headers=bearer(reserver),
    )
    assert assert_problem(response, 422, "unknown-product")["product_id"] == 2**31 - 1
    assert available(http, product) == 3


def test_scheduler_releases_and_releasing_again_is_harmless(
    http: httpx.Client, database_url: str, reserver: str, scheduler: str
) -> None:
    product = add_product(database_url, 4)
    made = http.post(
        "/reservations", json=reservation("ord-exp", (product, 3)), headers=bearer(reserver)
    )
    assert made.status_code == 201, made.text
    assert available(http, product) == 1

    for _ in range(2):
        released = http.post("/reservations/ord-exp/release", headers=bearer(scheduler))
        assert released.status_code == 200, released.text
        assert released.json()["status"] == "RELEASED"
        assert released.json()["reservation_id"] == made.json()["reservation_id"]
        assert available(http, product) == 4

    # A replayed reserve shows the reservation as it is now; it does not hold units again.
    replay = http.post(
        "/reservations", json=reservation("ord-exp", (product, 3)), headers=bearer(reserver)
    )
    assert replay.status_code == 200
    assert replay.json()["status"] == "RELEASED"
    assert available(http, product) == 4


def test_releasing_an_order_with_no_reservation_refuses_its_late_reservation(
    http: httpx.Client, database_url: str, scheduler: str, reserver: str
) -> None:
    # Order releases when a reservation's answer was lost: the request may still arrive.
    product = add_product(database_url, 5)
    released = http.post("/reservations/ord-never-reserved/release", headers=bearer(scheduler))
    assert released.status_code == 200, released.text
    assert (released.json()["status"], released.json()["items"]) == ("RELEASED", [])
    again = http.post("/reservations/ord-never-reserved/release", headers=bearer(scheduler))
    assert again.json()["reservation_id"] == released.json()["reservation_id"]

    late = http.post(
        "/reservations",
        json=reservation("ord-never-reserved", (product, 2)),
        headers=bearer(reserver),
    )
    assert_problem(late, 409, "reservation-conflict")
    assert available(http, product) == 5


def test_commit_of_an_unknown_order_is_a_404(http: httpx.Client, order_service: str) -> None:
    response = http.post("/reservations/no-such-order/commit", headers=bearer(order_service))
    assert assert_problem(response, 404, "reservation-not-found")["order_id"] == "no-such-order"


def test_commit_takes_units_out_of_stock(
    http: httpx.Client, database_url: str, reserver: str, order_service: str, scheduler: str
) -> None:
    product = add_product(database_url, 5)
    made = http.post(
        "/reservations", json=reservation("ord-paid", (product, 2)), headers=bearer(reserver)
    )
    assert made.status_code == 201, made.text

    for _ in range(2):
        committed = http.post("/reservations/ord-paid/commit", headers=bearer(order_service))
        assert committed.status_code == 200, committed.text
        assert committed.json()["status"] == "COMMITTED"
        assert available(http, product) == 3

    # Sold units never come back: a late release (say, an expiry racing the payment) is refused.
    late = http.post("/reservations/ord-paid/release", headers=bearer(scheduler))
    assert assert_problem(late, 409, "reservation-settled")["reservation_status"] == "COMMITTED"
    assert available(http, product) == 3


def test_a_released_reservation_cannot_be_committed(
    http: httpx.Client, database_url: str, reserver: str, order_service: str
) -> None:
    product = add_product(database_url, 5)
    made = http.post(
        "/reservations", json=reservation("ord-late", (product, 2)), headers=bearer(reserver)
    )
    assert made.status_code == 201, made.text
    released = http.post("/reservations/ord-late/release", headers=bearer(order_service))
    assert released.status_code == 200, released.text
    late = http.post("/reservations/ord-late/commit", headers=bearer(order_service))
    assert_problem(late, 409, "reservation-settled")
    assert available(http, product) == 5
