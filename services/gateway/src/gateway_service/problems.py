"""The gateway's own problem types (RFC 9457), beyond the ones hopauth and hopkit raise."""

from __future__ import annotations

from typing import Any

from hopkit.problems import Problem, problem_response
from starlette.responses import JSONResponse

PROBLEMS = "https://hopshop.example/problems/"


class HeaderProblem(Problem):
    """A problem that also sets response headers (``Retry-After``, ``WWW-Authenticate``).

    hopkit's handler renders any :class:`Problem` through ``response()``, so
    overriding it is all it takes.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str],
        type_: str = "about:blank",
        **extensions: Any,
    ) -> None:
        super().__init__(status, title, detail, type_=type_, **extensions)
        self.headers = headers

    def response(self) -> JSONResponse:
        return problem_response(
            self.status,
            self.title,
            self.detail,
            type_=self.type,
            headers=self.headers,
            **self.extensions,
        )


def rate_limited(retry_after: int, limit: int, window: float) -> HeaderProblem:
    return HeaderProblem(
        429,
        "Too Many Requests",
        f"at most {limit} requests per {window:g} s per user; retry after {retry_after} s",
        headers={"Retry-After": str(retry_after)},
        type_=PROBLEMS + "rate-limited",
        retry_after=retry_after,
    )


def broadcast_quota_spent(retry_after: int, quota: int, window: float) -> HeaderProblem:
    """A staff member's broadcasts for this window are spent (RFC 6585 §4, RFC 9110 §10.2.3)."""
    return HeaderProblem(
        429,
        "Too Many Requests",
        f"at most {quota} broadcasts per {window:g} s per staff member; "
        f"retry after {retry_after} s",
        headers={"Retry-After": str(retry_after)},
        type_=PROBLEMS + "broadcast-quota",
        retry_after=retry_after,
    )


def unavailable(service: str) -> Problem:
    return Problem(
        503,
        "Service Unavailable",
        f"the {service} service cannot be reached; try again shortly",
        type_=PROBLEMS + "downstream-unavailable",
        service=service,
    )


def timed_out(service: str) -> Problem:
    return Problem(
        504,
        "Gateway Timeout",
        f"the {service} service did not answer in time",
        type_=PROBLEMS + "downstream-timeout",
        service=service,
    )


def bad_gateway(service: str, detail: str) -> Problem:
    return Problem(
        502,
        "Bad Gateway",
        detail,
        type_=PROBLEMS + "downstream-error",
        service=service,
    )
