"""RFC 9457 problem details for every error a service returns."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from hopkit.problems import Problem, install_problem_handlers
from pydantic import BaseModel, ConfigDict

#: A real-looking access token (header, claims, signature), as a caller might paste one.
TOKEN = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsxIn0"
    ".eyJzdWIiOiJhbGljZSIsImF1ZCI6Im9yZGVyIiwic2NvcGUiOiJvcmRlcnM6cmVhZCJ9"
    ".c2lnbmF0dXJlLW9mLXRoZS1pc3N1ZXItd2l0aC1pdHMtcHJpdmF0ZS1rZXk"
)


class Item(BaseModel):
    quantity: int


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: int


def app() -> FastAPI:
    application = FastAPI()
    install_problem_handlers(application)

    @application.post("/items")
    async def create(item: Item) -> dict[str, int]:
        if item.quantity > 10:
            raise Problem(409, "Insufficient stock", "only 10 left", type_="urn:test:stock")
        return {"quantity": item.quantity}

    @application.post("/strict")
    async def strict(item: Strict) -> dict[str, int]:
        return {"quantity": item.quantity}

    @application.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return application


async def request(method: str, path: str, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path, **kwargs)  # type: ignore[arg-type]


async def test_service_problem_is_rendered() -> None:
    response = await request("POST", "/items", json={"quantity": 11})
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "urn:test:stock",
        "title": "Insufficient stock",
        "status": 409,
        "detail": "only 10 left",
    }


async def test_validation_error_names_the_field_without_echoing_input() -> None:
    response = await request("POST", "/items", json={"quantity": "lots-of-secret"})
    body = response.json()
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert body["errors"][0]["loc"] == ["body", "quantity"]
    assert "lots-of-secret" not in response.text


async def test_not_found_and_method_not_allowed_are_problems() -> None:
    missing = await request("GET", "/nope")
    assert missing.status_code == 404
    assert missing.json()["status"] == 404
    wrong = await request("DELETE", "/items")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == "application/problem+json"


async def test_unexpected_error_is_a_bare_500() -> None:
    response = await request("GET", "/boom")
    assert response.status_code == 500
    assert response.json() == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
    }
    assert "secret internals" not in response.text


async def test_a_token_in_a_key_is_not_echoed_in_the_422() -> None:
    # The key is the caller's text, and pydantic puts it in ``loc``.
    response = await request("POST", "/strict", json={"quantity": 1, TOKEN: 1})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"loc": ["body", "[redacted]"], "msg": "Extra inputs are not permitted"}
    ]
    assert "eyJ" not in response.text


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"],
)
async def test_json_sent_as_another_media_type_is_a_415(content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await request("POST", "/items", content=b'{"quantity": 1}', headers=headers)
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Unsupported Media Type",
        "status": 415,
        "detail": "Content-Type must be application/json.",
    }


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/merge-patch+json"],
)
async def test_json_media_types_are_taken(content_type: str) -> None:
    response = await request(
        "POST", "/items", content=b'{"quantity": 1}', headers={"Content-Type": content_type}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"quantity": 1}


async def test_an_empty_body_is_still_a_422() -> None:
    # Nothing was sent, so there is no media type to refuse: the body is missing.
    response = await request("POST", "/items", headers={"Content-Type": "text/plain"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body"]
