"""The simulated payment provider: deterministic, so tests and demos can pick the outcome.

Rules (DESIGN.md's test-card convention): the card ``4000000000000002``,
which billing only ever sees masked as ``400000******0002``, is declined;
``4000000000003063`` (``400000******3063``) needs the cardholder to
authenticate, which never happens here, so the payment stays open and the
order is left unpaid (for the customer to cancel or the expiry job to end);
every other card pays. An amount that is not a positive whole number of
cents is refused outright: no provider charges zero or a negative amount,
and such an order is a bug upstream, not a customer's declined card.

The provider sees only the masked card (first six, last four): the order
service never stores or sends more, so billing never holds a card number.
A real provider would take ``idempotency_key`` (the order id) to make a
retried charge return the first charge's result instead of charging twice;
the signature carries it so swapping in a real client changes nothing above.

A refund (the compensation for a payment whose order was cancelled meanwhile)
always succeeds here, for the whole amount, and keeps a record of itself in
:attr:`SimulatedProvider.refunds`: what a real provider's dashboard would
show, and what tests check a refund against.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

DECLINED_CARD = "400000******0002"
DECLINE_REASON = "card_declined"
AUTHENTICATION_CARD = "400000******3063"

_MASKED_CARD = re.compile(r"^[0-9]{6}\*{2,9}[0-9]{4}$")


class InvalidCharge(ValueError):
    """The charge request itself is wrong (amount, currency, card form): nothing was attempted."""


@dataclass(frozen=True, slots=True)
class Charge:
    approved: bool
    reference: str  # the provider's id of this attempt
    decline_reason: str | None = None
    # The cardholder must authenticate first: neither paid nor declined yet.
    requires_action: bool = False


@dataclass(frozen=True, slots=True)
class Refund:
    reference: str  # the provider's id of the refund
    charge_reference: str  # the charge it gives the money back for
    amount_cents: int
    currency: str
    idempotency_key: str


class SimulatedProvider:
    """Charges and refunds in memory. Same request, same answer (and same reference)."""

    def __init__(self) -> None:
        #: Every refund made, in order; a retried refund (same key) is not added again.
        self.refunds: list[Refund] = []

    def charge(
        self, *, masked_card: str, amount_cents: int, currency: str, idempotency_key: str
    ) -> Charge:
        if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
            raise InvalidCharge("amount must be a whole number of cents")
        if amount_cents <= 0:
            raise InvalidCharge("amount must be greater than zero")
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise InvalidCharge("currency must be an ISO 4217 code")
        if not _MASKED_CARD.fullmatch(masked_card):
            raise InvalidCharge("card must be masked: first six and last four digits")
        reference = "sim_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
        if masked_card == AUTHENTICATION_CARD:
            return Charge(approved=False, reference=reference, requires_action=True)
        if masked_card == DECLINED_CARD:
            return Charge(approved=False, reference=reference, decline_reason=DECLINE_REASON)
        return Charge(approved=True, reference=reference)

    def refund(
        self, *, charge_reference: str, amount_cents: int, currency: str, idempotency_key: str
    ) -> Refund:
        """Give back the whole of a charge. Always succeeds; a retry returns the first refund."""
        for made in self.refunds:
            if made.idempotency_key == idempotency_key:
                return made
        reference = "sim_re_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
        made = Refund(reference, charge_reference, amount_cents, currency, idempotency_key)
        self.refunds.append(made)
        return made
