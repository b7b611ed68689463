"""Text shown to people is refused, not rewritten, when it could read differently than
it is stored (CVE-2021-42574 "Trojan Source" and its relatives)."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI
from hopkit.problems import PROBLEM_JSON, install_problem_handlers
from hopkit.text import PLAIN_TEXT, plain_text
from pydantic import BaseModel, ConfigDict, Field

REFUSED = {
    "right-to-left override": "\u202e",
    "left-to-right embedding": "\u202a",
    "pop directional formatting": "\u202c",
    "right-to-left isolate": "\u2067",
    "pop directional isolate": "\u2069",
    "arabic letter mark": "\u061c",
    "zero-width space": "\u200b",
    "zero-width joiner": "\u200d",
    "zero-width non-joiner": "\u200c",
    "byte order mark": "\ufeff",
    "soft hyphen": "\u00ad",
    "tag latin small a": "\U000e0061",
    "NUL": "\x00",
    "escape": "\x1b",
    "carriage return": "\r",
    "vertical tab": "\x0b",
    "DEL": "\x7f",
    "next line (C1)": "\x85",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "lone surrogate": "\ud800",
    "private use": "\ue000",
    "unassigned": "\U000e0080",
}

ACCEPTED = {
    "ascii": "The shop closes at 18:00 today.",
    "lines and a tab": "Line one.\n\tLine two, indented.",
    "latin and japanese": "Grüße\nこんにちは",
    "right-to-left scripts": "שלום — مرحبا",
    "combining marks": "e\u0301 and \u0928\u093f",
    "emoji with a variation selector": "Sale \u2764\ufe0f \U0001f600",
    "other spaces": "a\u00a0b\u3000c",
}


@pytest.mark.parametrize("char", REFUSED.values(), ids=REFUSED.keys())
def test_hidden_and_reordering_characters_are_refused(char: str) -> None:
    with pytest.raises(ValueError, match=f"U\\+{ord(char):04X} at position 4") as refused:
        plain_text(f"safe{char}text")
    # The error names the code point, never carries the character itself.
    assert char not in str(refused.value)


@pytest.mark.parametrize("text", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_ordinary_text_in_any_script_is_kept_as_written(text: str) -> None:
    assert plain_text(text) == text


def test_text_is_trimmed_and_must_not_be_blank() -> None:
    assert plain_text(" \n\tGrüße\n ") == "Grüße"
    for blank in ("", " ", "\n\t \u3000"):
        with pytest.raises(ValueError, match="must not be blank"):
            plain_text(blank)


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    text: Annotated[str, Field(max_length=20), PLAIN_TEXT]


def app(seen: list[str]) -> FastAPI:
    application = FastAPI()
    install_problem_handlers(application)

    @application.post("/notes", status_code=201)
    async def create(note: Note) -> dict[str, str]:
        seen.append(note.text)
        return {"text": note.text}

    return application


async def post(seen: list[str], content: bytes) -> httpx.Response:
    transport = httpx.ASGITransport(app=app(seen), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post(
            "/notes", content=content, headers={"Content-Type": "application/json"}
        )


@pytest.mark.parametrize(
    "content",
    [
        rb'{"text": "abc\u202egpj.exe"}',
        rb'{"text": "NUL\u0000"}',
        rb'{"text": "join\u200ded"}',
        # Not text at all: a 500 if it were ever echoed (UTF-8 cannot encode it).
        rb'{"text": "lone \ud800 half"}',
    ],
)
async def test_a_field_with_a_refused_character_is_a_422_problem(content: bytes) -> None:
    seen: list[str] = []
    response = await post(seen, content)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    [error] = response.json()["errors"]
    assert error["loc"] == ["body", "text"]
    assert seen == []


async def test_a_field_keeps_its_own_length_limit() -> None:
    seen: list[str] = []
    assert (await post(seen, b'{"text": " \\u00c4rger\\n"}')).status_code == 201
    response = await post(seen, b'{"text": "' + b"x" * 21 + b'"}')
    assert response.status_code == 422, response.text
    assert seen == ["\u00c4rger"]
