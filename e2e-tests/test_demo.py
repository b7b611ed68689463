"""`hopshop demo` on the local stack: the hop-by-hop picture shows one token per hop."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from e2e_support import System


def hop_rows(output: str) -> list[list[str]]:
    """The numbered rows of the hop table, split into columns (two or more spaces apart)."""
    return [
        re.split(r"\s{2,}", line.strip())
        for line in output.splitlines()
        if re.match(r"^\d+\s{2,}", line)
    ]


def find(rows: list[list[str]], **expected: str) -> list[str]:
    columns = ("number", "service", "request", "aud", "scope", "client_id", "sub", "act")
    for row in rows:
        cells = dict(zip(columns, row, strict=False))
        if all(
            cells.get(name, "").startswith(value) if name == "request" else cells.get(name) == value
            for name, value in expected.items()
        ):
            return row
    raise AssertionError(f"no hop with {expected} in:\n" + "\n".join(map(" | ".join, rows)))


def test_demo_prints_the_token_of_every_hop(system: System) -> None:
    if "state_dir" not in system.env:
        pytest.skip(
            "hopshop demo reads the logs of a local stack (not --base-url / --stack compose)"
        )
    result = subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [sys.executable, "-m", "hopshop_stack", "demo", "--state-dir", system.env["state_dir"]],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout
    assert result.returncode == 0, f"{output}\n{result.stderr}"
    assert "eyJ" not in output  # claims only, never a token string

    rows = hop_rows(output)
    # The user's own token, at the edge.
    gateway = find(rows, service="gateway", request="POST /api/orders", aud="gateway")
    assert gateway[5] == "web" and gateway[7] == "-"
    # Exchanged by the gateway for order ...
    find(rows, service="order", request="POST ", aud="order", client_id="gateway", act="gateway")
    # ... and by order for inventory, the whole chain in act.
    inventory = find(rows, service="inventory", aud="inventory", act="order ← gateway")
    assert inventory[4] == "inventory:reserve"
    assert inventory[5] == "order"
    # billing's worker, after order.placed over Kafka: its own client-credentials token.
    worker = find(
        rows, service="order", request="GET /internal/orders/", client_id="billing-worker"
    )
    assert worker[6] == "billing-worker"  # sub = client_id: no user
    assert worker[7] == "-"
