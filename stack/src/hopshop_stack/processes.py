"""Start, probe and stop processes.

Every process starts in its own session (so its own process group, pgid = pid)
with stdout and stderr going to its log file. Stopping sends SIGTERM to the whole
group, waits, then SIGKILLs what is left, so nothing a component forked survives.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx

from .components import HOST

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """Linux: the child gets SIGTERM when the process that started it dies (even by SIGKILL)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    argv: Sequence[str], env: Mapping[str, str], log: Path, *, tied_to_parent: bool
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session, output appended to ``log``.

    ``tied_to_parent`` (foreground mode, Linux): the process is terminated if the
    `hopshop up` that started it dies without cleaning up.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    preexec = _die_with_parent if tied_to_parent and sys.platform == "linux" else None
    with open(log, "ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own binaries and sys.executable, fixed argv
            list(argv),
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            preexec_fn=preexec,  # only prctl between fork and exec: no locks taken
        )


def start_ticks(pid: int) -> int | None:
    """The process's start time (clock ticks since boot) from /proc, or None off Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat.rpartition(")")[2].split()
    return int(fields[19])  # field 22 overall


def _reap(pid: int) -> bool:
    """If ``pid`` is our exited child, collect it. True when it has exited."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False  # not our child: someone else reaps it
    return done == pid


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "Z"


def alive(pid: int, ticks: int | None = None) -> bool:
    """Is ``pid`` running (not a zombie), and the same process as when it was recorded?"""
    if pid <= 0 or _reap(pid):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, belongs to someone else
    if _is_zombie(pid):
        return False
    return ticks is None or start_ticks(pid) in (None, ticks)


def group_alive(pgid: int) -> bool:
    """Does any process of group ``pgid`` still run? The leader is reaped if it is ours."""
    _reap(pgid)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Only a zombie leader left (someone else's child, not reaped yet) counts as gone.
    return not (_is_zombie(pgid) and not _other_members(pgid))


def _other_members(pgid: int) -> bool:
    proc = Path("/proc")
    if not proc.is_dir():
        return True  # cannot tell: assume there are
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == pgid:
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_group(pgid: int, timeout: float) -> bool:
    """SIGTERM the group, wait up to ``timeout`` s, then SIGKILL it. True if it needed the kill."""
    if not group_alive(pgid):
        return False
    _signal_group(pgid, signal.SIGTERM)
    if wait_until(lambda: not group_alive(pgid), timeout):
        return False
    _signal_group(pgid, signal.SIGKILL)
    wait_until(lambda: not group_alive(pgid), 5.0)
    return True


def stop_pid(pid: int, timeout: float) -> bool:
    """SIGTERM one process, wait, then SIGKILL. True if it needed the kill."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    if wait_until(lambda: not alive(pid), timeout):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not alive(pid), 5.0)
    return True


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# --- probes -------------------------------------------------------------------------


def port_in_use(port: int) -> bool:
    """Would binding 127.0.0.1:port fail? (Same SO_REUSEADDR as the servers use.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def valkey_ping(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.is_success


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a text file (empty when it does not exist)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            chunk = min(size, max(4096, lines * 400))
            handle.seek(size - chunk)
            data = handle.read()
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    if chunk < size and text:
        text = text[1:]  # the first line read is probably cut
    return text[-lines:] if lines > 0 else []
