"""One order per ``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-header-07).

A client whose request timed out cannot tell whether the order exists: the
gateway answers 504 after ``GATEWAY_DOWNSTREAM_TIMEOUT`` while order may still
be placing it. Repeated with the same key, the request places nothing new.
The key is optional; without one every request is a new order.

- Keys are per customer (the token's ``sub``): one customer's key never
  matches another's, and nobody learns another customer's order through one.
- A key is claimed in a short transaction of its own, before anything is held
  or reserved (no write transaction across the HTTP calls that follow, as for
  the hold in :mod:`order_service.limits`). The row records the request's
  fingerprint (§2.4) and the id the order will have. The table's primary key
  (customer, key) decides between concurrent requests: one inserts the row.
- The fingerprint is the sha256 of the canonical JSON of the items (one line
  per product, as they are placed) and the *masked* card. Not the card
  number, nor a hash of it: a hash of a number whose first six and last four
  digits are stored beside it is found by trying the 10^5 numbers left.
  Two cards alike in those ten digits count as the same request.

What a request with a key gets (§2.6, §2.7):

- a key the customer has not used (or not within the retention): the order
  is placed as without one;
- the same key and fingerprint, the order stored: that order again, **201**
  with ``Idempotent-Replayed: true``, as it is now (its status may have moved
  on); nothing is held, reserved or announced again;
- the same key and fingerprint while the first request is still placing it
  (the order not stored yet): **409** ``idempotency-key-in-flight``; repeated
  a moment later, it gets the order. Concurrent requests with one key all
  end so: one places the order, the others get the 409, or the order once it
  is stored;
- the same key with other items or another card: **422**
  ``idempotency-key-reused``.

A placement that fails after the claim (insufficient stock, too many unpaid
orders, an unknown product) gives the key back, by a compensation on the
request's session like the hold's: the client may correct the request and
send it again with the same key. Retention (§2.3): a key is kept 24 hours
(:data:`RETENTION`); after that the customer may use it for a new order. The
expiry job deletes keys past it, and keys older than the payment timeout (plus
the expiry job's grace for placements under way) whose order was never stored
(the process stopped in between), so a crash does not leave a key "in flight"
for a day. Freeing the key of a failed placement departs from §2.6, which
would replay the error: nothing of a failed placement is left to replay.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from hopkit.idempotency import HEADER
from hopkit.problems import Problem
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from . import repository
from .inventory import Line

PROBLEMS = "https://hopshop.example/problems/"
#: How long a key places nothing new (§2.3); after that it may be used again.
RETENTION = timedelta(hours=24)
#: Response header on an order placed by an earlier request with the same key.
REPLAYED = "Idempotent-Replayed"


def fingerprint(lines: Sequence[Line], card_masked: str) -> str:
    """sha256 (hex) of the request as placed: normalised lines and the masked card (§2.4)."""
    canonical = json.dumps(
        {"card": card_masked, "items": [[line.product_id, line.quantity] for line in lines]},
        separators=(",", ":"),
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def key_reused() -> Problem:
    """422 (§2.7): the key placed another request (other items or another card)."""
    return Problem(
        422,
        f"{HEADER} already used",
        f"this {HEADER} was used for another order (other items or another card); "
        "a new order needs a new key",
        type_=PROBLEMS + "idempotency-key-reused",
        header=HEADER,
    )


def key_in_flight() -> Problem:
    """409 (§2.7): the first request with this key has not finished placing its order."""
    return Problem(
        409,
        "Order still being placed",
        f"an order with this {HEADER} is still being placed; "
        "send the request again shortly to get it",
        type_=PROBLEMS + "idempotency-key-in-flight",
        header=HEADER,
    )


async def claim(
    sessions: async_sessionmaker[AsyncSession],
    *,
    customer_id: str,
    key: str,
    fingerprint: str,
    order_id: str,
) -> str | None:
    """Claim ``key`` for ``order_id`` (None), or the id of the order the key placed already.

    Committed at once, in a transaction of its own. Raises the 422 for another
    request under the key, the 409 while its order is not stored yet.
    """
    now = datetime.now(UTC)
    async with sessions.begin() as session:
        if await repository.claim_idempotency_key(
            session,
            customer_id=customer_id,
            key=key,
            fingerprint=fingerprint,
            order_id=order_id,
            now=now,
            expired_before=now - RETENTION,
        ):
            return None
        found = await repository.find_idempotency_key(session, customer_id, key)
    if found is None:  # the other request failed and gave the key back just now
        raise key_in_flight()
    stored_fingerprint, earlier_order_id, order_stored = found
    if stored_fingerprint != fingerprint:
        raise key_reused()
    if not order_stored:
        raise key_in_flight()
    return earlier_order_id


async def release(
    sessions: async_sessionmaker[AsyncSession], customer_id: str, key: str, order_id: str
) -> None:
    """The order was never stored: the key may be used again (a compensation step)."""
    async with sessions.begin() as session:
        await repository.release_idempotency_key(session, customer_id, key, order_id)


async def forget_old(session: AsyncSession, unused_after: timedelta) -> int:
    """Delete keys past :data:`RETENTION`, and keys without an order older than ``unused_after``."""
    now = datetime.now(UTC)
    return await repository.forget_idempotency_keys(
        session, created_before=now - RETENTION, unused_before=now - unused_after
    )
