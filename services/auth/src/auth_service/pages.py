"""The HTML pages of the authorization endpoint (login form and error page)."""

from __future__ import annotations

from functools import cache
from html import escape
from pathlib import Path
from string import Template

from starlette.responses import HTMLResponse

# The login page is the only page a user types a password into: never framed, never cached.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
}


@cache
def _login_template() -> Template:
    return Template((Path(__file__).parent / "templates" / "login.html").read_text())


def login_page(
    *,
    query: str,
    client_id: str,
    scopes: str,
    username: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    html = _login_template().substitute(
        action=escape(f"/authorize?{query}"),
        client_id=escape(client_id),
        scopes=escape(scopes or "(default scopes)"),
        username=escape(username),
        error=f'<p class="error" role="alert">{escape(error)}</p>' if error else "",
    )
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


def error_page(status_code: int, error: str, description: str | None) -> HTMLResponse:
    body = (
        "<!doctype html><meta charset=utf-8><title>Sign-in error</title>"
        f"<h1>Sign-in error</h1><p><code>{escape(error)}</code></p>"
        f"<p>{escape(description or '')}</p>"
    )
    return HTMLResponse(body, status_code=status_code, headers=PAGE_HEADERS)
