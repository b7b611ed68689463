"""docker-compose.yml, checked without Docker: it must start what `hopshop up` starts, the same way.

No Docker engine runs on the development and CI machines, so this reads the
file: every service of the registry is there, built from its Dockerfile, on
its port, healthy only when ready, started after what it needs, and given
every setting its Settings class requires (each class is built from the
compose environment, exactly as the container would build it).
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from auth_service.config import Settings as AuthSettings
from auth_service.policy import load_policy
from auth_service.redirect_uris import add_redirect_uris
from hopkit.events import ALL_TOPICS
from hopshop_stack.components import SERVICES, TOPICS, Service

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
INFRA = {"valkey", "kafka", "kafka-topics", "postgres"}
SERVICE_IDS = [service.name for service in SERVICES]


def entry(service: Service) -> dict[str, Any]:
    found: dict[str, Any] = COMPOSE["services"][service.name]
    return found


def interpolate(value: str) -> str:
    """Compose's ``${NAME:-default}`` with nothing set in the environment, and ``$$``."""
    value = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)
    return value.replace("$$", "$")


def environment(service: Service) -> dict[str, str]:
    raw = entry(service).get("environment", {})
    return {key: interpolate(str(value)) for key, value in raw.items()}


def as_in_the_container(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the compose environment for ``service``: ours would leak into its Settings."""
    for key in list(os.environ):
        if key.startswith(("HOPSHOP_", service.env_prefix)):
            monkeypatch.delenv(key)
    for key, value in environment(service).items():
        monkeypatch.setenv(key, value)


def test_every_component_of_the_stack_is_in_compose() -> None:
    assert set(COMPOSE["services"]) == INFRA | set(SERVICE_IDS)


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_built_from_its_dockerfile_on_its_port(service: Service) -> None:
    build = entry(service)["build"]
    dockerfile = ROOT / build["dockerfile"]
    assert build["context"] == "."
    assert dockerfile == ROOT / "services" / service.name / "Dockerfile"
    text = dockerfile.read_text()
    assert f'--factory", "{service.factory}"' in text
    assert f'"--port", "{service.port}"' in text
    assert f"EXPOSE {service.port}" in text
    assert re.search(r"^USER (?!root)\w+", text, re.MULTILINE), "containers run as non-root"
    assert entry(service)["ports"] == [f"{service.port}:{service.port}"]


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_healthy_means_ready(service: Service) -> None:
    check = " ".join(entry(service)["healthcheck"]["test"])
    assert f"http://127.0.0.1:{service.port}{service.ready_path}" in check


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_started_after_what_it_needs(service: Service) -> None:
    depends = entry(service).get("depends_on", {})
    assert depends["valkey"]["condition"] == "service_healthy"
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["kafka-topics"]["condition"] == "service_completed_successfully"
    if service.name != "auth":
        assert depends["auth"]["condition"] == "service_healthy"
    for name, condition in depends.items():
        assert name in COMPOSE["services"], f"{service.name} waits for unknown {name}"
        assert condition["condition"] in ("service_healthy", "service_completed_successfully")


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_same_settings_names_as_the_local_stack(service: Service) -> None:
    env = environment(service)
    assert env["HOPSHOP_ISSUER"] == "http://auth:8001"
    assert env["HOPSHOP_REDIS_URL"].startswith("redis://valkey:")
    assert env["HOPSHOP_KAFKA_BOOTSTRAP"] == "kafka:9092"
    if service.database_env:
        url = urlsplit(env[service.database_env])
        assert url.scheme == "postgresql" and url.hostname == "postgres"
        assert url.path == f"/{service.name}"
    for key, value in env.items():
        if key.startswith("HOPSHOP_") and key.endswith("_URL") and "://" in value:
            host = urlsplit(value).hostname
            assert host in COMPOSE["services"] or key == "HOPSHOP_REDIS_URL", (key, value)


def by_name(name: str) -> Service:
    return next(service for service in SERVICES if service.name == name)


def published_port(name: str) -> int:
    [mapping] = COMPOSE["services"][name]["ports"]
    return int(str(mapping).split(":")[0])


def test_the_browser_logs_in_through_the_published_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    # The web UI sends the browser to GATEWAY_PUBLIC_ISSUER with GATEWAY_PUBLIC_URL's
    # /callback, then redeems the code from that origin: the issuer must have the
    # callback registered (exact match) and allow the origin (CORS).
    gateway = environment(by_name("gateway"))
    public_url = urlsplit(gateway["GATEWAY_PUBLIC_URL"])
    public_issuer = urlsplit(gateway["GATEWAY_PUBLIC_ISSUER"])
    assert public_url.port == published_port("gateway")
    assert public_issuer.port == published_port("auth")
    assert public_url.hostname == public_issuer.hostname  # one browser, one host name

    as_in_the_container(by_name("auth"), monkeypatch)
    auth = AuthSettings()
    policy = add_redirect_uris(load_policy(auth.policy_file), auth.extra_redirect_uris)
    web = policy.clients["web"]
    origin = f"{public_url.scheme}://{public_url.netloc}"
    assert f"{origin}/callback" in web.redirect_uris
    assert origin in auth.cors_origins


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_dpop_proofs_may_name_the_service_as_its_callers_reach_it(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A caller's proof names the URL it called (RFC 9449 §4.3 point 9): in this
    # network, HOPSHOP_<NAME>_URL; from the host, the published port. The service
    # compares with its configured origins, never with the Host header.
    as_in_the_container(service, monkeypatch)
    config = importlib.import_module(f"{service.module.rpartition('.')[0]}.config")
    origins = set(config.Settings().origins)
    in_network = environment(service)[service.url_env]
    assert in_network == f"http://{service.name}:{service.port}"
    assert in_network in origins
    if service.name in ("auth", "gateway"):  # what the browser and host-side clients call
        assert f"http://127.0.0.1:{published_port(service.name)}" in origins


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_every_required_setting_is_provided(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_in_the_container(service, monkeypatch)
    config = importlib.import_module(f"{service.module.rpartition('.')[0]}.config")
    settings = config.Settings()
    assert settings.issuer == "http://auth:8001"
    if service.database_env:
        assert settings.database_url.startswith("postgresql://")


def test_one_database_per_service_is_created() -> None:
    init = (ROOT / "deploy" / "postgres-init.sql").read_text()
    for service in SERVICES:
        if service.database:
            assert re.search(rf'CREATE DATABASE "?{service.name}"?;', init), service.name


def test_compose_makes_the_topics_the_local_stack_and_the_services_use() -> None:
    # Three lists of one thing (compose's shell loop, the stack's, hopkit's): a topic
    # missing from one is a consumer that waits forever or a relay that cannot publish.
    command = "\n".join(COMPOSE["services"]["kafka-topics"]["command"])
    loop = re.search(r"for topic in ([^;]+);", command)
    assert loop, command
    made = set(loop.group(1).split())
    assert made | {f"{topic}.dlq" for topic in made} == set(TOPICS)
    assert made == set(ALL_TOPICS)
    assert "payment.refunded" in made
