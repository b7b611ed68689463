"""``/docs``: FastAPI's Swagger UI page, with Swagger UI served from the installed package.

Why: FastAPI's own ``/docs`` loads Swagger UI's script and styles from a CDN,
so at an offline workshop the page is blank. Here the same page
(``get_swagger_ui_html``, with the app's title, ``swagger_ui_parameters`` and
``swagger_ui_init_oauth``) points at Swagger UI's dist files shipped in the
``swagger-ui-bundle-v2`` wheel (Swagger UI 5: it renders the OpenAPI 3.1
documents FastAPI emits), mounted under ``/docs/assets``. ReDoc is a CDN
script too: the services turn it off (``redoc_url=None``).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse
from swagger_ui_bundle import swagger_ui_path

__all__ = ["install_docs"]

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"


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
    # check_dir (the default) fails here, at start-up, if the package lost its files.
    app.mount(ASSETS_URL, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    async def swagger_ui_html(request: Request) -> HTMLResponse:
        # Relative to root_path, as FastAPI does, so the page works behind a path prefix.
        root = request.scope.get("root_path", "").rstrip("/")
        redirect = app.swagger_ui_oauth2_redirect_url
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon-32x32.png",
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
