"""Error rendering: RFC 6749 JSON at the OAuth endpoints, RFC 9457 elsewhere. Never a trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from hopkit.problems import Problem, problem_response
from starlette.exceptions import HTTPException
from starlette.responses import Response

from .oauth_errors import oauth_error

log = logging.getLogger(__name__)

OAUTH_PATHS = frozenset({"/token", "/introspect", "/revoke", "/authorize"})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if request.url.path in OAUTH_PATHS:
        return oauth_error(exc.status_code, "invalid_request", str(exc.detail), headers)
    return problem_response(exc.status_code, str(exc.detail), headers=headers)


async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return exc.response()


async def _validation_error(request: Request, exc: Exception) -> Response:
    if request.url.path in OAUTH_PATHS:
        return oauth_error(400, "invalid_request", "Malformed request.")
    return problem_response(422, "Unprocessable Content", "Malformed request.")


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc)
    if request.url.path in OAUTH_PATHS:
        return oauth_error(500, "server_error")
    return problem_response(500, "Internal Server Error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
