"""The ``Idempotency-Key`` request header (draft-ietf-httpapi-idempotency-key-header-07).

§2.1: the field is an RFC 8941 Item whose value is a String (``sf-string``,
RFC 8941 §3.3.3), as in ``Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324"``,
and a request carries at most one. Here a key is 1 to 255 visible ASCII
characters (``%x21-7E``) once unquoted. A bare key (no quotes) is taken too,
as many clients send one, if it holds none of the characters that give a field
structure: ``"``, ``\\``, ``,`` and ``;``. Parameters (``"k";a=1``), two field
lines, and anything else are a 400 problem naming the header: §4 asks for the
key to be checked against its published format before anything is looked up.

The key itself is never echoed in the problem (a client may have put anything
there). What a key means (which requests it deduplicates, for how long) is the
business of the service that stores it; the gateway only checks the format
and passes the field on as it came (:attr:`IdempotencyKeyField.field_value`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from .problems import Problem

HEADER = "Idempotency-Key"
MAX_LENGTH = 255
PROBLEM_TYPE = "https://hopshop.example/problems/invalid-idempotency-key"
FORMAT = (
    f"{HEADER} must be one quoted string of 1 to {MAX_LENGTH} visible ASCII characters, "
    'e.g. "8e03978e-40d5-43e8-bc93-6894a57f9324"'
)
# What gives a field structure (RFC 8941): not part of a bare key.
_NOT_BARE = frozenset('",;\\')


@dataclass(frozen=True, slots=True)
class IdempotencyKeyField:
    """A valid ``Idempotency-Key``: the key, and the field value exactly as it was sent."""

    key: str
    field_value: str


def parse_key(field_value: str) -> str:
    """The key in an ``Idempotency-Key`` field value; ValueError says what is wrong.

    The message never contains the value.
    """
    text = field_value.strip(" \t")
    if text.startswith('"'):
        key = _unquote(text)
    elif any(char in _NOT_BARE for char in text):
        raise ValueError('a key without quotes may not contain ", \\, comma or semicolon')
    else:
        key = text
    if not 1 <= len(key) <= MAX_LENGTH:
        raise ValueError(f"a key is 1 to {MAX_LENGTH} characters")
    if not all("\x21" <= char <= "\x7e" for char in key):
        raise ValueError("a key is visible ASCII characters only (no spaces)")
    return key


def _unquote(text: str) -> str:
    """RFC 8941 §4.2.5 (parsing a String): ``\\"`` and ``\\\\`` are the only escapes."""
    chars: list[str] = []
    position = 1
    while position < len(text):
        char = text[position]
        if char == "\\":
            escaped = text[position + 1 : position + 2]
            if escaped not in ('"', "\\"):
                raise ValueError('only \\" and \\\\ may be escaped in a quoted key')
            chars.append(escaped)
            position += 2
        elif char == '"':
            if position != len(text) - 1:
                raise ValueError("nothing may follow the closing quote (no parameters)")
            return "".join(chars)
        elif not " " <= char <= "~":
            raise ValueError("a key is visible ASCII characters only")
        else:
            chars.append(char)
            position += 1
    raise ValueError("the quoted key has no closing quote")


def invalid_key(reason: str) -> Problem:
    """400 (RFC 9457) naming the header; ``reason`` must not contain the value sent."""
    return Problem(
        400,
        f"Invalid {HEADER}",
        f"{FORMAT}: {reason}",
        type_=PROBLEM_TYPE,
        header=HEADER,
    )


async def idempotency_key(
    request: Request,
    field_value: Annotated[
        str | None,
        Header(
            alias=HEADER,
            description="Optional. A key of the client's choosing, fresh for each new "
            'request and the same for its retries: an sf-string such as `"8e03978e-40d5-'
            '43e8-bc93-6894a57f9324"` (draft-ietf-httpapi-idempotency-key-header), 1 to '
            "255 visible ASCII characters.",
        ),
    ] = None,
) -> IdempotencyKeyField | None:
    """The request's ``Idempotency-Key``, checked; None without one; 400 if it is bad."""
    if field_value is None:
        return None
    if len(request.headers.getlist(HEADER)) > 1:
        raise invalid_key("send it once")
    try:
        key = parse_key(field_value)
    except ValueError as exc:
        raise invalid_key(str(exc)) from None
    return IdempotencyKeyField(key, field_value)


IdempotencyKeyDep = Annotated[IdempotencyKeyField | None, Depends(idempotency_key)]
"""The request's ``Idempotency-Key`` (optional), or a 400 problem naming the header."""
