"""The `hopshop` command line: bad options, a state dir that cannot be one, a closed pipe.

None of these starts a stack: each must be refused (or end) with a one-line reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hopshop_stack import lifecycle
from hopshop_stack.cli import EXIT_BROKEN_PIPE, main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["up", "--port-offset", "-5"], "argument --port-offset: must be at least 0, not -5"),
        (["up", "--timeout", "0"], "argument --timeout: must be at least 0.1, not 0"),
        (["up", "--timeout", "nan"], "argument --timeout: must be at least 0.1, not nan"),
        (["up", "--stop-timeout", "-1"], "argument --stop-timeout: must be at least 0.1"),
        (["logs", "-n", "-3"], "argument -n/--lines: must be at least 0, not -3"),
    ],
)
def test_bad_options_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    state_dir = tmp_path / "stack"
    # An unknown service too: should the bad option pass, `up` still starts nothing.
    safety = ["--only", "not-a-service"] if args[0] == "up" else []
    with pytest.raises(SystemExit) as exited:
        main([*args, *safety, "--state-dir", str(state_dir)])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert not state_dir.exists()


@pytest.mark.parametrize(
    ("command", "code", "message"),
    [
        ("up", 2, "cannot write to the state dir"),
        ("status", 1, "cannot read"),
        ("down", 1, "cannot read"),
        ("logs", 1, "no logs in"),
    ],
)
def test_a_state_dir_that_cannot_be_one_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, code: int, message: str
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    state_dir = a_file / "stack"
    assert (
        main([command, "--state-dir", str(state_dir), *(["-d"] if command == "up" else [])]) == code
    )
    err = capsys.readouterr().err
    assert err.startswith("hopshop: ") and message in err and str(state_dir) in err


def test_help_says_where_state_lives_and_how_to_stop(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--state-dir DIR" in out and "./var/stack" in out
    assert "Ctrl-C" in out and "hopshop down" in out


def test_logs_into_a_closed_pipe_end_quietly(tmp_path: Path) -> None:
    # `hopshop logs | head`: the reader is gone before everything is written.
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "auth.log").write_text("".join(f"line {n}\n" for n in range(100)))
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "hopshop_stack", "logs", "--state-dir", str(tmp_path)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.returncode == EXIT_BROKEN_PIPE, result.stderr
    assert result.stderr == ""


def test_a_process_killed_by_a_signal_is_said_so() -> None:
    assert lifecycle.how_it_ended(1) == "exited with code 1"
    assert lifecycle.how_it_ended(-9) == "was killed by SIGKILL"
    assert lifecycle.how_it_ended(-15) == "was killed by SIGTERM"
    assert lifecycle.how_it_ended(-99) == "was killed by signal 99"
