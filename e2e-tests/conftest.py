"""The system under test: the local stack (`hopshop up -d`), docker-compose.yml, or a URL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

from e2e_support import System, free_ports  # noqa: E402 - needs the path above

COMPONENTS = ("valkey", "kafka", "auth", "inventory", "order", "billing", "notification", "gateway")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hopshop e2e")
    group.addoption(
        "--stack",
        choices=("local", "compose"),
        default="local",
        help="start the local stack (`hopshop up -d`, default) or docker-compose.yml "
        "(needs a Docker engine; testcontainers' DockerCompose)",
    )
    group.addoption("--base-url", help="the gateway of a running stack (default: start one)")
    group.addoption("--auth-url", help="the auth service of that stack")
    group.addoption("--kafka", help="its Kafka bootstrap address, for the event tests")


def _stack(
    args: list[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [sys.executable, "-m", "hopshop_stack", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    base_url = request.config.getoption("--base-url")
    if base_url:
        auth = request.config.getoption("--auth-url") or "http://127.0.0.1:8001"
        yield System(base_url, auth, request.config.getoption("--kafka"), {})
        return

    if request.config.getoption("--stack") == "compose":
        yield from _compose_system()
        return

    state = tmp_path_factory.mktemp("stack")
    ports = free_ports(COMPONENTS)
    env = {
        **os.environ,
        **{f"HOPSHOP_PORT_{name.upper()}": str(port) for name, port in ports.items()},
        # Short enough for the expiry test, long enough for a payment round trip even
        # while a consumer group is still being joined (Tansu holds a joiner ~5 s).
        "ORDER_PAYMENT_TIMEOUT": "12",
        "ORDER_EXPIRY_INTERVAL": "1",
        # The rate-limit test sends a burst; everyone else stays well below it.
        "GATEWAY_RATE_LIMIT": "30",
    }
    up = _stack(["up", "-d", "--state-dir", str(state), "--timeout", "90"], env, 300)
    if up.returncode != 0:
        pytest.fail(f"hopshop up failed:\n{up.stdout}\n{up.stderr}", pytrace=False)
    try:
        yield System(
            gateway=f"http://127.0.0.1:{ports['gateway']}",
            auth=f"http://127.0.0.1:{ports['auth']}",
            kafka=f"127.0.0.1:{ports['kafka']}",
            env={"state_dir": str(state)},
        )
    finally:
        _stack(["down", "--state-dir", str(state)], env, 120)


def _compose_system() -> Iterator[System]:
    """docker-compose.yml through testcontainers, with the same short timeouts as locally."""
    from testcontainers.compose import DockerCompose  # only this mode needs Docker

    os.environ.setdefault("ORDER_PAYMENT_TIMEOUT", "12")
    os.environ.setdefault("ORDER_EXPIRY_INTERVAL", "1")
    os.environ.setdefault("GATEWAY_RATE_LIMIT", "30")
    compose = DockerCompose(ROOT, compose_file_name="docker-compose.yml", build=True, wait=True)
    compose.start()
    try:

        def address(name: str, port: int) -> str:
            host = compose.get_service_host(name, port)
            # The browser's URLs in docker-compose.yml say 127.0.0.1 (the registered callback).
            host = "127.0.0.1" if host in ("localhost", "0.0.0.0") else host  # noqa: S104
            return f"{host}:{compose.get_service_port(name, port)}"

        gateway, auth = address("gateway", 8000), address("auth", 8001)
        # Kafka advertises its in-network name, so the event tests have no broker from here.
        yield System(f"http://{gateway}", f"http://{auth}", None, {})
    finally:
        compose.stop()


@pytest.fixture(scope="session")
def gateway(system: System) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=system.gateway, timeout=15) as client:
        yield client
