"""/docs works offline: the Swagger UI page and every file it loads come from the app itself."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hopkit.docs import install_docs

#: Where the page loads a script, a stylesheet or an icon from.
REFERENCE = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)\"""")


def app(**kwargs: Any) -> FastAPI:
    application = FastAPI(title="docs test", docs_url=None, redoc_url=None, **kwargs)

    @application.get("/things")
    async def things() -> list[str]:
        return []

    install_docs(application)
    return application


def client(application: FastAPI, root_path: str = "") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=application, root_path=root_path)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_the_page_and_everything_it_loads_are_local() -> None:
    async with client(app()) as http:
        page = await http.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        html = page.text
        assert "cdn." not in html
        assert "'/openapi.json'" in html
        references = REFERENCE.findall(html)
        assert len(references) == 3, references  # the script, the stylesheet, the icon
        for url in references:
            assert url.startswith("/docs/assets/"), url
            asset = await http.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 500, url
        kinds = {
            url.rsplit(".", 1)[1]: (await http.get(url)).headers["content-type"]
            for url in references
        }
        assert "javascript" in kinds["js"]
        assert kinds["css"].startswith("text/css")
        assert kinds["png"] == "image/png"


async def test_the_bundle_is_swagger_ui_5_which_renders_openapi_3_1() -> None:
    async with client(app()) as http:
        bundle = (await http.get("/docs/assets/swagger-ui-bundle.js")).text
        assert (await http.get("/openapi.json")).json()["openapi"].startswith("3.1")
    # Swagger UI 4 ("Unable to render this definition" for 3.1) has no OAS31 plugin.
    assert "SwaggerUIBundle" in bundle
    assert "OAS31" in bundle


async def test_the_docs_are_not_in_the_openapi_document() -> None:
    async with client(app()) as http:
        paths = (await http.get("/openapi.json")).json()["paths"]
        assert list(paths) == ["/things"]
        assert (await http.get("/redoc")).status_code == 404


async def test_the_apps_swagger_settings_are_kept() -> None:
    application = app(
        swagger_ui_parameters={"defaultModelsExpandDepth": -1},
        swagger_ui_init_oauth={"clientId": "docs-client"},
    )
    async with client(application) as http:
        html = (await http.get("/docs")).text
        assert "<title>docs test - Swagger UI</title>" in html
        assert '"defaultModelsExpandDepth": -1' in html
        assert '"clientId": "docs-client"' in html
        assert "oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect'" in html
        redirect = await http.get("/docs/oauth2-redirect")
        assert redirect.status_code == 200
        assert "oauth2" in redirect.text


async def test_behind_a_path_prefix_the_page_points_under_it() -> None:
    async with client(app(), root_path="/shop") as http:
        html = (await http.get("/docs")).text
    assert "'/shop/openapi.json'" in html
    assert all(url.startswith("/shop/docs/assets/") for url in REFERENCE.findall(html))


def test_an_app_that_kept_fastapis_own_page_is_refused() -> None:
    with pytest.raises(ValueError, match="docs_url=None"):
        install_docs(FastAPI())
