"""The demo web UI: one static page (plus its script and styles) and its configuration.

The page is a public OAuth client (``web``): it logs in with authorization code
+ PKCE S256 at the issuer, redeems the code itself (cross-origin, so the issuer
allows this origin by CORS) and keeps the token in memory only. ``/callback``
is the same page: the registered redirect URI. Its settings come from
``/config.json``, so one build serves any deployment.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from .config import WEB_CLIENT, Settings

router = APIRouter(include_in_schema=False)

#: Scopes the page asks for; the issuer grants support:read only to support staff.
SCOPES = "orders:read orders:write billing:read notifications:read support:read"

_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}


@cache
def _asset(name: str) -> bytes:
    return files("gateway_service").joinpath("static", name).read_bytes()


def _headers(settings: Settings) -> dict[str, str]:
    # No inline script, no third party: the page talks to us and to the issuer only.
    return {
        "Content-Security-Policy": (
            "default-src 'self'; "
            f"connect-src 'self' {settings.browser_issuer}; "
            "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        ),
        # The callback URL carries the authorization code: never send it on as a referrer.
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }


def _serve(request: Request, name: str) -> Response:
    settings: Settings = request.app.state.settings
    return Response(_asset(name), media_type=_TYPES[name], headers=_headers(settings))


@router.get("/")
async def index(request: Request) -> Response:
    return _serve(request, "index.html")


@router.get("/callback")
async def callback(request: Request) -> Response:
    return _serve(request, "index.html")


@router.get("/app.js")
async def script(request: Request) -> Response:
    return _serve(request, "app.js")


@router.get("/app.css")
async def styles(request: Request) -> Response:
    return _serve(request, "app.css")


@router.get("/config.json")
async def config(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    issuer = settings.browser_issuer
    return JSONResponse(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "revocation_endpoint": f"{issuer}/revoke",
            "client_id": WEB_CLIENT,
            "redirect_uri": settings.redirect_uri,
            "scope": SCOPES,
            "api": "/api",
        },
        headers={"Cache-Control": "no-store"},
    )
