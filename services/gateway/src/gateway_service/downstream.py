"""Calls to the services behind the gateway, and what their failures become at the edge.

The rule: a downstream 4xx is the client's business and is passed on with
the same status (its problem body too, so a 409 still says why); anything
else that goes wrong behind us is ours, and becomes a 502, 503 or 504 problem
naming the service, never a 500 and never a trace. Every request carries
``x-request-id`` and ``traceparent`` (an httpx event hook, see
:func:`trace_headers`), so one trace id follows the request through every hop.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, TypeVar

import httpx
from hopkit.problems import Problem
from hopkit.tracing import outgoing_headers
from pydantic import TypeAdapter, ValidationError

from .hops import HopToken
from .problems import HeaderProblem, bad_gateway, timed_out, unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Problem members (RFC 9457 §3.1) that are not extensions.
_STANDARD_MEMBERS = frozenset({"type", "title", "status", "detail", "instance"})
#: Downstream response headers worth passing on with a 4xx.
_PASSED_HEADERS = ("retry-after",)


async def trace_headers(request: httpx.Request) -> None:
    """httpx request hook: carry this request's id and trace context to the next hop."""
    for name, value in outgoing_headers().items():
        request.headers.setdefault(name, value)


class Downstream:
    """One pooled HTTP client for every service; base URLs by service (audience) id."""

    def __init__(self, http: httpx.AsyncClient, urls: Mapping[str, str]) -> None:
        self._http = http
        self._urls = dict(urls)

    def __repr__(self) -> str:
        return f"Downstream({sorted(self._urls)!r})"

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        expect: TypeAdapter[T],
        *,
        token: HopToken | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> T:
        """Send one request and return its body, checked against ``expect``.

        ``token`` sets the credentials: a DPoP-bound token with a proof made for
        this exact request (RFC 9449 §7.1), or a bearer token. ``headers`` are
        sent as they are (the client's ``Idempotency-Key``). Raises a
        :class:`Problem` for every failure (see the module docstring).
        """
        try:
            response = await self._http.request(
                method, self._urls[service] + path, json=json, auth=token, headers=headers
            )
        except httpx.TimeoutException:
            log.warning("%s %s %s timed out", service, method, path)
            raise timed_out(service) from None
        except httpx.TransportError as exc:
            log.warning("%s %s %s failed: %s", service, method, path, type(exc).__name__)
            raise unavailable(service) from None
        if 400 <= response.status_code < 500:
            raise passed_on(response)
        if not response.is_success:
            log.warning("%s %s %s answered %d", service, method, path, response.status_code)
            if response.status_code == 503:
                raise unavailable(service)
            raise bad_gateway(service, f"the {service} service failed ({response.status_code})")
        try:
            return expect.validate_json(response.content)
        except ValidationError as exc:
            # The body is not logged: it is another service's data, maybe personal.
            log.warning(
                "%s %s %s: unexpected body (%d errors)", service, method, path, exc.error_count()
            )
            raise bad_gateway(service, f"the {service} service sent an unexpected answer") from None


def passed_on(response: httpx.Response) -> Problem:
    """A downstream 4xx as our own problem, same status, same story.

    A problem+json body keeps its type, title, detail and extensions; any other
    body is summed up by its status. Downstream ``WWW-Authenticate`` challenges
    are not passed on: they name the downstream realm, not ours.
    """
    status = response.status_code
    body = _json_object(response)
    title = _text(body.get("title")) or _phrase(status)
    detail = _text(body.get("detail"))
    type_ = _text(body.get("type")) or "about:blank"
    extensions = {
        key: value
        for key, value in body.items()
        if key not in _STANDARD_MEMBERS and key.isidentifier() and key != "type_"
    }
    if "title" not in body and isinstance(body.get("detail"), list | dict):
        extensions["errors"] = body["detail"]  # FastAPI's default 422 shape
    headers = {name: response.headers[name] for name in _PASSED_HEADERS if name in response.headers}
    if headers:
        return HeaderProblem(status, title, detail, headers=headers, type_=type_, **extensions)
    return Problem(status, title, detail, type_=type_, **extensions)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Client Error"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
