"""Request bodies over the cap are a 413 problem+json, read no further (RFC 9110 §15.5.14)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Depends, FastAPI, Header
from hopkit.bodylimit import BodyLimitMiddleware
from hopkit.problems import PROBLEM_JSON, Problem, install_problem_handlers
from pydantic import BaseModel

LIMIT = 1024


class Note(BaseModel):
    text: str


def authorised(authorization: str = Header(default="")) -> None:
    if authorization != "Bearer ok":
        raise Problem(401, "Unauthorized")


def app(seen: list[str]) -> FastAPI:
    application = FastAPI()
    install_problem_handlers(application)

    @application.post("/notes", dependencies=[Depends(authorised)])
    async def create(note: Note) -> dict[str, int]:
        seen.append(note.text)
        return {"length": len(note.text)}

    application.add_middleware(BodyLimitMiddleware, max_bytes=LIMIT)
    return application


async def post(seen: list[str], signed_in: bool = True, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app(seen), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post(
            "/notes",
            headers={
                "Content-Type": "application/json",
                "Authorization": "Bearer ok" if signed_in else "",
            },
            **kwargs,  # type: ignore[arg-type]
        )


def note(size: int) -> bytes:
    """A JSON note of exactly ``size`` bytes."""
    overhead = len(b'{"text":""}')
    return b'{"text":"' + b"a" * (size - overhead) + b'"}'


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == 413
    assert body["title"] == "Content Too Large"
    # The same story whether the length was declared or counted as the body came in.
    assert body["detail"] == f"the request body is larger than {LIMIT} bytes"


async def test_a_body_of_exactly_the_limit_is_accepted() -> None:
    seen: list[str] = []
    response = await post(seen, content=note(LIMIT))
    assert response.status_code == 200, response.text
    assert seen == ["a" * (LIMIT - len(b'{"text":""}'))]


async def test_a_declared_length_over_the_limit_is_refused_before_the_app_runs() -> None:
    seen: list[str] = []
    response = await post(seen, content=note(LIMIT + 1))
    assert response.request.headers["content-length"] == str(LIMIT + 1)
    assert_too_large(response)
    assert seen == []


@pytest.mark.parametrize("signed_in", [True, False])
@pytest.mark.parametrize("chunk", [100, LIMIT + 1])
async def test_a_chunked_body_over_the_limit_is_refused(chunk: int, signed_in: bool) -> None:
    # FastAPI reads the body before the route's dependencies: without the cap, a
    # caller with no token could still make the service hold any body in memory.
    body = note(LIMIT * 4)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), chunk):
            yield body[start : start + chunk]

    seen: list[str] = []
    response = await post(seen, signed_in, content=chunks())
    assert "content-length" not in response.request.headers
    assert_too_large(response)
    assert seen == []
