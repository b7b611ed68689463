"""The inventory service as the order service sees it: catalogue reads and reservations.

Each call carries the token its hop needs (docs/internal-api.md): the public
catalogue none; a reservation a token exchanged from the customer's
(``inventory:reserve``, so inventory sees the user and the chain
gateway -> order), or in the vulnerable forward mode the customer's token
itself (:mod:`order_service.hops` picks); release and commit the order service's own
client-credentials token (``inventory:release``), because a payment event or
the expiry job has no user behind it. Which client-credentials token is sent
is the caller's choice: the expiry job sends ``order-scheduler``'s.

Inventory's answers become :class:`~hopkit.problems.Problem` s: the HTTP routes
render them, and the Kafka handler lets them fail the attempt (and be retried).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from hopauth import HopAuthError
from hopkit.events import DependencyUnavailable
from hopkit.problems import Problem
from hopkit.tracing import outgoing_headers

from .hops import HopTokens

log = logging.getLogger(__name__)

# Inventory and order share the problem type prefix.
PROBLEMS = "https://hopshop.example/problems/"
# How long a product read from the catalogue is reused: a price change reaches new orders
# within this time, and each order saves a round trip to inventory.
CATALOGUE_TTL = 5.0


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    sku: str
    name: str
    price_cents: int
    currency: str


@dataclass(frozen=True, slots=True)
class Line:
    product_id: int
    quantity: int


class InventoryUnavailable(Problem, DependencyUnavailable):
    """Inventory could not be reached, or answered in a way we cannot act on.

    A 503 problem on the HTTP routes; to the payment consumer an outage, waited out.
    """

    def __init__(self, what: str) -> None:
        super().__init__(
            503,
            "Inventory unavailable",
            f"the inventory service could not {what}; try again shortly",
            type_=PROBLEMS + "inventory-unavailable",
        )


class ReservationSettled(Problem):
    """The reservation is already in the other terminal state (sold vs released)."""

    def __init__(self, order_id: str, detail: str) -> None:
        super().__init__(
            409,
            "Reservation already settled",
            detail,
            type_=PROBLEMS + "reservation-settled",
            order_id=order_id,
        )


async def add_trace_headers(request: httpx.Request) -> None:
    """httpx request hook: every outgoing call carries the request id and traceparent."""
    request.headers.update(outgoing_headers())


class Inventory:
    """Calls to inventory for one identity: ``settle`` authenticates release and commit."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        settle: httpx.Auth,
        hops: HopTokens | None = None,
        catalogue_ttl: float = CATALOGUE_TTL,
    ) -> None:
        self._http = http
        self._settle = settle
        self._hops = hops
        self._catalogue_ttl = catalogue_ttl
        # Only products that exist are kept, so the catalogue's size bounds this.
        self._products: dict[int, tuple[float, Product]] = {}

    async def product(self, product_id: int) -> Product | None:
        """A product of the public catalogue (reused for ``catalogue_ttl`` s), or None."""
        now = time.monotonic()
        cached = self._products.get(product_id)
        if cached is not None and now - cached[0] < self._catalogue_ttl:
            return cached[1]
        product = await self._read_product(product_id)
        if product is not None:
            self._products[product_id] = (now, product)
        return product

    async def _read_product(self, product_id: int) -> Product | None:
        response = await self._send("read the catalogue", "GET", f"/products/{product_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise _unexpected("read the catalogue", response)
        body = response.json()
        try:
            return Product(
                id=int(body["id"]),
                sku=str(body["sku"]),
                name=str(body["name"]),
                price_cents=int(body["price_cents"]),
                currency=str(body["currency"]),
            )
        except (KeyError, TypeError, ValueError):
            raise _unexpected("read the catalogue", response) from None

    async def reserve(self, user_token: str, order_id: str, lines: Sequence[Line]) -> None:
        """Hold every line for the order (all or nothing), acting for the user.

        Raises a 409 problem when stock is short, or when the customer's unpaid orders
        hold the most of a product one customer may hold; a 422 when this order alone
        asks for more than that (inventory reserved nothing either way).
        """
        if self._hops is None:
            raise RuntimeError("this Inventory cannot reserve: it acts for no user")
        auth = self._hops.for_user(user_token, audience="inventory", scopes=["inventory:reserve"])
        body = {
            "order_id": order_id,
            "items": [{"product_id": x.product_id, "quantity": x.quantity} for x in lines],
        }
        response = await self._send("reserve stock", "POST", "/reservations", json=body, auth=auth)
        if response.status_code in (200, 201):
            return
        problem = _problem_body(response)
        kind = problem.get("type")
        if response.status_code == 409 and kind == PROBLEMS + "insufficient-stock":
            raise Problem(
                409,
                "Insufficient stock",
                problem.get("detail") or "not enough stock for this order",
                type_=PROBLEMS + "insufficient-stock",
                **{k: problem[k] for k in ("product_id", "requested", "available") if k in problem},
            )
        if response.status_code == 409 and kind == PROBLEMS + "hold-limit-reached":
            raise hold_limit_reached(problem)
        if response.status_code == 422 and kind == PROBLEMS + "over-hold-limit":
            raise over_hold_limit(problem)
        if response.status_code == 422 and kind == PROBLEMS + "unknown-product":
            raise Problem(
                422,
                "Unknown product",
                problem.get("detail") or "the order names a product that does not exist",
                type_=PROBLEMS + "unknown-product",
                **{k: problem[k] for k in ("product_id",) if k in problem},
            )
        raise _unexpected("reserve stock", response)

    async def release(self, order_id: str) -> None:
        """Put the order's units back on sale. Idempotent; no reservation at all is fine too."""
        response = await self._send(
            "release stock", "POST", f"/reservations/{order_id}/release", auth=self._settle
        )
        if response.status_code == 200:
            return
        if response.status_code == 404:
            log.warning("no reservation to release", extra={"order_id": order_id})
            return
        if response.status_code == 409:
            raise ReservationSettled(order_id, f"the stock of order {order_id!r} was already sold")
        raise _unexpected("release stock", response)

    async def commit(self, order_id: str) -> None:
        """The order is paid: its reserved units leave the stock. Idempotent."""
        response = await self._send(
            "commit stock", "POST", f"/reservations/{order_id}/commit", auth=self._settle
        )
        if response.status_code == 200:
            return
        if response.status_code in (404, 409):
            raise ReservationSettled(
                order_id, f"order {order_id!r} has no reservation that can still be sold"
            )
        raise _unexpected("commit stock", response)

    async def _send(
        self, what: str, method: str, path: str, *, auth: httpx.Auth | None = None, **kwargs: Any
    ) -> httpx.Response:
        try:
            if auth is None:
                return await self._http.request(method, path, **kwargs)
            return await self._http.request(method, path, auth=auth, **kwargs)
        except HopAuthError as exc:
            # The issuer refused us a token: a policy or secret problem, not the customer's.
            log.error("no token for inventory", extra={"action": what, "error": str(exc)})
            raise InventoryUnavailable(what) from None
        except httpx.HTTPError as exc:
            log.warning(
                "inventory unreachable", extra={"action": what, "error": type(exc).__name__}
            )
            raise InventoryUnavailable(what) from None


def hold_limit_reached(problem: dict[str, Any]) -> Problem:
    """Inventory's 409 ``hold-limit-reached``, told to the customer (RFC 9457 §3).

    A scarce product caps the units one customer's unpaid orders may hold, and
    theirs already hold some: the way on is to pay or cancel one. Inventory owns
    the cap, so its detail (written for the customer) is passed on.
    """
    return Problem(
        409,
        "Hold limit reached",
        problem.get("detail")
        or "you already hold units of this product unpaid; pay or cancel an order holding it first",
        type_=PROBLEMS + "hold-limit-reached",
        **_cap_fields(problem, "held"),
    )


def over_hold_limit(problem: dict[str, Any]) -> Problem:
    """Inventory's 422 ``over-hold-limit``, told to the customer (RFC 9457 §3).

    One order alone asks for more of a scarce product than one customer may
    hold unpaid: no payment or cancellation would let it through, so a 422.
    """
    return Problem(
        422,
        "Over the hold limit",
        problem.get("detail")
        or "this order asks for more units of a product than one customer may hold unpaid",
        type_=PROBLEMS + "over-hold-limit",
        **_cap_fields(problem),
    )


def _cap_fields(problem: dict[str, Any], *more: str) -> dict[str, Any]:
    names = ("product_id", "sku", "name", "limit", *more, "requested")
    return {k: problem[k] for k in names if k in problem}


def _problem_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _unexpected(what: str, response: httpx.Response) -> InventoryUnavailable:
    problem = _problem_body(response)
    log.error(
        "inventory answered unexpectedly",
        extra={"action": what, "status": response.status_code, "type": problem.get("type")},
    )
    return InventoryUnavailable(what)
