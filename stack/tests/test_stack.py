"""`hopshop` for real: valkey, the Tansu broker and the auth service on free ports.

Only the auth service is started (``--only auth``), so the suite stays fast and does
not depend on services still being written; the registry logic is in test_components.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from hopkit.testing import free_ports
from hopshop_stack import processes
from hopshop_stack.cli import main
from hopshop_stack.components import SERVICES, TOPICS, port_env


def port_environment() -> dict[str, str]:
    """HOPSHOP_PORT_<NAME> on a free port for every component the registry knows."""
    names = ["valkey", "kafka", *(service.name for service in SERVICES)]
    return {port_env(name): str(port) for name, port in free_ports(names).items()}


def hopshop(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hopshop_stack", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def recorded_pids(state_dir: Path) -> dict[str, int]:
    raw = json.loads((state_dir / "stack.json").read_text())
    return {c["name"]: c["pid"] for c in raw["components"]}


def assert_all_gone(pids: dict[str, int]) -> None:
    assert processes.wait_until(lambda: not any(processes.alive(p) for p in pids.values()), 5)


@dataclass
class Stack:
    state_dir: Path
    env: dict[str, str]
    output: str
    pids: dict[str, int]

    def port(self, name: str) -> int:
        return int(self.env[port_env(name)])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir = tmp_path_factory.mktemp("stack")
    env = port_environment()
    result = hopshop("up", "-d", "--only", "auth", "--state-dir", str(state_dir), env=env)
    pids = recorded_pids(state_dir) if (state_dir / "stack.json").exists() else {}
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        yield Stack(state_dir, env, result.stdout, pids)
    finally:
        hopshop("down", "--state-dir", str(state_dir), env=env)
        for pid in pids.values():  # a safety net should `down` be broken
            if processes.alive(pid):
                os.killpg(pid, signal.SIGKILL)


def test_up_shows_progress_urls_logins_and_how_to_stop(stack: Stack) -> None:
    out = stack.output
    for name in ("valkey", "kafka", "topics", "auth"):
        assert re.search(rf"✓ {name}\s+\d+\.\ds", out), out
    assert f"http://127.0.0.1:{stack.port('auth')}" in out
    assert f"redis://127.0.0.1:{stack.port('valkey')}/0" in out
    assert "alice / alice-dev-password" in out and "carol / carol-dev-password" in out
    assert "<id> / <id>-dev-secret" in out
    assert f"hopshop down --state-dir {stack.state_dir}" in out
    # A projected terminal is ~100 columns; only a line naming the (long) state dir may not fit.
    wide = [line for line in out.splitlines() if len(line) > 100]
    assert all(str(stack.state_dir) in line for line in wide), wide


def test_status_shows_everyone_healthy(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--json", "--state-dir", str(stack.state_dir)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["running"] and report["mode"] == "detached" and not report["vulnerable"]
    rows = {row["name"]: row for row in report["components"]}
    assert list(rows) == ["valkey", "kafka", "auth"]
    assert {row["health"] for row in rows.values()} == {"healthy"}
    assert rows["auth"]["port"] == stack.port("auth")
    assert rows["auth"]["pid"] == stack.pids["auth"]

    assert main(["status", "--state-dir", str(stack.state_dir)]) == 0
    table = capsys.readouterr().out
    assert re.search(rf"auth\s+{stack.pids['auth']}\s+{stack.port('auth')}\s+healthy", table)


def test_auth_discovery_answers_at_the_printed_url(stack: Stack) -> None:
    match = re.search(r"discovery:\s+(http://\S+)", stack.output)
    assert match, stack.output
    discovery = httpx.get(match.group(1), timeout=5).json()
    assert discovery["issuer"] == f"http://127.0.0.1:{stack.port('auth')}"


def test_topics_and_dead_letter_topics_exist(stack: Stack) -> None:
    async def list_topics() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{stack.port('kafka')}")
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    topics = asyncio.run(list_topics())
    assert set(TOPICS) <= topics
    assert {"order.placed", "order.placed.dlq", "payment.failed.dlq"} <= topics


def test_second_up_refuses(stack: Stack) -> None:
    state_dir = str(stack.state_dir)
    result = hopshop("up", "-d", "--only", "auth", "--state-dir", state_dir, env=stack.env)
    assert result.returncode == 1
    assert "already running" in result.stderr
    assert all(len(line) <= 100 for line in result.stderr.splitlines()), result.stderr  # any N
    assert recorded_pids(stack.state_dir) == stack.pids  # the running stack is untouched


def test_busy_port_is_named_before_anything_starts(stack: Stack, tmp_path: Path) -> None:
    # Same ports, another state dir: valkey, kafka and auth are all taken.
    result = hopshop("up", "-d", "--only", "auth", "--state-dir", str(tmp_path), env=stack.env)
    assert result.returncode == 1
    assert f"port {stack.port('auth')} (auth) is already in use" in result.stderr
    assert f"port {stack.port('valkey')} (valkey) is already in use" in result.stderr
    assert not (tmp_path / "stack.json").exists()
    assert not (tmp_path / "logs").exists()


def test_logs_show_content(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "auth", "-n", "200", "--state-dir", str(stack.state_dir)]) == 0
    assert "auth service ready" in capsys.readouterr().out

    assert main(["logs", "-n", "5", "--state-dir", str(stack.state_dir)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^valkey +\| ", out, re.MULTILINE)
    assert re.search(r"^auth +\| ", out, re.MULTILINE)

    assert main(["logs", "nowhere", "--state-dir", str(stack.state_dir)]) == 1
    assert "no log for 'nowhere'" in capsys.readouterr().err


def test_down_leaves_no_process_behind(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert all(processes.alive(pid) for pid in stack.pids.values())
    assert main(["down", "--state-dir", str(stack.state_dir)]) == 0
    assert_all_gone(stack.pids)
    assert not (stack.state_dir / "stack.json").exists()
    assert not processes.port_open(stack.port("auth"))
    assert main(["status", "--state-dir", str(stack.state_dir)]) == 3
    assert "not running" in capsys.readouterr().out


def test_a_component_that_fails_stops_everything(tmp_path: Path) -> None:
    env = {**port_environment(), "AUTH_POLICY_FILE": str(tmp_path / "missing.toml")}
    result = hopshop("up", "-d", "--only", "auth", "--state-dir", str(tmp_path), env=env)
    assert result.returncode == 1
    assert "✗ auth" in result.stdout and "exited with code" in result.stdout
    assert "cannot read policy file" in result.stderr  # the tail of auth's log
    assert not (tmp_path / "stack.json").exists()
    for name in ("valkey", "kafka"):
        assert not processes.port_open(int(env[port_env(name)])), f"{name} still runs"


def test_foreground_up_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    env = port_environment()
    up = ["up", "--vulnerable", "--only", "auth", "--state-dir", str(tmp_path)]
    process = subprocess.Popen(
        [sys.executable, "-m", "hopshop_stack", *up],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        seen = ""
        while "hopshop is up" not in seen and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen += line
        assert "hopshop is up" in seen, seen
        pids = recorded_pids(tmp_path)
        auth_pid = pids["auth"]
        environ = Path(f"/proc/{auth_pid}/environ").read_bytes().split(b"\0")
        assert b"HOPSHOP_PROPAGATION=forward" in environ

        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, out + err
    assert "VULNERABLE MODE" in err
    assert "stopped auth" in out and "stopped valkey" in out
    assert_all_gone(pids)
    assert not (tmp_path / "stack.json").exists()


def test_demo_and_attack_need_a_running_stack(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["demo", "--state-dir", str(tmp_path)]) == 2
    assert "no running stack" in capsys.readouterr().err
    assert main(["attack", "--state-dir", str(tmp_path)]) == 2
    assert "no running stack" in capsys.readouterr().err


def read_until(fd: int, marker: str, timeout: float = 60) -> str:
    """Read a pty's output until ``marker`` shows up (or the time runs out)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while marker.encode() not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # EIO: the other side is gone
                break
    return seen.decode(errors="replace")


def on_a_terminal(
    args: list[str], env: dict[str, str], err: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """`hopshop ARGS` with a pty as its controlling terminal and stdout; stderr to ``err``."""
    master, slave = pty.openpty()

    def take_the_terminal() -> None:  # in the child, after setsid: the pty becomes its terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    with open(err, "wb") as err_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "hopshop_stack", *args],
            env={**os.environ, **env},
            stdin=slave,
            stdout=slave,
            stderr=err_file,
            start_new_session=True,
            preexec_fn=take_the_terminal,
        )
    os.close(slave)
    return process, master


@pytest.mark.parametrize(
    ("detach", "close_after", "exit_code"),
    [
        (False, "hopshop is up", 0),  # the foreground stack, once up
        (True, "✓ kafka", 130),  # `up -d`, halfway through starting
    ],
)
def test_closing_the_terminal_stops_everything(
    tmp_path: Path, detach: bool, close_after: str, exit_code: int
) -> None:
    # Closing the terminal sends SIGHUP and makes every later write fail (EIO):
    # `up` must stop what it started all the same, and forget it.
    env = port_environment()
    up = ["up", *(["-d"] if detach else []), "--only", "auth", "--state-dir", str(tmp_path)]
    process, master = on_a_terminal(up, env, tmp_path / "stderr")
    pids: dict[str, int] = {}
    try:
        seen = read_until(master, close_after)
        assert close_after in seen, seen
        pids = recorded_pids(tmp_path)
        os.close(master)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in pids.values():
            if processes.alive(pid):
                os.killpg(pid, signal.SIGKILL)
    stderr = (tmp_path / "stderr").read_text()
    assert process.returncode == exit_code, stderr
    assert "Traceback" not in stderr, stderr
    assert_all_gone(pids)
    assert not (tmp_path / "stack.json").exists()
    for name in ("valkey", "kafka", "auth"):
        assert not processes.port_open(int(env[port_env(name)])), f"{name} still runs"


def test_two_stop_signals_at_once_still_stop_everything(tmp_path: Path) -> None:
    # `make up` under `uv run`: a SIGTERM to the group reaches `hopshop up` twice,
    # once from the sender and once passed on by uv. A double Ctrl-C does the same.
    env = port_environment()
    up = ["up", "--only", "auth", "--state-dir", str(tmp_path)]
    process = subprocess.Popen(
        [sys.executable, "-m", "hopshop_stack", *up],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids: dict[str, int] = {}
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        seen = ""
        while "hopshop is up" not in seen and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen += line
        assert "hopshop is up" in seen, seen
        pids = recorded_pids(tmp_path)

        # Both pending at once, however fast the first one is handled.
        process.send_signal(signal.SIGSTOP)
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGCONT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in pids.values():
            if processes.alive(pid):
                os.killpg(pid, signal.SIGKILL)
    assert process.returncode == 0, out + err
    assert "Traceback" not in err, err
    assert "stopped auth" in out and "stopped valkey" in out and "Stopped." in out
    assert_all_gone(pids)
    assert not (tmp_path / "stack.json").exists()
