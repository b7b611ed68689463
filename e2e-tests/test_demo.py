"""`hopshop demo` on the local stack: the hop-by-hop picture shows one token per hop."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from e2e_support import System


def hop_rows(output: str) -> list[dict[str, str]]:
    """Each hop of the table: its numbered row's columns (two or more spaces apart), then
    sub, act and scope from the indented ``sub X · act Y · scope Z`` line(s) under it."""
    lines = output.splitlines()
    columns = ("number", "service", "request", "status", "aud", "client_id")
    rows = []
    for i, line in enumerate(lines):
        if not re.match(r"^\d+\s{2,}", line):
            continue
        cells = dict(zip(columns, re.split(r"\s{2,}", line.strip()), strict=False))
        claims = next(j for j in range(i + 1, len(lines)) if lines[j].lstrip().startswith("sub "))
        explained = next(j for j in range(claims, len(lines)) if lines[j].lstrip().startswith("↳"))
        for part in " ".join(line.strip() for line in lines[claims:explained]).split(" · "):
            name, _, value = part.partition(" ")
            cells[name] = value
        rows.append(cells)
    return rows


def find(rows: list[dict[str, str]], **expected: str) -> dict[str, str]:
    for cells in rows:
        if all(
            cells.get(name, "").startswith(value) if name == "request" else cells.get(name) == value
            for name, value in expected.items()
        ):
            return cells
    raise AssertionError(f"no hop with {expected} in:\n" + "\n".join(map(str, rows)))


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
    assert [line for line in output.splitlines() if len(line) > 100] == []  # fits a projector

    rows = hop_rows(output)
    # The user's own token, at the edge.
    gateway = find(rows, service="gateway", request="POST /api/orders", aud="gateway")
    assert gateway["client_id"] == "web" and gateway["act"] == "-"
    # Exchanged by the gateway for order ...
    find(rows, service="order", request="POST ", aud="order", client_id="gateway", act="gateway")
    # ... and by order for inventory, the whole chain in act.
    inventory = find(rows, service="inventory", aud="inventory", act="order ← gateway")
    assert inventory["scope"] == "inventory:reserve"
    assert inventory["client_id"] == "order"
    # billing's worker, after order.placed over Kafka: its own client-credentials token.
    worker = find(
        rows, service="order", request="GET /internal/orders/", client_id="billing-worker"
    )
    assert worker["sub"] == "billing-worker"  # sub = client_id: no user
    assert worker["act"] == "-"

    # The command the demo ends with prints that trace from every service (order: unit-tested).
    command = re.search(r"hopshop logs --trace ([0-9a-f]{32})", output)
    assert command is not None, output
    state_dir, trace = system.env["state_dir"], command.group(1)
    traced = subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [sys.executable, "-m", "hopshop_stack", "logs", "--state-dir", state_dir, "--trace", trace],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert traced.returncode == 0, traced.stderr
    services = [line.split(" | ")[0].strip() for line in traced.stdout.splitlines()]
    assert {"gateway", "order", "inventory", "billing"} <= set(services), traced.stdout
    # Both exchanges at auth (gateway's for order, order's for inventory) are in the trace.
    for audience in ("order", "inventory"):
        assert f"auth         |   issued: aud {audience} · " in traced.stdout, traced.stdout
    assert [line for line in traced.stdout.splitlines() if len(line) > 100] == []
    assert "eyJ" not in traced.stdout
