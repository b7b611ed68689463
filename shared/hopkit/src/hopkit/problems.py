"""RFC 9457 problem details for the services' APIs: every error, never a trace.

A 422 lists where the request was wrong (``loc``) and why (``msg``), never the
value it had (pydantic's ``input``); a key the caller chose is in ``loc``, so
anything shaped like a token there is ``[redacted]`` (:mod:`hopkit.redact`).
A JSON body sent as another media type is a 415, not a 422.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from .redact import redact_credentials

PROBLEM_JSON = "application/problem+json"
JSON = "application/json"
log = logging.getLogger(__name__)


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """An RFC 9457 §3 problem details response."""
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


class Problem(Exception):
    """Raised by service code for an expected failure; rendered as problem+json."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str = "about:blank",
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.extensions = extensions

    def response(self) -> JSONResponse:
        return problem_response(
            self.status, self.title, self.detail, type_=self.type, **self.extensions
        )


class RaisedProblem(HTTPException):
    """A :class:`Problem` raised where only an ``HTTPException`` gets through.

    FastAPI turns any other exception raised while it reads a request body into
    its own 400, so code that runs inside ``receive()`` (hopkit.bodylimit) raises
    this; it is rendered as the problem it carries, detail included.
    """

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.status, problem.title)
        self.problem = problem


async def _problem(request: Request, exc: Exception) -> Response:
    if isinstance(exc, RaisedProblem):
        exc = exc.problem
    assert isinstance(exc, Problem)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return problem_response(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))


def _not_json(exc: RequestValidationError) -> bool:
    """Whether a route that takes a JSON body got one of another media type.

    FastAPI parses a body as JSON only when its ``Content-Type`` is
    ``application/json`` or ``application/*+json`` (none at all is not enough);
    otherwise the route's body model is handed the raw bytes, and fails.
    """
    return isinstance(exc.body, bytes) and any(
        error.get("loc", ())[:1] == ("body",) for error in exc.errors()
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if _not_json(exc):
        # RFC 9110 §15.5.16: 415 is the content's format; the detail names the one taken.
        return problem_response(415, "Unsupported Media Type", f"Content-Type must be {JSON}.")
    errors = [
        {
            "loc": [redact_credentials(str(part)) for part in error.get("loc", ())],
            "msg": redact_credentials(str(error.get("msg", ""))),
        }
        for error in exc.errors()
    ]
    return problem_response(422, "Unprocessable Content", "The request is invalid.", errors=errors)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc)
    return problem_response(500, "Internal Server Error")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _problem)
    # Found before any HTTPException handler: the lookup follows the exception's MRO.
    app.add_exception_handler(RaisedProblem, _problem)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
