"""The system under test: a local stack started with `hopshop up -d`, or one given by URL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from e2e_support import System, free_port

COMPONENTS = ("valkey", "kafka", "auth", "inventory", "order", "billing", "notification", "gateway")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hopshop e2e")
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

    state = tmp_path_factory.mktemp("stack")
    ports = {name: free_port() for name in COMPONENTS}
    env = {
        **os.environ,
        **{f"HOPSHOP_PORT_{name.upper()}": str(port) for name, port in ports.items()},
        # Short enough for the expiry test, long enough for a payment round trip.
        "ORDER_PAYMENT_TIMEOUT": "6",
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


@pytest.fixture(scope="session")
def gateway(system: System) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=system.gateway, timeout=15) as client:
        yield client
