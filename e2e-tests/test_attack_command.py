"""`hopshop attack` on the local stack: the suite runs against it and comes back as a table.

Two quick attacks only (``-k``): the whole suite already runs in both modes
under e2e-tests/attacks; this checks the command around it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from e2e_support import System

ATTACKS = "billing_token_replayed_at_order or spent_authorization_code"


def test_attack_prints_a_row_per_attack_and_a_summary(system: System) -> None:
    if "state_dir" not in system.env:
        pytest.skip("hopshop attack reads a local stack's state dir (not --base-url / compose)")
    result = subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [
            sys.executable,
            "-m",
            "hopshop_stack",
            "attack",
            "--state-dir",
            system.env["state_dir"],
            "-k",
            ATTACKS,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = result.stdout
    assert result.returncode == 0, f"{output}\n{result.stderr}"
    assert "eyJ" not in output + result.stderr  # claims and codes only, never a token

    lines = output.splitlines()
    assert lines[2].split() == ["attack", "category", "mode", "expected", "observed", "why"]
    [replay] = [line for line in lines if line.lstrip().startswith("billing token replayed")]
    assert not replay.startswith("✗")
    assert "secure" in replay and replay.count("refused (401, invalid_token)") == 2
    assert "hopauth/rfc9068.py" in replay
    [code] = [line for line in lines if "spent authorization code" in line]
    assert code.count("refused (400, invalid_grant)") == 2
    assert lines[-1] == "2 attacks: 2 as expected (2 refused, 0 succeeded)"
