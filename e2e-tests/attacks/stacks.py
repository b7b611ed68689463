"""The stack an attack runs against: its mode, where each part answers, and the harness' clients.

A :class:`Target` is one running stack in one mode. Its HTTP clients are the
only way the suite talks to it, so every request and response passes through
:class:`~leaks.Traffic` (for the leakage scan at the end) and waits out the
gateway's per-user rate limit instead of failing on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
from leaks import Traffic

Mode = Literal["secure", "vulnerable"]
MODES: tuple[Mode, ...] = ("secure", "vulnerable")

#: Every HTTP response of a stack in forward mode carries this header (hopkit/gateway forwarding).
MODE_HEADER = "x-hopshop-mode"
VULNERABLE_MARK = "vulnerable-forwarding"

INTERNAL_SERVICES = ("order", "inventory", "billing", "notification")
COMPONENTS = ("valkey", "kafka", "auth", *INTERNAL_SERVICES, "gateway")


class RateLimitRetry(httpx.HTTPTransport):
    """Waits out a 429 (``Retry-After``) and sends again: the gateway limits requests per user,
    and an attack must be judged on the check under test, not on the rate limit."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for _ in range(10):
            response = super().handle_request(request)
            if response.status_code != 429:
                return response
            response.read()
            response.close()
            time.sleep(min(float(response.headers.get("retry-after", "1") or 1), 2.0))
        return super().handle_request(request)


@dataclass
class Target:
    """One running stack and the mode it runs in."""

    mode: Mode
    gateway: str
    auth: str
    kafka: str | None
    services: dict[str, str]  # internal services' base URLs, by name
    state_dir: Path | None  # logs (and the issuer's key store) of a local stack
    traffic: Traffic = field(default_factory=Traffic)
    _clients: dict[str, httpx.Client] = field(default_factory=dict, repr=False)

    def client(self, base_url: str) -> httpx.Client:
        """A client for ``base_url`` whose traffic the leakage scan sees."""
        if base_url not in self._clients:
            self._clients[base_url] = httpx.Client(
                base_url=base_url,
                timeout=20,
                transport=RateLimitRetry(),
                event_hooks={
                    "request": [self.traffic.on_request],
                    "response": [self.traffic.on_response],
                },
            )
        return self._clients[base_url]

    @property
    def gw(self) -> httpx.Client:
        return self.client(self.gateway)

    @property
    def issuer(self) -> httpx.Client:
        return self.client(self.auth)

    def service(self, name: str) -> httpx.Client:
        """A client for an internal service, which only replay attacks call directly."""
        url = self.services.get(name)
        if url is None:
            raise AssertionError(
                f"the {name} service's URL is unknown: give --state-dir or --service-url {name}=URL"
            )
        return self.client(url)

    def logs(self) -> list[Path]:
        if self.state_dir is None:
            return []
        return sorted((self.state_dir / "logs").glob("*.log"))

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def detect_mode(gateway: str) -> Mode:
    """What the stack says it is: forward mode stamps every response with ``X-Hopshop-Mode``."""
    with httpx.Client(base_url=gateway, timeout=15) as client:
        response = client.get("/api/products")
    return "vulnerable" if response.headers.get(MODE_HEADER) == VULNERABLE_MARK else "secure"


def read_state(state_dir: Path) -> dict[str, str]:
    """Component name -> address, from a `hopshop up` state file (``stack.json``)."""
    path = state_dir / "stack.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AssertionError(f"no running stack in {state_dir} (no stack.json)") from None
    return {str(c["name"]): str(c["address"]) for c in raw.get("components", [])}


def stack_command(args: list[str], env: dict[str, str], timeout: float) -> str:
    """``python -m hopshop_stack ...``; its output, or a failure naming what it said."""
    result = subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [sys.executable, "-m", "hopshop_stack", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"hopshop {args[0]} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def start_local_stack(state_dir: Path, ports: dict[str, int], *, vulnerable: bool) -> None:
    env = {
        **os.environ,
        **{f"HOPSHOP_PORT_{name.upper()}": str(port) for name, port in ports.items()},
        # Long enough that an unpaid order outlives the forged-payment attack on it.
        "ORDER_PAYMENT_TIMEOUT": "30",
        "ORDER_EXPIRY_INTERVAL": "1",
        "GATEWAY_RATE_LIMIT": "30",
    }
    args = ["up", "-d", "--state-dir", str(state_dir), "--timeout", "90"]
    stack_command([*args, "--vulnerable"] if vulnerable else args, env, 300)


def stop_local_stack(state_dir: Path) -> None:
    stack_command(["down", "--state-dir", str(state_dir)], dict(os.environ), 120)
