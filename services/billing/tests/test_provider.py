"""The simulated payment provider: pure, deterministic rules (no servers needed)."""

from __future__ import annotations

import pytest
from billing_service.provider import DECLINED_CARD, InvalidCharge, SimulatedProvider

provider = SimulatedProvider()


def charge(card: str = "424242******4242", amount: object = 1290, currency: str = "EUR") -> object:
    return provider.charge(
        masked_card=card,
        amount_cents=amount,  # type: ignore[arg-type]
        currency=currency,
        idempotency_key="ord-1",
    )


def test_the_decline_test_card_is_declined_and_others_pay() -> None:
    declined = provider.charge(
        masked_card=DECLINED_CARD, amount_cents=1290, currency="EUR", idempotency_key="o-1"
    )
    assert DECLINED_CARD == "400000******0002"
    assert (declined.approved, declined.decline_reason) == (False, "card_declined")
    for card in ("424242******4242", "555555******4444", "400000******0077", "378282*****0005"):
        paid = provider.charge(
            masked_card=card, amount_cents=1, currency="EUR", idempotency_key="o-2"
        )
        assert (paid.approved, paid.decline_reason) == (True, None), card


def test_same_request_same_answer_and_reference() -> None:
    first = provider.charge(
        masked_card=DECLINED_CARD, amount_cents=500, currency="EUR", idempotency_key="o-3"
    )
    again = provider.charge(
        masked_card=DECLINED_CARD, amount_cents=500, currency="EUR", idempotency_key="o-3"
    )
    other = provider.charge(
        masked_card=DECLINED_CARD, amount_cents=500, currency="EUR", idempotency_key="o-4"
    )
    assert first == again
    assert first.reference.startswith("sim_")
    assert other.reference != first.reference


@pytest.mark.parametrize("amount", [0, -1, -1290, True, 12.5, "1290", None])
def test_an_amount_that_is_not_positive_whole_cents_is_refused(amount: object) -> None:
    with pytest.raises(InvalidCharge, match="amount"):
        charge(amount=amount)


@pytest.mark.parametrize("currency", ["eur", "EURO", "", "E1R"])
def test_a_bad_currency_is_refused(currency: str) -> None:
    with pytest.raises(InvalidCharge, match="currency"):
        charge(currency=currency)


@pytest.mark.parametrize(
    "card", ["4000000000000002", "4242424242424242", "400000******000", "", "****"]
)
def test_only_masked_cards_are_taken(card: str) -> None:
    # A whole card number never reaches billing; if one did, it is refused, not charged.
    with pytest.raises(InvalidCharge, match="masked") as refused:
        charge(card=card)
    assert card not in str(refused.value) or not card


def test_the_authentication_test_card_leaves_the_payment_open() -> None:
    pending = provider.charge(
        masked_card="400000******3063", amount_cents=1290, currency="EUR", idempotency_key="o-9"
    )
    assert (pending.approved, pending.requires_action, pending.decline_reason) == (
        False,
        True,
        None,
    )
