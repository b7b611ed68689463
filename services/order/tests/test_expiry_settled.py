"""The expiry job meets an overdue order whose stock inventory already sold.

That happens when a ``payment.succeeded`` is dead-lettered after inventory
committed the reservation (the order's own update kept failing): billing
charged, inventory sold, the order is still ``PENDING_PAYMENT``. The tests do
what that consumer did up to the commit (billing's invoice written with
billing's repository, the commit made at the real inventory with order's own
token) and leave order's database alone. The job then asks the real billing,
as ``order-scheduler``: a matching payment confirms the order; anything else
changes nothing and is logged for a person once per pass; billing down
leaves the order for the next pass.

Real auth, inventory, billing and broker throughout. One order service runs
the job itself (the wiring in app.py); for the passes counted one by one, the
job (:class:`order_service.expiry.ExpiryScheduler`) is assembled here from the
same parts, on the database of an order service whose own job is off.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from auth_testing import free_port, service_token
from fastapi import FastAPI, Request, Response
from hopauth import ClientCredentials, ClientCredentialsAuth, TokenEndpoint
from hopkit import db
from hopkit.events import ORDER_CANCELLED, ORDER_CONFIRMED, Envelope
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer
from inventory_testing import add_product
from order_service.app import SETTLE_SCOPES, create_app
from order_service.billing import AUDIENCE as BILLING_AUDIENCE
from order_service.billing import SCHEDULER_SCOPES, Billing
from order_service.config import SCHEDULER_CLIENT_ID, Settings
from order_service.expiry import UNANSWERED_IN_A_ROW, ExpiryScheduler
from order_service.inventory import Inventory
from order_testing import (
    available,
    bearer,
    customer_holds,
    events_for,
    make_settings,
    order_status,
    place,
    record_payment,
    records_for,
    reservation_status,
    run,
    wait_for,
)

CONFIRMED_LINE = "order confirmed by the expiry job after a lost payment event"
STUCK_LINE = "stock sold but billing has no matching payment: needs a person"
FAILED_LINE = "expiring an order failed"


def order_app(tmp: Path, issuer: str, **overrides: object) -> ServerThread:
    return ServerThread(create_app(make_settings(tmp, issuer, **overrides)))


@pytest.fixture(scope="module")
def services(
    tmp_path_factory: pytest.TempPathFactory,
    issuer: str,
    valkey: ValkeyServer,
    kafka: KafkaBroker,
    inventory_server: ServerThread,
    billing_server: ServerThread,
) -> Iterator[tuple[ServerThread, ServerThread]]:
    """Two order services of their own (own databases), neither consuming payment events.

    ``job`` runs its expiry job (orders overdue after four seconds, a pass every
    0.2 s); ``placer``'s job is off, for the passes the tests run themselves.
    """
    common: dict[str, Any] = {
        "redis_url": valkey.url,
        "kafka_bootstrap": kafka.bootstrap,
        "inventory_url": inventory_server.base_url,
        "billing_url": billing_server.base_url,
        "run_payment_consumer": False,  # the main test server's consumer owns group "order"
    }
    job = order_app(
        tmp_path_factory.mktemp("order-expiry-job"),
        issuer,
        run_expiry_scheduler=True,
        payment_timeout=4.0,
        expiry_interval=0.2,
        **common,
    )
    placer = order_app(tmp_path_factory.mktemp("order-expiry-placer"), issuer, **common)
    with job, placer:
        yield job, placer


@pytest.fixture(scope="module")
def job(services: tuple[ServerThread, ServerThread]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=services[0].base_url, timeout=15) as client:
        yield client


@pytest.fixture(scope="module")
def placer(services: tuple[ServerThread, ServerThread]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=services[1].base_url, timeout=15) as client:
        yield client


def database_of(server: ServerThread) -> str:
    url: str = server.app.state.settings.database_url
    return url


def sell(inventory: httpx.Client, auth: httpx.Client, order_id: str) -> None:
    """What the lost payment.succeeded did before order's update failed: inventory's commit."""
    token = service_token(auth, "order", "inventory", "inventory:release")
    response = inventory.post(f"/reservations/{order_id}/commit", headers=bearer(token))
    assert response.status_code == 200, response.text


def passes(
    settings: Settings,
    count: int,
    *,
    billing_url: str | None = None,
    inventory_url: str | None = None,
    batch: int = 100,
) -> list[int]:
    """``count`` passes of the expiry job as ``order-scheduler``, on ``settings``' database.

    Assembled as app.py does: the job's own client-credentials tokens at
    inventory (``inventory:release``) and at billing (``payments:verify``).
    Every pending order there is overdue. The number expired in each pass.
    """

    async def go() -> list[int]:
        engine = db.create_engine(settings.database_url)
        async with httpx.AsyncClient(timeout=5) as auth_http:
            endpoint = TokenEndpoint(
                token_url=settings.token_url,
                client_id=SCHEDULER_CLIENT_ID,
                client_secret=settings.scheduler_secret,
                http=auth_http,
            )
            at_inventory = ClientCredentials(endpoint, audience="inventory", scopes=SETTLE_SCOPES)
            at_billing = ClientCredentials(
                endpoint, audience=BILLING_AUDIENCE, scopes=SCHEDULER_SCOPES
            )
            async with (
                httpx.AsyncClient(
                    base_url=inventory_url or settings.inventory_url, timeout=5
                ) as inventory_http,
                httpx.AsyncClient(
                    base_url=billing_url or settings.billing_url,
                    timeout=5,
                    auth=ClientCredentialsAuth(at_billing),
                ) as billing_http,
            ):
                scheduler = ExpiryScheduler(
                    db.session_factory(engine),
                    Inventory(inventory_http, settle=ClientCredentialsAuth(at_inventory)),
                    Billing(billing_http),
                    payment_timeout=0.001,
                    interval=3600,
                    batch=batch,
                )
                try:
                    return [await scheduler.run_once() for _ in range(count)]
                finally:
                    await engine.dispose()

    result: list[int] = run(go())
    return result


def lines(caplog: pytest.LogCaptureFixture, message: str, order_id: str) -> list[Any]:
    return [
        r
        for r in caplog.records
        if r.getMessage() == message and getattr(r, "order_id", None) == order_id
    ]


def test_a_sold_order_billing_was_paid_for_is_confirmed_by_the_running_job(
    services: tuple[ServerThread, ServerThread],
    job: httpx.Client,
    auth: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    billing_db: str,
    kafka: KafkaBroker,
    alice: str,
    alice_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    job_db = database_of(services[0])
    product = add_product(inventory_db, 5)
    held = customer_holds(job_db, alice_id)
    order = place(job, alice, product, 2)
    order_id = str(order["id"])
    assert customer_holds(job_db, alice_id) == (held[0] + 1, held[1] + 2)
    # Billing charged it, inventory sold it; the event was lost before order recorded it.
    record_payment(billing_db, order)
    sell(inventory, auth, order_id)
    assert order_status(job, alice, order_id) == "PENDING_PAYMENT"

    wait_for(
        lambda: order_status(job, alice, order_id) == "CONFIRMED",
        timeout=15,
        what="the expiry job to confirm the order",
    )
    [event] = events_for(kafka.bootstrap, ORDER_CONFIRMED, order_id)
    assert Envelope.parse(event.value).data == {"order_id": order_id}
    assert records_for(kafka.bootstrap, ORDER_CANCELLED, order_id) == []
    # Its place under alice's limits is given back; the stock stays sold.
    assert customer_holds(job_db, alice_id) == held
    assert reservation_status(inventory_db, order_id) == "COMMITTED"
    assert available(inventory, product) == 3

    [line] = lines(caplog, CONFIRMED_LINE, order_id)
    assert line.levelno == logging.WARNING
    assert line.client_id == SCHEDULER_CLIENT_ID  # type: ignore[attr-defined]
    assert lines(caplog, STUCK_LINE, order_id) == []
    assert lines(caplog, FAILED_LINE, order_id) == []
    # Billing was asked by the job's own token: order-scheduler, no user, no act chain.
    asked = [
        r
        for r in caplog.records
        if getattr(r, "action", None) == "verify-payment"
        and getattr(r, "order_id", None) == order_id
    ]
    assert asked
    for record in asked:
        assert record.client_id == SCHEDULER_CLIENT_ID  # type: ignore[attr-defined]
        assert record.sub == SCHEDULER_CLIENT_ID  # type: ignore[attr-defined]
        assert record.act == []  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if "eyJ" in r.getMessage()]  # no token logged


def test_sold_orders_billing_does_not_vouch_for_are_logged_once_per_pass_and_others_expire(
    services: tuple[ServerThread, ServerThread],
    placer: httpx.Client,
    auth: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    billing_db: str,
    kafka: KafkaBroker,
    alice: str,
    alice_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="order_service")
    placer_db = database_of(services[1])
    product = add_product(inventory_db, 20)
    held = customer_holds(placer_db, alice_id)
    # Sold at inventory, but billing has: nothing, a declined payment, another amount.
    unpaid, declined, short = (place(placer, alice, product, 2) for _ in range(3))
    record_payment(billing_db, declined, status="DECLINED")
    record_payment(billing_db, short, amount_cents=int(short["total_cents"]) - 1)
    stuck = [str(order["id"]) for order in (unpaid, declined, short)]
    for order_id in stuck:
        sell(inventory, auth, order_id)
    # And an order overdue in the ordinary way, in the same passes.
    plain = str(place(placer, alice, product, 1)["id"])

    # Batches of 2: the stuck orders fill the first one, and the plain order behind them
    # must still be reached in the same pass.
    assert passes(services[1].app.state.settings, 2, batch=2) == [1, 0]

    assert order_status(placer, alice, plain) == "CANCELLED"
    assert reservation_status(inventory_db, plain) == "RELEASED"
    [event] = events_for(kafka.bootstrap, ORDER_CANCELLED, plain)
    assert Envelope.parse(event.value).data == {"order_id": plain, "reason": "expired"}
    reasons = {
        stuck[0]: "billing has no payment for the order",
        stuck[1]: "billing recorded the payment as failed",
        stuck[2]: "billing's amount or currency is not the order's",
    }
    for order_id in stuck:
        assert order_status(placer, alice, order_id) == "PENDING_PAYMENT"
        assert reservation_status(inventory_db, order_id) == "COMMITTED"
        found = lines(caplog, STUCK_LINE, order_id)
        assert len(found) == 2, (order_id, found)  # one per pass
        for line in found:
            assert line.levelno == logging.ERROR
            assert line.reason == reasons[order_id]  # type: ignore[attr-defined]
        assert lines(caplog, FAILED_LINE, order_id) == []
        assert lines(caplog, CONFIRMED_LINE, order_id) == []
        assert records_for(kafka.bootstrap, ORDER_CONFIRMED, order_id) == []
    # The three stuck orders still hold their places; the expired one gave its back.
    assert customer_holds(placer_db, alice_id) == (held[0] + 3, held[1] + 6)
    # Settled by a person (here: billing records the payment after all), the next pass
    # confirms the first one; the others stay as they are.
    record_payment(billing_db, unpaid)
    passes(services[1].app.state.settings, 1)
    assert order_status(placer, alice, stuck[0]) == "CONFIRMED"
    assert customer_holds(placer_db, alice_id) == (held[0] + 2, held[1] + 4)
    assert len(lines(caplog, STUCK_LINE, stuck[1])) == 3


def test_billing_down_leaves_a_sold_order_for_the_next_pass(
    services: tuple[ServerThread, ServerThread],
    placer: httpx.Client,
    auth: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    billing_db: str,
    kafka: KafkaBroker,
    alice: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="order_service")
    settings = services[1].app.state.settings
    product = add_product(inventory_db, 5)
    order = place(placer, alice, product, 1)
    order_id = str(order["id"])
    record_payment(billing_db, order)
    sell(inventory, auth, order_id)

    # Nobody listens where billing should be: nothing changes, nobody is told to look.
    passes(settings, 1, billing_url=f"http://127.0.0.1:{free_port()}")
    assert order_status(placer, alice, order_id) == "PENDING_PAYMENT"
    [failed] = lines(caplog, FAILED_LINE, order_id)
    assert failed.error == "BillingUnavailable"  # type: ignore[attr-defined]
    assert lines(caplog, STUCK_LINE, order_id) == []

    # Billing back: the next pass confirms it.
    passes(settings, 1)
    assert order_status(placer, alice, order_id) == "CONFIRMED"
    [line] = lines(caplog, CONFIRMED_LINE, order_id)
    assert line.client_id == SCHEDULER_CLIENT_ID  # type: ignore[attr-defined]
    [event] = events_for(kafka.bootstrap, ORDER_CONFIRMED, order_id)
    assert Envelope.parse(event.value).data == {"order_id": order_id}


def test_a_pass_gives_up_after_a_few_orders_inventory_does_not_answer(
    services: tuple[ServerThread, ServerThread],
    placer: httpx.Client,
    inventory_db: str,
    alice: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hung or absent inventory costs each order its timeout: a pass stops after a few."""
    caplog.set_level(logging.INFO, logger="order_service")
    settings = services[1].app.state.settings
    product = add_product(inventory_db, 10)
    placed = [str(place(placer, alice, product, 1)["id"]) for _ in range(UNANSWERED_IN_A_ROW + 2)]

    assert passes(settings, 1, inventory_url=f"http://127.0.0.1:{free_port()}") == [0]
    failed = [r for r in caplog.records if r.getMessage() == FAILED_LINE]
    assert len(failed) == UNANSWERED_IN_A_ROW  # not one per overdue order
    assert {r.error for r in failed} == {"InventoryUnavailable"}  # type: ignore[attr-defined]

    # Inventory back: the next pass expires them all.
    passes(settings, 1)
    assert [order_status(placer, alice, order_id) for order_id in placed] == ["CANCELLED"] * len(
        placed
    )


def inventory_down_for(upstream: str, releases: int) -> FastAPI:
    """In front of the real inventory: the first ``releases`` releases get a 503 (down)."""
    app = FastAPI()
    app.state.refused = 0

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def forward(path: str, request: Request) -> Response:
        if path.endswith("/release") and app.state.refused < releases:
            app.state.refused += 1
            return Response(b'{"title": "down"}', 503, media_type="application/problem+json")
        async with httpx.AsyncClient(base_url=upstream) as client:
            answer = await client.request(
                request.method,
                f"/{path}",
                content=await request.body(),
                headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
            )
        return Response(answer.content, answer.status_code, media_type="application/json")

    return app


def test_the_pass_after_one_that_gave_up_starts_behind_it(
    tmp_path: Path,
    issuer: str,
    valkey: ValkeyServer,
    kafka: KafkaBroker,
    inventory_server: ServerThread,
    billing_server: ServerThread,
    inventory_db: str,
    alice: str,
) -> None:
    """Orders that never get an answer at the front cannot keep every pass from the rest.

    One job, three passes, over five overdue orders of an order service of its own:
    inventory is down for the first three releases, so the first pass gives up
    there; the second starts behind them (2 expired) and reaches the end; the
    third starts from the front again (3 expired). A job that started every pass
    from the front would expire all five in the second.
    """
    own = order_app(
        tmp_path,
        issuer,
        redis_url=valkey.url,
        kafka_bootstrap=kafka.bootstrap,
        inventory_url=inventory_server.base_url,
        billing_url=billing_server.base_url,
        run_payment_consumer=False,
    )
    door = ServerThread(inventory_down_for(inventory_server.base_url, UNANSWERED_IN_A_ROW))
    with own, door, httpx.Client(base_url=own.base_url, timeout=15) as client:
        product = add_product(inventory_db, 10)
        placed = [str(place(client, alice, product, 1)["id"]) for _ in range(5)]

        assert passes(own.app.state.settings, 3, inventory_url=door.base_url) == [0, 2, 3]
        assert [order_status(client, alice, order_id) for order_id in placed] == ["CANCELLED"] * 5
