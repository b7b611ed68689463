"""Answers made for a credential are ``no-store`` (RFC 9111 §5.2.2.5); public ones are untouched."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from hopkit.nostore import NoStoreMiddleware


def app() -> FastAPI:
    application = FastAPI()

    @application.get("/mine")
    async def mine() -> dict[str, str]:
        return {"owner": "alice"}

    @application.get("/keys")
    async def keys() -> JSONResponse:
        return JSONResponse({"keys": []}, headers={"Cache-Control": "public, max-age=300"})

    application.add_middleware(NoStoreMiddleware)
    return application


async def get(path: str, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path, headers=headers)


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer x"},
        {"authorization": "DPoP x", "DPoP": "proof"},
        {"Cookie": "session=1"},
    ],
)
async def test_an_answer_to_a_credentialed_request_is_no_store(headers: dict[str, str]) -> None:
    response = await get("/mine", headers)
    assert response.status_code == 200
    assert response.headers.get_list("cache-control") == ["no-store"]


async def test_an_anonymous_answer_is_left_alone() -> None:
    response = await get("/mine", {})
    assert "cache-control" not in response.headers


async def test_an_answer_that_chose_its_caching_keeps_it() -> None:
    response = await get("/keys", {"Authorization": "Bearer x"})
    assert response.headers.get_list("cache-control") == ["public, max-age=300"]
