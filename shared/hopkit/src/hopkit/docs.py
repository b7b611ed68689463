"""``/docs``: FastAPI's Swagger UI page, with Swagger UI served from the installed package.

Why: FastAPI's own ``/docs`` loads Swagger UI's script and styles from a CDN,
so at an offline workshop the page is blank. Here the same page
(``get_swagger_ui_html``, with the app's title, ``swagger_ui_parameters`` and
``swagger_ui_init_oauth``) points at Swagger UI's dist files shipped in the
``swagger-ui-bundle-v2`` wheel (Swagger UI 5: it renders the OpenAPI 3.1
documents FastAPI emits), under ``/docs/assets``. Only the files the page loads
are served there: the wheel's folder also holds source maps, a demo page and
other bundles nobody asked to publish. ReDoc is a CDN script too: the services
turn it off (``redoc_url=None``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse
from swagger_ui_bundle import swagger_ui_path

__all__ = ["install_docs"]

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"

# What the page loads (the OAuth 2 redirect page is inline HTML, it loads nothing).
SCRIPT = "swagger-ui-bundle.js"
STYLESHEET = "swagger-ui.css"
FAVICON = "favicon-32x32.png"
ASSETS = (SCRIPT, STYLESHEET, FAVICON)


class _Listed(StaticFiles):
    """StaticFiles that serves only the named files of its directory; the rest is a 404.

    Keeps StaticFiles' responses (content type, ETag, Last-Modified, 304, ranges).
    The name checked is the path after StaticFiles removed ``.`` and ``..``, so a
    traversal can reach only a listed file.
    """

    def __init__(self, directory: str, names: Iterable[str]) -> None:
        super().__init__(directory=directory)
        self.names = frozenset(names)
        lost = sorted(
            name for name in self.names if not os.path.isfile(os.path.join(directory, name))
        )
        if lost:
            raise RuntimeError(f"Swagger UI files missing from {directory}: {', '.join(lost)}")

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        if path not in self.names:
            return "", None
        return super().lookup_path(path)


def install_docs(app: FastAPI) -> None:
    """Serve the Swagger UI page at ``/docs`` from local files; ``app`` has ``docs_url=None``.

    Kept out of the OpenAPI document, like FastAPI's own page. Also serves
    ``app.swagger_ui_oauth2_redirect_url`` (FastAPI installs it only with its own
    ``/docs``), so Swagger UI's OAuth 2 "Authorize" flow keeps working.
    """
    if app.docs_url is not None:
        # FastAPI's own (CDN) page would answer first, and nobody notices until offline.
        raise ValueError("build the app with docs_url=None: install_docs serves /docs")
    if app.openapi_url is None:
        return
    openapi_url = app.openapi_url
    # Fails here, at start-up, if the package lost its files.
    app.mount(ASSETS_URL, _Listed(str(swagger_ui_path), ASSETS), name="docs-assets")

    async def swagger_ui_html(request: Request) -> HTMLResponse:
        # Relative to root_path, as FastAPI does, so the page works behind a path prefix.
        root = request.scope.get("root_path", "").rstrip("/")
        redirect = app.swagger_ui_oauth2_redirect_url
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/{SCRIPT}",
            swagger_css_url=f"{root}{ASSETS_URL}/{STYLESHEET}",
            swagger_favicon_url=f"{root}{ASSETS_URL}/{FAVICON}",
            oauth2_redirect_url=root + redirect if redirect else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    app.add_route(DOCS_URL, swagger_ui_html, include_in_schema=False)
    if app.swagger_ui_oauth2_redirect_url:

        async def swagger_ui_redirect(request: Request) -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()

        app.add_route(
            app.swagger_ui_oauth2_redirect_url, swagger_ui_redirect, include_in_schema=False
        )
