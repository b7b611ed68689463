"""The demo web UI: one static page (plus its script and styles) and its configuration.

The page is a public OAuth client (``web``): it logs in with authorization code
+ PKCE S256 at the issuer, redeems the code itself (cross-origin, so the issuer
allows this origin by CORS) and keeps the token in memory only. ``/callback``
is the same page: the registered redirect URI. Its settings come from
``/config.json``, so one build serves any deployment.

A page asked for at another loopback name than the public URL's
(``localhost`` for ``127.0.0.1``) is redirected there (``_at_public_url``).
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from .config import WEB_CLIENT, Settings

router = APIRouter(include_in_schema=False)

#: Scopes the page asks for; the issuer grants support:read and support:broadcast only to
#: support staff, and what a customer asked for beyond their own is simply not granted.
SCOPES = "orders:read orders:write billing:read notifications:read support:read support:broadcast"

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


_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def _host_port(netloc: str, default_port: int) -> tuple[str, int] | None:
    """``(host, port)`` of a Host value (RFC 9110 §7.2), host lower-cased; None if malformed.

    A Host without a port means ``default_port``: the public URL scheme's.
    """
    try:
        parts = urlsplit(f"//{netloc}")
        port = parts.port
    except ValueError:  # a bad port, an unclosed IPv6 bracket
        return None
    if not parts.hostname or "@" in parts.netloc or parts.path or parts.query or parts.fragment:
        return None
    return parts.hostname, port or default_port


def _at_public_url(request: Request) -> Response | None:
    """A 307 to this page at the public URL when it was asked for at another loopback name.

    Why: the page keeps the PKCE verifier and ``state`` in ``sessionStorage``
    (per origin), and the issuer sends the browser back to the public URL's
    ``/callback`` only (exact match), so a login started at ``localhost:8000``
    would land at ``127.0.0.1:8000`` with nothing stored. Only another spelling
    of loopback on the same port is redirected: any other Host may be a reverse
    proxy that rewrites it, where a redirect would loop. The target is the
    configured URL, never the Host (no open redirect). 307, not 308: browsers
    keep a permanent redirect after ``GATEWAY_PUBLIC_URL`` changes.
    """
    settings: Settings = request.app.state.settings
    public = urlsplit(settings.public_url)
    default_port = _DEFAULT_PORTS.get(public.scheme.lower(), 80)
    expected = _host_port(public.netloc, default_port)
    asked = _host_port(request.headers.get("host", ""), default_port)
    if expected is None or asked is None or asked == expected:
        return None
    if asked[1] != expected[1] or not {asked[0], expected[0]} <= _LOOPBACK_NAMES:
        return None
    # From the scope, not request.url: that is built from the Host header.
    target = settings.public_url.rstrip("/") + request.scope["path"]
    query = request.scope["query_string"].decode("latin-1")
    return RedirectResponse(
        f"{target}?{query}" if query else target,
        status_code=307,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _page(request: Request) -> Response:
    return _at_public_url(request) or _serve(request, "index.html")


@router.get("/")
async def index(request: Request) -> Response:
    return _page(request)


@router.get("/callback")
async def callback(request: Request) -> Response:
    return _page(request)


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
