"""/docs works offline: the Swagger UI page and every file it loads come from the app itself."""

from __future__ import annotations

import http.client
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hopkit.docs import _Listed, install_docs
from hopkit.testing import ServerThread
from swagger_ui_bundle import swagger_ui_path

#: The installed Swagger UI files; the page loads three of them.
FOLDER = Path(swagger_ui_path)
FOLDER_FILES = sorted(path.name for path in FOLDER.iterdir())

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


async def test_each_asset_is_the_packaged_file_with_its_cache_validators() -> None:
    async with client(app()) as http:
        for url in REFERENCE.findall((await http.get("/docs")).text):
            asset = await http.get(url)
            assert asset.content == (FOLDER / url.rsplit("/", 1)[1]).read_bytes(), url
            assert asset.headers["last-modified"], url
            again = await http.get(url, headers={"if-none-match": asset.headers["etag"]})
            assert again.status_code == 304, url


async def test_only_the_files_the_page_loads_are_served() -> None:
    async with client(app()) as http:
        loaded = {
            url.rsplit("/", 1)[1] for url in REFERENCE.findall((await http.get("/docs")).text)
        }
        others = [name for name in FOLDER_FILES if name not in loaded]
        # Source maps and the demo page at least, or this test checks nothing.
        assert {"index.html", "swagger-ui-bundle.js.map"} <= set(others), others
        for name in others:
            assert (await http.get(f"/docs/assets/{name}")).status_code == 404, name
        assert (await http.get("/docs/assets/")).status_code == 404


# httpx removes literal dot segments from a URL; encoded ones reach the app as "..".
TRAVERSALS = [
    f"/docs/assets/%2e%2e/{FOLDER.name}/index.html",
    f"/docs/assets/%2E%2E%2F{FOLDER.name}%2Fswagger-ui.js.map",
    "/docs/assets/%2e%2e/%2e%2e/__init__.py",
    "/docs/assets/..%2f..%2f__init__.py",
    "/docs/assets/%2e%2e/%2e%2e/%2e%2e/swagger_ui_bundle/__init__.py",
]


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_a_path_out_of_the_list_by_dot_segments_is_not_found(path: str) -> None:
    async with client(app()) as http:
        assert (await http.get(path)).status_code == 404


def test_literal_dot_segments_sent_to_a_real_server_are_not_found() -> None:
    # http.client sends the path as written, as a hostile client would.
    paths = [f"/docs/assets/../{FOLDER.name}/index.html", "/docs/assets/../../__init__.py"]
    with ServerThread(app()) as server:
        for path in [*paths, "/docs/assets/swagger-ui.css"]:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read()
            finally:
                connection.close()
            if path in paths:
                assert response.status == 404, path
            else:  # the same server serves a listed file
                assert response.status == 200
                assert body == (FOLDER / "swagger-ui.css").read_bytes()


def test_a_listed_file_missing_from_the_package_fails_at_start_up(tmp_path: Path) -> None:
    (tmp_path / "swagger-ui.css").write_text("body {}")
    with pytest.raises(RuntimeError, match=r"missing .*: favicon-32x32\.png$"):
        _Listed(str(tmp_path), ["swagger-ui.css", "favicon-32x32.png"])
