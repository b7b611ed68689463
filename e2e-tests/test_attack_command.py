"""`hopshop attack` on the local stack: the suite runs against it, comes back 100 columns wide.

Two quick attacks only (``-k``): the whole suite already runs in both modes
under e2e-tests/attacks; this checks the command around it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from e2e_support import System

ATTACKS = "billing_token_replayed_at_order or spent_authorization_code"


def _attack(system: System, select: str) -> subprocess.CompletedProcess[str]:
    if "state_dir" not in system.env:
        pytest.skip("hopshop attack reads a local stack's state dir (not --base-url / compose)")
    return subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [
            sys.executable,
            "-m",
            "hopshop_stack",
            "attack",
            "--state-dir",
            system.env["state_dir"],
            "-k",
            select,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_attack_prints_a_block_per_attack_and_a_summary(system: System) -> None:
    result = _attack(system, ATTACKS)
    output = result.stdout
    assert result.returncode == 0, f"{output}\n{result.stderr}"
    assert "eyJ" not in output + result.stderr  # claims and codes only, never a token

    lines = output.splitlines()
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    assert lines[2] == "replay (secure mode)"
    replay = lines.index("  billing token replayed at order")
    assert lines[replay + 1] == "      observed  refused (401, invalid_token), as expected"
    assert lines[replay + 2].startswith("      why       aud check:")
    assert "hopauth/rfc9068.py" in lines[replay + 2]
    code = lines.index("  spent authorization code")
    assert lines[code + 1] == "      observed  refused (400, invalid_grant), as expected"
    assert not any(line.startswith("✗") for line in lines)
    assert lines[-1] == "2 attacks: 2 as expected (2 refused, 0 succeeded)"


def test_a_selection_of_no_attack_is_a_usage_error(system: System) -> None:
    result = _attack(system, "zzz")
    assert result.returncode == 2, f"{result.stdout}\n{result.stderr}"
    assert result.stderr.startswith("hopshop: no attack matches -k 'zzz'.\n"), result.stderr
    assert "deselected" not in result.stdout + result.stderr
