"""Health, readiness, settings, the OpenAPI document, request ids and the audit log line."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from hopkit.testing import ServerThread, ValkeyServer, wait_until
from notification_service.app import create_app
from notification_service.config import Settings
from notification_testing import bearer, captured_logs, make_settings
from pydantic import ValidationError


def test_healthz_and_readyz(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "kafka": "ok"},
    }


def test_readyz_reports_an_unreachable_broker_and_the_api_still_answers(
    tmp_path: Path, issuer: str, gateway: str
) -> None:
    dead_kafka = "127.0.0.1:9"  # discard port: nothing answers
    settings = make_settings(tmp_path, issuer, dead_kafka)
    with (
        ServerThread(create_app(settings)) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "ok", "kafka": "unreachable"}
        posted = client.post("/broadcasts", json={"message": "hi"}, headers=bearer(gateway))
        assert posted.status_code == 201, posted.text


def test_the_worker_can_be_turned_off(tmp_path: Path, issuer: str, valkey: ValkeyServer) -> None:
    settings = make_settings(tmp_path, issuer, None, redis_url=valkey.url)
    assert settings.worker_enabled is False
    with (
        ServerThread(create_app(settings)) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        assert server.app.state.worker is None  # type: ignore[attr-defined]
        assert client.get("/readyz").json()["checks"] == {"database": "ok", "redis": "ok"}


def test_openapi_documents_bearer_auth_on_both_routes(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, method in (("/notifications", "get"), ("/broadcasts", "post")):
        operation = spec["paths"][path][method]
        assert operation["security"] == [{"HTTPBearer": []}], path
        assert {"401", "403", "422"} <= set(operation["responses"]), path
    assert "/readyz" not in spec["paths"]
    docs = http.get("/docs")
    assert docs.status_code == 200
    # Offline workshops: Swagger UI comes from the service itself, never a CDN.
    assert "cdn." not in docs.text and "://" not in docs.text
    assert http.get("/docs/assets/swagger-ui-bundle.js").status_code == 200


def test_request_id_is_echoed(http: httpx.Client) -> None:
    response = http.get("/healthz", headers={"x-request-id": "req-42"})
    assert response.headers["x-request-id"] == "req-42"


def test_the_log_says_who_broadcast_and_never_holds_the_token(
    http: httpx.Client, gateway: str
) -> None:
    with captured_logs() as logs:
        response = http.post(
            "/broadcasts",
            json={"message": "Logged broadcast."},
            headers={**bearer(gateway), "x-request-id": "req-bc-1"},
        )
        # The request line is written once the response has gone out, so it can
        # trail the response on a busy machine.
        wait_until(lambda: "req-bc-1" in logs.getvalue(), 5.0, "the request's log line")
    assert response.status_code == 201, response.text
    text = logs.getvalue()
    assert gateway not in text and "eyJ" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    [line] = [entry for entry in lines if entry.get("request_id") == "req-bc-1"]
    assert line["action"] == "broadcast"
    assert line["status"] == 201
    assert line["sub"] == line["client_id"] == "gateway"
    assert line["act"] == []
    assert line["jti"]
    assert line["notification_id"] == response.json()["id"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings tests start from no configuration, whatever the shell has set."""
    import os

    for name in list(os.environ):
        if name.startswith(("HOPSHOP_", "NOTIFICATION_")):
            monkeypatch.delenv(name)


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFICATION_DATABASE_URL", "postgresql://u:p@db/notification")
    monkeypatch.setenv("HOPSHOP_ISSUER", "https://auth.example")
    monkeypatch.setenv("HOPSHOP_KAFKA_BOOTSTRAP", "kafka:9092")
    monkeypatch.setenv("NOTIFICATION_WORKER_CLIENT_SECRET", "from-the-vault")
    settings = Settings()
    assert settings.database_url == "postgresql://u:p@db/notification"
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.worker_enabled is True
    assert settings.worker_client_secret.get_secret_value() == "from-the-vault"
    assert "from-the-vault" not in repr(settings)
    assert settings.auth_base_url == "https://auth.example"  # the issuer, by default
    monkeypatch.setenv("HOPSHOP_AUTH_URL", "http://auth:8001/")
    assert Settings().auth_base_url == "http://auth:8001"


def test_the_worker_needs_a_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="HOPSHOP_KAFKA_BOOTSTRAP"):
        Settings()
    monkeypatch.setenv("NOTIFICATION_WORKER_ENABLED", "false")
    assert Settings().worker_enabled is False


def test_production_refuses_the_demo_secret_and_errors_never_quote_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOPSHOP_ENV", "production")
    monkeypatch.setenv("HOPSHOP_KAFKA_BOOTSTRAP", "kafka:9092")
    with pytest.raises(ValidationError, match="demo secret"):
        Settings()
    # Any start-up error leaves the environment's values out of its message.
    monkeypatch.setenv("NOTIFICATION_CONSUMER_BACKOFF_FIRST", "60")
    monkeypatch.setenv("NOTIFICATION_WORKER_CLIENT_SECRET", "the-real-one")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert "BACKOFF" in str(caught.value)
    assert "the-real-one" not in str(caught.value)
    assert "input_value" not in str(caught.value)
    monkeypatch.delenv("NOTIFICATION_CONSUMER_BACKOFF_FIRST")
    assert Settings().is_production
