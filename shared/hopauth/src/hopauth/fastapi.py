"""FastAPI adapter (needs the ``fastapi`` extra): bearer tokens in, principals out.

Set the validator in your lifespan, then declare what a route needs::

    app.state.hopauth_validator = AccessTokenValidator(...)
    install_problem_handlers(app)

    @app.get("/orders")
    async def list_orders(
        principal: Annotated[Principal, Depends(Requires("orders:read", callers={"gateway"}))],
    ) -> ...

Challenges follow RFC 6750 §3 (``WWW-Authenticate: Bearer ...``); bodies are
RFC 9457 problem details (``application/problem+json``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import Response

from .errors import InvalidTokenError
from .principal import Principal
from .rfc9068 import AccessTokenValidator

__all__ = [
    "PROBLEM_TYPE_PREFIX",
    "AuthProblem",
    "BearerToken",
    "Requires",
    "bearer_token",
    "install_problem_handlers",
]

logger = logging.getLogger(__name__)

#: Prefix of the problem ``type`` URIs this adapter emits (RFC 9457 §3.1.1);
#: an identifier, not meant to be dereferenced.
PROBLEM_TYPE_PREFIX = "urn:hopauth:problem:"

#: RFC 6750 §2.1 b64token, the syntax of a bearer token.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

#: Characters RFC 6750 §3 allows in error_description and scope values.
_UNSAFE_IN_PARAM = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


class AuthProblem(HTTPException):
    """An authentication or authorization failure, rendered as problem+json.

    ``headers`` carries the ``WWW-Authenticate`` challenge when there is one.
    Without :func:`install_problem_handlers` FastAPI still renders it, as its
    default ``{"detail": ...}`` body with the right status and headers.
    """

    def __init__(
        self,
        status_code: int,
        *,
        problem: str,
        title: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=dict(headers or {}))
        self.type = PROBLEM_TYPE_PREFIX + problem
        self.title = title

    def to_problem(self) -> dict[str, Any]:
        """The RFC 9457 §3.1 members of this problem."""
        return {
            "type": self.type,
            "title": self.title,
            "status": self.status_code,
            "detail": self.detail,
        }


async def _render_auth_problem(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, AuthProblem):  # only registered for AuthProblem
        raise exc
    return JSONResponse(
        exc.to_problem(),
        status_code=exc.status_code,
        headers=exc.headers,
        media_type="application/problem+json",
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Render :class:`AuthProblem` as ``application/problem+json``; other handlers stay."""
    app.add_exception_handler(AuthProblem, _render_auth_problem)


def _param(value: str) -> str:
    return _UNSAFE_IN_PARAM.sub("", value)


def _validator(request: Request) -> AccessTokenValidator:
    validator = getattr(request.app.state, "hopauth_validator", None)
    if not isinstance(validator, AccessTokenValidator):
        # A wiring mistake, not the caller's fault: let it be a 500.
        raise RuntimeError(
            "app.state.hopauth_validator is not set: create an AccessTokenValidator "
            "in the app's lifespan and assign it there"
        )
    return validator


def _unauthorized(realm: str, error: InvalidTokenError | None) -> AuthProblem:
    if error is None:
        # RFC 6750 §3.1: no credentials at all gets a challenge without an error code.
        return AuthProblem(
            401,
            problem="missing-token",
            title="Unauthorized",
            detail="a bearer token is required",
            headers={"WWW-Authenticate": f'Bearer realm="{_param(realm)}"'},
        )
    return AuthProblem(
        401,
        problem="invalid-token",
        title="Unauthorized",
        detail=error.reason,
        headers={
            "WWW-Authenticate": (
                f'Bearer realm="{_param(realm)}", error="invalid_token", '
                f'error_description="{_param(error.reason)}"'
            )
        },
    )


def _read_bearer(request: Request, realm: str) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized(realm, None)
    scheme, _, credentials = header.partition(" ")
    # RFC 7235 §2.1: the scheme is case-insensitive.
    if scheme.lower() != "bearer":
        raise _unauthorized(realm, None)
    credentials = credentials.strip(" ")
    if not _B64TOKEN.fullmatch(credentials):
        raise _unauthorized(realm, InvalidTokenError("malformed bearer token"))
    return credentials


def bearer_token(request: Request) -> str:
    """The raw bearer token of the request (RFC 6750 §2.1), e.g. to exchange it.

    This only reads the header; it proves nothing. Use it next to
    :class:`Requires`, which validates the same token.
    """
    realm = getattr(getattr(request.app.state, "hopauth_validator", None), "audience", "")
    return _read_bearer(request, realm)


#: Declares the bearer scheme in the OpenAPI document (and /docs' "Authorize"
#: button); the header itself is read and judged by :class:`Requires`.
_openapi_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="An access token for this service (RFC 9068), from the issuer's token endpoint.",
)

#: ``token: BearerToken`` in a route signature gives the raw incoming token.
BearerToken = Annotated[str, Depends(bearer_token)]


class Requires:
    """Dependency that validates the bearer token and checks scopes and caller.

    ``Requires("orders:read", callers={"gateway"})`` admits a token carrying
    every listed scope, presented by one of ``callers`` (the current actor of
    an exchanged token, else its client; see :attr:`Principal.caller`).
    ``callers=None`` admits any caller. The principal is returned and also
    stored on ``request.state.principal``.
    """

    def __init__(self, *scopes: str, callers: Collection[str] | None = None) -> None:
        self.scopes = tuple(dict.fromkeys(scopes))
        self.callers = frozenset(callers) if callers is not None else None

    def __repr__(self) -> str:
        return f"Requires(scopes={self.scopes!r}, callers={self.callers!r})"

    async def __call__(
        self,
        request: Request,
        _documented: Annotated[HTTPAuthorizationCredentials | None, Depends(_openapi_bearer)],
    ) -> Principal:
        validator = _validator(request)
        token = _read_bearer(request, validator.audience)
        try:
            principal = await validator.validate(token)
        except InvalidTokenError as exc:
            logger.info("bearer token refused: %s", exc.reason)
            raise _unauthorized(validator.audience, exc) from None
        if not principal.has_scopes(*self.scopes):
            logger.info("token jti=%s lacks scopes %s", principal.token_id, " ".join(self.scopes))
            needed = _param(" ".join(self.scopes))
            raise AuthProblem(
                403,
                problem="insufficient-scope",
                title="Forbidden",
                detail=f"this request needs the scopes: {needed}",
                headers={
                    "WWW-Authenticate": (
                        f'Bearer realm="{_param(validator.audience)}", '
                        f'error="insufficient_scope", scope="{needed}"'
                    )
                },
            )
        if self.callers is not None and principal.caller not in self.callers:
            logger.info(
                "token jti=%s presented by %s, not an allowed caller",
                principal.token_id,
                principal.caller,
            )
            raise AuthProblem(
                403,
                problem="forbidden-caller",
                title="Forbidden",
                detail=f"caller {principal.caller!r} may not make this request",
            )
        request.state.principal = principal
        return principal
