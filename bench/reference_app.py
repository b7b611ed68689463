"""A bare FastAPI app: the floor that ``bench_auth.py`` compares the auth service against.

``POST /token`` reads a urlencoded form with ``await request.form()`` and returns a small JSON
dict, so it pays for what every FastAPI form endpoint pays (routing, form parsing, JSON
rendering) and nothing else: no OAuth, no crypto, no database, no logging middleware.

    uv run python -m uvicorn --factory reference_app:create_app --app-dir bench --port 8002
"""

from __future__ import annotations

from fastapi import FastAPI, Request


def create_app() -> FastAPI:
    app = FastAPI(title="bench reference", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/token")
    async def token(request: Request) -> dict[str, str]:
        form = await request.form()
        grant_type = form.get("grant_type")
        return {
            "access_token": "reference",
            "token_type": "Bearer",
            "grant_type": grant_type if isinstance(grant_type, str) else "",
        }

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    return app
