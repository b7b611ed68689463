"""RFC 9457 problem details for every error a service returns."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from hopkit.problems import Problem, install_problem_handlers
from pydantic import BaseModel


class Item(BaseModel):
    quantity: int


def app() -> FastAPI:
    application = FastAPI()
    install_problem_handlers(application)

    @application.post("/items")
    async def create(item: Item) -> dict[str, int]:
        if item.quantity > 10:
            raise Problem(409, "Insufficient stock", "only 10 left", type_="urn:test:stock")
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
