"""Operations: the API docs page works with no internet (offline workshops)."""

from __future__ import annotations

import httpx


def test_docs_page_loads_swagger_ui_from_the_service(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    assert "/docs" not in spec["paths"]
    docs = http.get("/docs")
    assert docs.status_code == 200
    assert "'/openapi.json'" in docs.text
    # Offline workshops: Swagger UI comes from the service itself, never a CDN.
    assert "cdn." not in docs.text and "://" not in docs.text
    assert http.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
