"""The registry turned into a plan: ports, skipped services, the environment each one gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hopshop_stack.components import (
    SERVICES,
    Options,
    PlanError,
    Service,
    Worker,
    build_plan,
    url_env,
)

AUTH = SERVICES[0]
GATEWAY = next(service for service in SERVICES if service.name == "gateway")
MISSING = Service("nowhere", 8009, "nowhere_service_xyz.app:create_app", "NOWHERE_")
NO_DB = Service("edge", 8010, "hopshop_stack.cli:main", "EDGE_", database=False)


def test_registry_matches_the_design() -> None:
    ports = {service.name: service.port for service in SERVICES}
    assert ports == {
        "gateway": 8000,
        "auth": 8001,
        "order": 8002,
        "inventory": 8003,
        "billing": 8004,
        "notification": 8005,
    }
    assert SERVICES[0].name == "auth", "everyone needs the issuer: auth starts first"


def test_services_get_common_env_database_and_neighbour_urls(tmp_path: Path) -> None:
    options = Options(state_dir=tmp_path, port_offset=100, environ={})
    plan = build_plan(options, services=(AUTH, MISSING, NO_DB))

    assert [c.name for c in plan.components] == ["valkey", "kafka", "auth", "edge"]
    assert plan.skipped == (("nowhere", "nowhere_service_xyz.app is not installed yet"),)
    auth = plan.get("auth")
    assert auth.port == 8101
    assert auth.env["HOPSHOP_ENV"] == "development"
    assert auth.env["HOPSHOP_PROPAGATION"] == "exchange"
    assert auth.env["HOPSHOP_ISSUER"] == "http://127.0.0.1:8101"
    assert auth.env["HOPSHOP_REDIS_URL"] == "redis://127.0.0.1:6479/0"
    assert auth.env["HOPSHOP_KAFKA_BOOTSTRAP"] == "127.0.0.1:9192"
    assert auth.env["AUTH_DATABASE_URL"] == f"sqlite:///{tmp_path.resolve()}/auth.db"
    # Every started service is announced to all; a skipped one is not.
    assert auth.env["HOPSHOP_AUTH_URL"] == "http://127.0.0.1:8101"
    assert auth.env["HOPSHOP_EDGE_URL"] == "http://127.0.0.1:8110"
    assert url_env("nowhere") not in auth.env
    edge = plan.get("edge")
    assert not any(key.endswith("DATABASE_URL") for key in edge.env)
    assert auth.ready_url == "http://127.0.0.1:8101/readyz"
    assert auth.health_url == "http://127.0.0.1:8101/healthz"
    assert auth.argv[1:5] == ("-m", "uvicorn", "--factory", "auth_service.app:create_app")


def test_vulnerable_mode_and_single_port_overrides(tmp_path: Path) -> None:
    environ = {"HOPSHOP_PORT_AUTH": "9901", "HOPSHOP_PORT_VALKEY": "9902"}
    plan = build_plan(
        Options(state_dir=tmp_path, vulnerable=True, environ=environ), services=(AUTH,)
    )
    auth = plan.get("auth")
    assert auth.port == 9901
    assert auth.env["HOPSHOP_PROPAGATION"] == "forward"
    assert auth.env["HOPSHOP_REDIS_URL"] == "redis://127.0.0.1:9902/0"
    assert plan.get("kafka").port == 9092


def test_workers_share_their_service_settings(tmp_path: Path) -> None:
    workers = (
        Worker("edge-worker", "hopshop_stack.cli", service="auth"),
        Worker("orphan-worker", "hopshop_stack.cli", service="nowhere"),
    )
    plan = build_plan(
        Options(state_dir=tmp_path, environ={}), services=(AUTH, MISSING), workers=workers
    )
    worker = plan.get("edge-worker")
    assert worker.kind == "worker" and worker.port is None
    assert worker.argv[1:] == ("-m", "hopshop_stack.cli")
    assert worker.env["AUTH_DATABASE_URL"].endswith("/auth.db")
    assert ("orphan-worker", "its service nowhere is not started") in plan.skipped


@pytest.mark.parametrize(
    ("environ", "only", "message"),
    [
        ({"HOPSHOP_PORT_AUTH": "http"}, None, "HOPSHOP_PORT_AUTH='http' is not a port number"),
        ({"HOPSHOP_PORT_AUTH": "70000"}, None, "out of range"),
        ({"HOPSHOP_PORT_AUTH": "6379"}, None, "valkey and auth are both given port 6379"),
        ({}, frozenset({"shop"}), "unknown service: shop"),
    ],
)
def test_bad_options_are_refused(
    tmp_path: Path, environ: dict[str, str], only: frozenset[str] | None, message: str
) -> None:
    with pytest.raises(PlanError, match=message):
        build_plan(Options(state_dir=tmp_path, environ=environ, only=only), services=(AUTH,))


@pytest.mark.parametrize(
    ("environ", "vulnerable", "passed", "in_effect"),
    [
        ({}, False, "true", True),
        ({"HOPSHOP_DPOP": "false"}, False, "false", False),
        ({"HOPSHOP_DPOP": "True"}, False, "true", True),
        ({}, True, "true", False),  # forward mode: the services leave DPoP off
    ],
)
def test_the_dpop_switch_is_passed_on(
    tmp_path: Path, environ: dict[str, str], vulnerable: bool, passed: str, in_effect: bool
) -> None:
    options = Options(state_dir=tmp_path, vulnerable=vulnerable, environ=environ)
    plan = build_plan(options, services=(AUTH,))
    assert plan.get("auth").env["HOPSHOP_DPOP"] == passed
    assert plan.dpop is in_effect


def test_a_bad_dpop_switch_is_refused(tmp_path: Path) -> None:
    options = Options(state_dir=tmp_path, environ={"HOPSHOP_DPOP": "maybe"})
    with pytest.raises(PlanError, match="HOPSHOP_DPOP"):
        build_plan(options, services=(AUTH,))


def test_a_missing_kafka_broker_binary_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALF_TANSU_BIN", str(tmp_path / "no-tansu-here"))
    with pytest.raises(PlanError, match="no Tansu broker binary for kafka: CALF_TANSU_BIN="):
        build_plan(Options(state_dir=tmp_path, environ={}), services=(AUTH,))


# The web UI's login follows the gateway to its port (RFC 9700 §4.1.1: exact redirect URIs)


def test_a_moved_gateway_is_registered_for_the_web_login(tmp_path: Path) -> None:
    options = Options(state_dir=tmp_path, port_offset=100, environ={})
    plan = build_plan(options, services=(AUTH, GATEWAY))
    gateway, auth = plan.get("gateway"), plan.get("auth")
    assert gateway.port == 8100
    assert gateway.env["GATEWAY_PUBLIC_URL"] == "http://127.0.0.1:8100"
    assert json.loads(auth.env["AUTH_EXTRA_REDIRECT_URIS"]) == {
        "web": ["http://127.0.0.1:8100/callback"]
    }
    # Not localhost too: the callback lands on 127.0.0.1, where the PKCE verifier is not.
    assert json.loads(auth.env["AUTH_CORS_ORIGINS"]) == ["http://127.0.0.1:8100"]
    # Each service gets its own settings only.
    assert "GATEWAY_PUBLIC_URL" not in auth.env
    assert not {"AUTH_EXTRA_REDIRECT_URIS", "AUTH_CORS_ORIGINS"} & set(gateway.env)


def test_a_single_gateway_port_override_is_followed(tmp_path: Path) -> None:
    options = Options(state_dir=tmp_path, environ={"HOPSHOP_PORT_GATEWAY": "9180"})
    plan = build_plan(options, services=(AUTH, GATEWAY))
    assert plan.get("gateway").env["GATEWAY_PUBLIC_URL"] == "http://127.0.0.1:9180"
    assert json.loads(plan.get("auth").env["AUTH_EXTRA_REDIRECT_URIS"]) == {
        "web": ["http://127.0.0.1:9180/callback"]
    }


def test_the_callers_own_web_login_settings_win(tmp_path: Path) -> None:
    environ = {
        "GATEWAY_PUBLIC_URL": "https://shop.example",
        "AUTH_CORS_ORIGINS": '["https://shop.example"]',
    }
    options = Options(state_dir=tmp_path, port_offset=100, environ=environ)
    plan = build_plan(options, services=(AUTH, GATEWAY))
    # Not planned, so the inherited (caller's) value is the one the process sees.
    assert "GATEWAY_PUBLIC_URL" not in plan.get("gateway").env
    assert "AUTH_CORS_ORIGINS" not in plan.get("auth").env
    # The callback registered is the caller's public URL's, not the port's.
    assert json.loads(plan.get("auth").env["AUTH_EXTRA_REDIRECT_URIS"]) == {
        "web": ["https://shop.example/callback"]
    }


def test_the_callback_follows_a_public_url_set_in_lower_case(tmp_path: Path) -> None:
    # Settings read names in any case: the caller's lower-case name must not be overridden.
    environ = {"gateway_public_url": "http://localhost:8100/"}
    plan = build_plan(
        Options(state_dir=tmp_path, port_offset=100, environ=environ), (AUTH, GATEWAY)
    )
    assert not {"GATEWAY_PUBLIC_URL", "gateway_public_url"} & set(plan.get("gateway").env)
    auth = plan.get("auth").env
    assert json.loads(auth["AUTH_EXTRA_REDIRECT_URIS"]) == {
        "web": ["http://localhost:8100/callback"]
    }
    assert json.loads(auth["AUTH_CORS_ORIGINS"]) == ["http://localhost:8100"]


def test_the_callers_extra_redirect_uris_get_the_callback_added(tmp_path: Path) -> None:
    environ = {"AUTH_EXTRA_REDIRECT_URIS": '{"web": ["http://127.0.0.1:9999/cb"], "other": []}'}
    plan = build_plan(
        Options(state_dir=tmp_path, port_offset=100, environ=environ), (AUTH, GATEWAY)
    )
    assert json.loads(plan.get("auth").env["AUTH_EXTRA_REDIRECT_URIS"]) == {
        "web": ["http://127.0.0.1:9999/cb", "http://127.0.0.1:8100/callback"],
        "other": [],
    }


def test_a_malformed_extra_redirect_uris_is_passed_on_for_auth_to_refuse(tmp_path: Path) -> None:
    environ = {"AUTH_EXTRA_REDIRECT_URIS": "not json"}
    plan = build_plan(
        Options(state_dir=tmp_path, port_offset=100, environ=environ), (AUTH, GATEWAY)
    )
    assert plan.get("auth").env["AUTH_EXTRA_REDIRECT_URIS"] == "not json"


def test_without_a_gateway_nothing_is_added_for_the_web_login(tmp_path: Path) -> None:
    options = Options(state_dir=tmp_path, port_offset=100, only=frozenset({"auth"}), environ={})
    plan = build_plan(options, services=(AUTH, GATEWAY))
    assert [c.name for c in plan.components] == ["valkey", "kafka", "auth"]
    assert not {"AUTH_EXTRA_REDIRECT_URIS", "AUTH_CORS_ORIGINS"} & set(plan.get("auth").env)
