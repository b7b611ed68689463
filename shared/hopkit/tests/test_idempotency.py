"""The Idempotency-Key header: an sf-string (or a bare key), checked before anything else."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from hopkit.idempotency import (
    HEADER,
    PROBLEM_TYPE,
    IdempotencyKeyDep,
    parse_key,
)
from hopkit.problems import PROBLEM_JSON, install_problem_handlers

UUID = "8e03978e-40d5-43e8-bc93-6894a57f9324"


def app() -> FastAPI:
    application = FastAPI()
    install_problem_handlers(application)

    @application.post("/things")
    async def create(key: IdempotencyKeyDep) -> dict[str, str | None]:
        if key is None:
            return {"key": None, "field_value": None}
        return {"key": key.key, "field_value": key.field_value}

    return application


async def post(headers: list[tuple[str, str]]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post("/things", headers=headers)


@pytest.mark.parametrize(
    ("field_value", "key"),
    [
        (f'"{UUID}"', UUID),
        (UUID, UUID),  # bare, as many clients send it
        (f' "{UUID}" ', UUID),
        ('"a\\"b\\\\c"', 'a"b\\c'),  # the two escapes of RFC 8941 §3.3.3
        ('"' + "k" * 255 + '"', "k" * 255),
        ("x", "x"),
        ('"~!#$%&()*+-./:<=>?@[]^_`{|}"', "~!#$%&()*+-./:<=>?@[]^_`{|}"),
    ],
)
def test_valid_keys(field_value: str, key: str) -> None:
    assert parse_key(field_value) == key


@pytest.mark.parametrize(
    "field_value",
    [
        "",
        '""',
        '"' + "k" * 256 + '"',
        "k" * 256,
        '"two words"',  # a space is an sf-string character, but not a visible one
        '"tab\there"',
        f'"{UUID}',  # no closing quote
        f'"{UUID}";a=1',  # parameters
        f'"{UUID}", "other"',  # a list, not an item
        f"{UUID},other",
        f"{UUID};a=1",
        'a"b',
        '"a\\nb"',  # an escape RFC 8941 does not have
        '"a\\"',
        '"caf\u00e9"',
        "caf\u00e9",
    ],
)
def test_invalid_keys(field_value: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_key(field_value)


async def test_the_dependency_gives_the_key_and_the_field_as_sent() -> None:
    response = await post([(HEADER, f'"{UUID}"')])
    assert response.status_code == 200, response.text
    assert response.json() == {"key": UUID, "field_value": f'"{UUID}"'}


async def test_without_the_header_there_is_no_key() -> None:
    response = await post([])
    assert response.status_code == 200, response.text
    assert response.json() == {"key": None, "field_value": None}


@pytest.mark.parametrize(
    "headers",
    [
        [(HEADER, '"two words"')],
        [(HEADER, "")],
        [(HEADER, '"a"'), (HEADER, '"b"')],  # §2.1: at most one field line
        [(HEADER.lower(), '"a"'), (HEADER, '"a"')],
    ],
)
async def test_a_bad_header_is_a_400_problem_naming_it(headers: list[tuple[str, str]]) -> None:
    response = await post(headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["type"] == PROBLEM_TYPE
    assert problem["title"] == "Invalid Idempotency-Key"
    assert problem["header"] == "Idempotency-Key"
    assert problem["detail"].startswith("Idempotency-Key must be one quoted string")


async def test_the_problem_never_echoes_the_value() -> None:
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl with a space"
    response = await post([(HEADER, f'"{token}"')])
    assert response.status_code == 400
    assert "eyJ" not in response.text
