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

DPoP (RFC 9449 §7) has one switch, ``app.state.hopauth_dpop``: a
:class:`~hopauth.rfc9449.DPoPProofValidator` with the service's public
``origins``, or None (absent) for off::

    app.state.hopauth_dpop = DPoPProofValidator(
        replay_cache=RedisReplayCache(store), origins=["https://orders.example"]
    )

* A DPoP-bound token (``cnf.jkt``) is accepted only as ``Authorization: DPoP``
  with exactly one valid ``DPoP`` proof for this method and URL, signed by its
  key. It is refused as a bearer token, and refused outright when DPoP is
  off: a service that cannot check the proof must not let the binding lapse.
* A token bound by any other confirmation method (another ``cnf`` member,
  such as RFC 8705's ``x5t#S256``) is refused, for the same reason.
* ``app.state.hopauth_require_dpop = True`` (with DPoP on) also refuses unbound
  tokens: for internal services whose callers all hold keys. Leave it off
  where browsers' bearer tokens arrive.

The URL in the proof (``htu``) must be one of those origins followed by the
path of the request as sent, percent-encoding intact (RFC 9449 §4.3 point 9).
The ``Host`` header plays no part: the client chooses it, so trusting it
would let a proof made for another server be replayed here (§11.1). A
validator without origins is a wiring mistake, refused like a missing
``hopauth_validator`` (a ``RuntimeError``, so a 500): the adapter has no
trustworthy URL to compare with, and guessing one would fail open.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import Response

from .errors import InvalidDPoPProofError, InvalidTokenError, RevocationUnavailableError
from .principal import Principal
from .rfc9068 import AccessTokenValidator
from .rfc9449 import DPoPProofValidator

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


def _dpop(request: Request) -> DPoPProofValidator | None:
    """The app's DPoP switch: ``app.state.hopauth_dpop`` (None or absent: DPoP off)."""
    validator = getattr(request.app.state, "hopauth_dpop", None)
    if validator is None:
        return None
    if not isinstance(validator, DPoPProofValidator):
        raise RuntimeError("app.state.hopauth_dpop must be a DPoPProofValidator or None")
    if not validator.origins:
        # Fail closed: without them the only URL at hand is the client's Host header.
        raise RuntimeError(
            "app.state.hopauth_dpop has no origins: create it with "
            "DPoPProofValidator(..., origins=[<where clients reach this service>])"
        )
    return validator


def _dpop_required(request: Request) -> bool:
    return getattr(request.app.state, "hopauth_require_dpop", False) is True


def _challenge(
    scheme: str,
    realm: str,
    dpop: DPoPProofValidator | None,
    error: str | None = None,
    description: str | None = None,
    scope: str | None = None,
) -> str:
    """One RFC 6750 §3 (``Bearer``) or RFC 9449 §7.1 (``DPoP``) challenge."""
    if scheme == "dpop" and dpop is not None:
        params = [f'algs="{" ".join(dpop.algorithms)}"']
    else:
        scheme, params = "bearer", [f'realm="{_param(realm)}"']
    if error is not None:
        params.append(f'error="{error}"')
    if description is not None:
        params.append(f'error_description="{_param(description)}"')
    if scope is not None:
        params.append(f'scope="{_param(scope)}"')
    return ("DPoP " if scheme == "dpop" else "Bearer ") + ", ".join(params)


def _missing_token(realm: str, dpop: DPoPProofValidator | None, required: bool) -> AuthProblem:
    """RFC 6750 §3.1 / RFC 9449 §7.1: no credentials gets challenges without an error code."""
    if dpop is None:
        challenge, detail = _challenge("bearer", realm, None), "a bearer token is required"
    elif required:
        challenge, detail = _challenge("dpop", realm, dpop), "a DPoP-bound access token is required"
    else:
        # Both schemes are offered, in one header (RFC 9110 §11.6.1).
        challenge = f"{_challenge('bearer', realm, None)}, {_challenge('dpop', realm, dpop)}"
        detail = "an access token is required"
    return AuthProblem(
        401,
        problem="missing-token",
        title="Unauthorized",
        detail=detail,
        headers={"WWW-Authenticate": challenge},
    )


def _invalid_token(
    reason: str, scheme: str, realm: str, dpop: DPoPProofValidator | None
) -> AuthProblem:
    return AuthProblem(
        401,
        problem="invalid-token",
        title="Unauthorized",
        detail=reason,
        headers={
            "WWW-Authenticate": _challenge(scheme, realm, dpop, "invalid_token", reason),
        },
    )


def _invalid_proof(reason: str, dpop: DPoPProofValidator) -> AuthProblem:
    return AuthProblem(
        401,
        problem="invalid-dpop-proof",
        title="Unauthorized",
        detail=reason,
        headers={
            "WWW-Authenticate": _challenge("dpop", "", dpop, "invalid_dpop_proof", reason),
        },
    )


def _read_token(request: Request, realm: str, dpop: DPoPProofValidator | None) -> tuple[str, str]:
    """``(scheme, token)`` from ``Authorization: Bearer|DPoP <token>``; scheme lower-cased."""
    header = request.headers.get("authorization")
    scheme, _, credentials = (header or "").partition(" ")
    # RFC 7235 §2.1: the scheme is case-insensitive.
    scheme = scheme.lower()
    if scheme not in ("bearer", "dpop"):
        raise _missing_token(realm, dpop, _dpop_required(request))
    credentials = credentials.strip(" ")
    # RFC 6750 §2.1 and RFC 9449 §7.1 share the b64token syntax.
    if not _B64TOKEN.fullmatch(credentials):
        raise _invalid_token(f"malformed {scheme} token", scheme, realm, dpop)
    return scheme, credentials


async def bearer_token(request: Request) -> str:
    """The raw access token of the request (RFC 6750 §2.1, RFC 9449 §7.1), e.g. to exchange it.

    Accepts the ``Bearer`` and ``DPoP`` schemes. This only reads the header;
    it proves nothing. Use it next to :class:`Requires`, which validates the
    same token (and its DPoP proof). Async only so that FastAPI does not run
    it in a worker thread, which costs more than the work itself.
    """
    realm = getattr(getattr(request.app.state, "hopauth_validator", None), "audience", "")
    return _read_token(request, realm, _dpop(request))[1]


def _request_uri(request: Request, origin: str) -> str:
    """``origin`` plus the path as sent, for the ``htu`` check (RFC 9449 §4.3 point 9).

    The validator compares the proof with each of its origins and this path;
    the request's own scheme and ``Host`` are never used. ``request.url``
    carries the percent-decoded path, so a proof for ``/things/a%2Fb`` would
    be compared with ``/things/a/b`` and never match: the ASGI ``raw_path``
    keeps the path as sent. The validator normalizes both sides (RFC 3986
    §6.2.2); query and fragment are ignored.
    """
    raw_path = request.scope.get("raw_path")
    if not isinstance(raw_path, bytes) or not raw_path.startswith(b"/"):
        # raw_path is optional in ASGI. Not request.url: it is built from the Host header.
        # The decoded path is encoded again, so a "?" or "#" in it stays in the path.
        return origin + quote(str(request.scope["path"]), safe="/:@!$&'()*+,;=-._~")
    # The request target is ASCII (RFC 9112 §3.2); latin-1 cannot fail on stray bytes.
    return origin + raw_path.decode("latin-1").split("?", 1)[0]


async def _check_binding(
    request: Request,
    principal: Principal,
    scheme: str,
    token: str,
    realm: str,
    dpop: DPoPProofValidator | None,
) -> None:
    """RFC 9449 §7.1: a bound token only with its key's proof; unbound ones as configured."""
    unchecked = set(principal.confirmation or ()) - {"jkt"}
    if unchecked:
        # RFC 7800 §3.1: cnf names the key the presenter must prove. Only DPoP's
        # jkt is checked here; accepting e.g. an mTLS-bound (RFC 8705 x5t#S256)
        # token as bearer would quietly undo its binding.
        reason = "token bound by a confirmation method this service cannot check"
        logger.info(
            "token jti=%s refused: %s (%s)", principal.token_id, reason, " ".join(sorted(unchecked))
        )
        raise _invalid_token(reason, scheme, realm, dpop)
    jkt = principal.confirmation_jkt
    if jkt is None:
        if scheme == "dpop":
            reason = "DPoP scheme used with a token that is not DPoP-bound"
        elif dpop is not None and _dpop_required(request):
            reason = "this service accepts only DPoP-bound tokens"
        else:
            return
        logger.info("token jti=%s refused: %s", principal.token_id, reason)
        raise _invalid_token(reason, "dpop", realm, dpop)
    if dpop is None:
        # Accepting it as a bearer token would quietly undo the binding.
        reason = "DPoP-bound token, but this service does not check DPoP proofs"
        logger.info("token jti=%s refused: %s", principal.token_id, reason)
        raise _invalid_token(reason, "bearer", realm, None)
    if scheme != "dpop":
        reason = "DPoP-bound token presented as a bearer token"
        logger.info("token jti=%s refused: %s", principal.token_id, reason)
        raise _invalid_token(reason, "dpop", realm, dpop)
    proofs = request.headers.getlist("dpop")
    try:
        if len(proofs) != 1:
            # RFC 9449 §4.3 point 1: exactly one proof.
            raise InvalidDPoPProofError(
                "missing DPoP proof" if not proofs else "more than one DPoP header"
            )
        await dpop.validate(
            proofs[0],
            method=request.method,
            url=_request_uri(request, dpop.origins[0]),
            access_token=token,
            jkt=jkt,
        )
    except InvalidDPoPProofError as exc:
        logger.info("DPoP proof for token jti=%s refused: %s", principal.token_id, exc.reason)
        raise _invalid_proof(exc.reason, dpop) from None


#: Declares the bearer scheme in the OpenAPI document (and /docs' "Authorize"
#: button); the header itself is read and judged by :class:`Requires`.
#: OpenAPI has no DPoP scheme; the description says when it applies.
_openapi_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description=(
        "An access token for this service (RFC 9068), from the issuer's token endpoint. "
        "A DPoP-bound token is sent as 'Authorization: DPoP <token>' with a DPoP proof "
        "header (RFC 9449)."
    ),
)

#: ``token: BearerToken`` in a route signature gives the raw incoming token.
BearerToken = Annotated[str, Depends(bearer_token)]


class Requires:
    """Dependency that validates the access token and checks scopes and caller.

    ``Requires("orders:read", callers={"gateway"})`` admits a token carrying
    every listed scope, presented by one of ``callers`` (the current actor of
    an exchanged token, else its client; see :attr:`Principal.caller`).
    ``callers=None`` admits any caller. The principal is returned and also
    stored on ``request.state.principal``. DPoP-bound tokens need their proof
    (see the module docstring) before scopes and caller are looked at.
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
        realm = validator.audience
        dpop = _dpop(request)
        scheme, token = _read_token(request, realm, dpop)
        try:
            principal = await validator.validate(token)
        except InvalidTokenError as exc:
            logger.info("%s token refused: %s", scheme, exc.reason)
            raise _invalid_token(exc.reason, scheme, realm, dpop) from None
        except RevocationUnavailableError as exc:
            # Not the token's fault: a 401 would make the client drop a good token.
            raise AuthProblem(
                503,
                problem="revocation-unavailable",
                title="Service Unavailable",
                detail=f"the token could not be checked now ({exc.reason}); try again",
                headers={"Retry-After": "1"},
            ) from None
        await _check_binding(request, principal, scheme, token, realm, dpop)
        if not principal.has_scopes(*self.scopes):
            logger.info("token jti=%s lacks scopes %s", principal.token_id, " ".join(self.scopes))
            needed = _param(" ".join(self.scopes))
            raise AuthProblem(
                403,
                problem="insufficient-scope",
                title="Forbidden",
                detail=f"this request needs the scopes: {needed}",
                headers={
                    "WWW-Authenticate": _challenge(
                        scheme, realm, dpop, "insufficient_scope", scope=needed
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
