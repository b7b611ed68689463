"""The vulnerable teaching mode's shared parts: overrides, the header, the warning."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException, Request
from hopkit import forwarding
from hopkit.settings import Propagation
from hopkit.testing import ServerThread

MODE = "x-hopshop-mode"


def strict() -> str:
    """Stands for a secure check that a forwarded token fails."""
    raise HTTPException(403, "caller not allowed")


def lenient() -> str:
    return "weakened"


def make_app(events: list[str]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, str]]:
        events.append("service started")
        yield {"from_lifespan": "kept"}
        events.append("service stopped")

    app = FastAPI(lifespan=lifespan)

    @app.get("/guarded")
    async def guarded(who: Annotated[str, Depends(strict)]) -> dict[str, str]:
        return {"who": who}

    @app.get("/from-lifespan")
    async def from_lifespan(request: Request) -> dict[str, str]:
        return {"value": request.state.from_lifespan}

    @app.get("/open")
    async def open_route() -> dict[str, str]:
        return {"status": "ok"}

    return app


@contextmanager
def serving(app: FastAPI) -> Iterator[httpx.Client]:
    """The app under uvicorn (lifespan and all) for the duration of the block."""
    server = ServerThread(app).start()
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            yield client
    finally:
        server.stop()


@pytest.fixture
def events(caplog: pytest.LogCaptureFixture) -> list[str]:
    caplog.set_level(logging.WARNING, logger="hopkit.forwarding")
    return []


def test_forward_mode_weakens_stamps_and_warns(
    events: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(events)
    assert forwarding.install(app, Propagation.FORWARD, service="demo", weakened={strict: lenient})
    assert not caplog.records  # not yet: the warning comes with start-up
    with serving(app) as client:
        warnings = [r for r in caplog.records if r.name == "hopkit.forwarding"]
        assert len(warnings) == 1
        assert warnings[0].levelno == logging.WARNING
        message = warnings[0].getMessage()
        assert "VULNERABLE" in message and "HOPSHOP_PROPAGATION=forward" in message
        assert "demo" in message
        assert events == ["service started"]  # after the service's own start-up

        weakened = client.get("/guarded")
        assert weakened.status_code == 200
        assert weakened.json() == {"who": "weakened"}
        for response in (weakened, client.get("/open"), client.get("/nowhere")):
            assert response.headers[MODE] == "vulnerable-forwarding"
    assert events == ["service started", "service stopped"]


def test_exchange_mode_changes_nothing(events: list[str], caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(events)
    assert not forwarding.install(
        app, Propagation.EXCHANGE, service="demo", weakened={strict: lenient}
    )
    assert app.dependency_overrides == {}
    with serving(app) as client:
        refused = client.get("/guarded")
        assert refused.status_code == 403
        assert MODE not in refused.headers
        assert MODE not in client.get("/open").headers
    assert not [r for r in caplog.records if r.name == "hopkit.forwarding"]


def test_the_lifespan_state_survives_the_wrapper(events: list[str]) -> None:
    app = make_app(events)
    forwarding.install(app, Propagation.FORWARD, service="demo", weakened={})
    with serving(app) as client:
        assert client.get("/from-lifespan").json() == {"value": "kept"}


def test_every_audience_of_the_system_only_when_forwarding() -> None:
    assert forwarding.extra_audiences(Propagation.EXCHANGE) == ()
    assert set(forwarding.extra_audiences(Propagation.FORWARD)) == {
        "gateway",
        "order",
        "inventory",
        "billing",
        "notification",
        "auth",
    }


def test_the_warning_names_the_service() -> None:
    assert "inventory accepts any token" in forwarding.warning("inventory")
