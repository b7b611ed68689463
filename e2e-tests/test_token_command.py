"""`hopshop token` on the local stack: one JWT on stdout, alice's, for the gateway alone."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from e2e_support import System, bearer, login
from hopshop_stack import state
from hopshop_stack.demo import jwt_claims

# Three base64url parts (RFC 7515 §7.1), and nothing else on stdout.
ONE_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n")


def test_token_prints_alices_gateway_token_alone_and_order_refuses_it(
    system: System, gateway: httpx.Client
) -> None:
    if "state_dir" not in system.env:
        pytest.skip("hopshop token reads a local stack's state dir (not --base-url / compose)")
    state_dir = Path(system.env["state_dir"])
    result = subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [sys.executable, "-m", "hopshop_stack", "token", "alice", "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert ONE_JWT.fullmatch(result.stdout), result.stdout[:80]
    token = result.stdout.strip()
    assert token not in result.stderr and "eyJ" not in result.stderr
    assert "aud gateway" in result.stderr and "dev-realm token" in result.stderr

    header_part = token.split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(header_part + "=" * (-len(header_part) % 4)))
    assert header["typ"] == "at+jwt"  # an access token (RFC 9068 §2.1), not an ID token
    claims = jwt_claims(token)
    assert claims["aud"] == "gateway" and claims["client_id"] == "web"
    assert claims["sub"] == jwt_claims(login(system.auth, "alice"))["sub"]
    assert set(claims["scope"].split()) == {
        "orders:read",
        "orders:write",
        "billing:read",
        "notifications:read",
    }
    assert "cnf" not in claims  # a bearer token, as the browser gets it

    # The token works where it is meant to go ...
    assert gateway.get("/api/orders", headers=bearer(token)).status_code == 200
    # ... and is refused where it is not: order takes exchanged tokens for order alone.
    found = state.load(state_dir)
    assert found is not None and not found.vulnerable
    [order] = [c.address for c in found.components if c.name == "order"]
    replayed = httpx.get(f"{order}/orders", headers=bearer(token), timeout=15)
    assert replayed.status_code == 401, replayed.text
    assert 'error="invalid_token"' in replayed.headers["www-authenticate"]

    # Printed once, where asked: no log line of the stack holds it.
    for log in state.logs_dir(state_dir).glob("*.log"):
        assert token not in log.read_text(encoding="utf-8", errors="replace"), log.name
