"""HTTP endpoints of the authorization server. Thin: parse, call Authlib, render."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson
from authlib.oauth2 import OAuth2Error
from fastapi import APIRouter, Request, Response
from hopauth import InvalidDPoPProofError
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse

from .deps import KeysDep, LoginSlotsDep, LoginThrottleDep, ServerDep, SettingsDep
from .forms import BadForm, read_form
from .login_throttle import ThrottleUnavailable
from .oauth import dpop
from .oauth.clients import TOKEN_EXCHANGE
from .oauth.requests import ParsedRequest
from .oauth.server import HopAuthorizationServer
from .oauth_errors import oauth_error
from .pages import error_page, login_page
from .users import authenticate

log = logging.getLogger(__name__)

_A = TypeVar("_A")
_R = TypeVar("_R")

router = APIRouter()

MAX_QUERY_BYTES = 4096
# RFC 8693 §2.1 lets audience and resource repeat; the grant then insists on one.
REPEATABLE = ("audience", "resource")
# The service grants do no blocking I/O on their hot path (clients, policy and
# keys are in memory; session state is cached), so they skip the thread-pool
# hop. A session-cache miss is one indexed read. Grants that write the
# database run in the thread pool.
INLINE_GRANTS = frozenset({"client_credentials", TOKEN_EXCHANGE})


def token_endpoint(issuer: str) -> str:
    """The token endpoint as published in metadata (RFC 8414 §2 ``token_endpoint``)."""
    return f"{issuer}/token"


def metadata(issuer: str, scopes: list[str]) -> dict[str, Any]:
    """RFC 8414 §2 authorization server metadata."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": token_endpoint(issuer),
        "jwks_uri": f"{issuer}/jwks",
        "introspection_endpoint": f"{issuer}/introspect",
        "revocation_endpoint": f"{issuer}/revoke",
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        # RFC 9449 §5.1: proofs are accepted at the token endpoint.
        "dpop_signing_alg_values_supported": list(dpop.ALGORITHMS),
        "authorization_response_iss_parameter_supported": False,
    }


def _render(result: tuple[int, Any, list[tuple[str, str]]]) -> Response:
    status, body, headers = result
    if status in (301, 302, 303):
        location = dict(headers)["Location"]
        return RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})
    return Response(
        orjson.dumps(body), status_code=status, headers=dict(headers), media_type="application/json"
    )


def _oauth_request(
    request: Request, server: HopAuthorizationServer, form: list[tuple[str, str]]
) -> ParsedRequest:
    # The issuer's URL, not the Host header's: it is what Authlib's transport check should see.
    return ParsedRequest(
        method=request.method,
        uri=server.context.settings.issuer + request.scope["path"],
        headers=request.headers,
        form=form,
    )


async def _endpoint(
    request: Request, server: HopAuthorizationServer, max_bytes: int, name: str | None
) -> Response:
    try:
        form = await read_form(request, max_bytes=max_bytes, repeatable=REPEATABLE)
    except BadForm as exc:
        return oauth_error(exc.status_code, "invalid_request", exc.description)
    oauth_request = _oauth_request(request, server, form)
    if name is None:
        return await _token_response(request, server, oauth_request)
    result = await run_in_threadpool(server.create_endpoint_response, name, oauth_request)
    return _render(result)


def _refused_proof(exc: InvalidDPoPProofError) -> Response:
    # RFC 9449 §5: a bad proof is a 400 invalid_dpop_proof, never a bearer token.
    log.info("DPoP proof refused at the token endpoint: %s", exc.reason)
    return oauth_error(400, "invalid_dpop_proof", exc.reason)


async def _grant_step(inline: bool, step: Callable[[_A], _R], arg: _A) -> _R:
    """``step(arg)`` here for an inline grant, else in the thread pool (INLINE_GRANTS)."""
    return step(arg) if inline else await run_in_threadpool(step, arg)


async def _token_response(
    request: Request, server: HopAuthorizationServer, oauth_request: ParsedRequest
) -> Response:
    context = server.context
    try:
        # Routing matched /token, so the decoded path is the one sent (up to RFC 3986
        # normalization, which the validator applies). The path from the ASGI scope,
        # never request.url: that is built from the Host header, which the client
        # chooses, so it would let a proof made for another server pass (RFC 9449 §11.1).
        proof = await dpop.checked_proof(
            request.headers.getlist("dpop"),
            context.dpop,
            token_endpoint(context.settings.issuer),
            request.scope["path"],
        )
    except InvalidDPoPProofError as exc:
        return _refused_proof(exc)
    inline = oauth_request.payload.data.get("grant_type") in INLINE_GRANTS
    if proof is None:
        return _render(await _grant_step(inline, server.create_token_response, oauth_request))
    oauth_request.dpop_jkt = proof.jkt
    # RFC 9449 §11.1: the jti is recorded once the grant is validated (client
    # authenticated; code, refresh token, client credentials request or subject
    # token checked) and before any token is issued or code or refresh token
    # spent. A failed grant records nothing, so a caller without a good grant
    # (e.g. the public client with a made-up code) cannot fill the replay cache;
    # first_use is atomic, so one proof never gets two tokens.
    try:
        grant = await _grant_step(inline, server.validated_token_grant, oauth_request)
    except OAuth2Error as error:
        return _render(server.handle_error_response(oauth_request, error))
    try:
        await dpop.record(proof, context.dpop_replay, context.clock())
    except InvalidDPoPProofError as exc:
        return _refused_proof(exc)
    return _render(await _grant_step(inline, server.issue_token_response, grant))


@router.get("/.well-known/oauth-authorization-server", include_in_schema=False)
@router.get("/.well-known/openid-configuration", include_in_schema=False)
async def discovery(server: ServerDep, settings: SettingsDep) -> JSONResponse:
    body = metadata(settings.issuer, server.context.policy.scopes_supported())
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})


@router.get("/jwks")
async def jwks(keys: KeysDep) -> JSONResponse:
    body = await run_in_threadpool(keys.jwks)
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=60"})


async def token(request: Request) -> Response:
    """RFC 6749 §3.2 token endpoint: every grant, RFC 6749 §5.2 errors.

    The hot path of the whole system, so app.py mounts it as a plain Starlette
    route: FastAPI's per-request dependency and routing machinery cost more
    here than verifying the subject token's signature.
    """
    server: HopAuthorizationServer = request.app.state.oauth_server
    return await _endpoint(request, server, server.context.settings.max_request_bytes, None)


@router.post("/introspect")
async def introspect(request: Request, server: ServerDep, settings: SettingsDep) -> Response:
    """RFC 7662 token introspection."""
    return await _endpoint(request, server, settings.max_request_bytes, "introspection")


@router.post("/revoke")
async def revoke(request: Request, server: ServerDep, settings: SettingsDep) -> Response:
    """RFC 7009 token revocation."""
    return await _endpoint(request, server, settings.max_request_bytes, "revocation")


def _authorization_request(request: Request) -> tuple[str, ParsedRequest]:
    query = request.url.query
    if len(query) > MAX_QUERY_BYTES:
        raise BadForm(414, "Authorization request too long.")
    pairs = parse_qsl(query, keep_blank_values=True)
    return query, ParsedRequest(
        method="GET", uri=str(request.url), headers=request.headers, query=pairs
    )


def _authorization_error(error: OAuth2Error) -> Response:
    """RFC 6749 §4.1.2.1: redirect only once the client and redirect URI are known good."""
    if error.redirect_uri:
        status, _, headers = error()
        return _render((status, "", headers))
    return error_page(400, error.error, error.description)


@router.get("/authorize", include_in_schema=False)
async def authorize_form(request: Request, server: ServerDep) -> Response:
    """RFC 6749 §4.1.1: validate the request, then show the login form."""
    try:
        query, oauth_request = _authorization_request(request)
        grant = await run_in_threadpool(server.get_consent_grant, oauth_request, None)
    except BadForm as exc:
        return error_page(exc.status_code, "invalid_request", exc.description)
    except OAuth2Error as error:
        return _authorization_error(error)
    return login_page(query=query, client_id=grant.client.client_id, scopes=oauth_request.scope)


def client_ip(request: Request) -> str:
    """The address the request came from, for the per-IP login throttle.

    The peer address: uvicorn puts an ``X-Forwarded-For`` address here only when
    told to trust proxy headers (``--proxy-headers`` with ``--forwarded-allow-ips``),
    which ``hopshop-auth serve`` and the stack turn off so no client can pick its
    own. Behind a reverse proxy, every user then shares the proxy's address:
    trust that proxy, and only it, there.
    """
    return request.client.host if request.client is not None else "unknown"


@router.post("/authorize", include_in_schema=False)
async def authorize_login(
    request: Request,
    server: ServerDep,
    settings: SettingsDep,
    login_slots: LoginSlotsDep,
    throttle: LoginThrottleDep,
) -> Response:
    """The login form posts back here; success is a 302 to the registered redirect URI.

    Failed logins are throttled per username and per client IP
    (:mod:`.login_throttle`): over a limit, the password is not checked and the
    form comes back with 429 and ``Retry-After`` (RFC 6585 §4).
    """
    try:
        query, oauth_request = _authorization_request(request)
        form = dict(await read_form(request, max_bytes=settings.max_request_bytes))
        grant = await run_in_threadpool(server.get_consent_grant, oauth_request, None)
    except BadForm as exc:
        return error_page(exc.status_code, "invalid_request", exc.description)
    except OAuth2Error as error:
        return _authorization_error(error)

    # As the user is looked up: the same text is the throttle's username.
    username = form.get("username", "")[:64]
    password = form.get("password", "")[:256]
    ip = client_ip(request)

    def form_again(error: str, status_code: int) -> Response:
        return login_page(
            query=query,
            client_id=grant.client.client_id,
            scopes=oauth_request.scope,
            username=username,
            error=error,
            status_code=status_code,
        )

    # Before the password is looked at: a refusal says nothing of the account and costs no argon2.
    try:
        wait = await throttle.attempt(username, ip)
    except ThrottleUnavailable:
        response = form_again("Sign-in is unavailable right now; try again shortly.", 503)
        response.headers["Retry-After"] = "5"
        return response
    if wait:
        log.warning(
            "login throttled", extra={"username": username, "client_ip": ip, "retry_after": wait}
        )
        response = form_again(f"Too many failed attempts; try again in {wait} s.", 429)
        response.headers["Retry-After"] = str(wait)
        return response

    # argon2 takes ~64 MiB and tens of ms per check: bound how many run at once.
    async with login_slots:
        user = await run_in_threadpool(authenticate, server.context.db, username, password)
    if user is None:
        log.info("login failed", extra={"username": username, "client_ip": ip})
        return form_again("Invalid username or password.", 401)
    await throttle.succeeded(username, ip)
    log.info("login succeeded", extra={"user_id": user.id})
    result = await run_in_threadpool(
        server.create_authorization_response, oauth_request, user, grant
    )
    return _render(result)


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    checks = await run_in_threadpool(request.app.state.readiness)
    ok = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )
