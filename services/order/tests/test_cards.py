"""Card checks and masking (pure logic)."""

from __future__ import annotations

import pytest
from order_service.cards import luhn_valid, mask, normalise


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4242424242424242", True),
        ("4000000000000002", True),
        ("5555555555554444", True),
        ("4242424242424241", False),
        ("1234567812345678", False),
    ],
)
def test_luhn(number: str, valid: bool) -> None:
    assert luhn_valid(number) is valid


def test_normalise_accepts_grouped_digits_and_refuses_the_rest() -> None:
    assert normalise("4242 4242 4242 4242") == "4242424242424242"
    for bad in ("4242", "4242424242424241", "42424242424242a2", "\uff14\uff12" * 8):
        with pytest.raises(ValueError) as refused:
            normalise(bad)
        assert "42" not in str(refused.value)


def test_mask_keeps_first_six_and_last_four() -> None:
    assert mask("4000000000000002") == "400000******0002"
