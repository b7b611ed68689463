"""Card numbers: checked, then reduced to the masked form that is all the order keeps.

The whole number lives only in the request being handled; it is never stored,
logged, sent on, or echoed in an error (PCI DSS allows first six and last four).
"""

from __future__ import annotations

CARD_DIGITS = 16


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check: doubling every second digit from the right."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def normalise(card: str) -> str:
    """The card's digits, spaces allowed between groups; ValueError says what is wrong.

    The message never contains the number: it ends up in a 422 body.
    """
    digits = card.replace(" ", "")
    if len(digits) != CARD_DIGITS or not digits.isascii() or not digits.isdigit():
        raise ValueError(f"a card number is {CARD_DIGITS} digits")
    if not luhn_valid(digits):
        raise ValueError("not a valid card number (Luhn check failed)")
    return digits


def mask(digits: str) -> str:
    """``400000******0002``: first six and last four, the rest hidden."""
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]
