"""`hopshop status` and `hopshop logs`."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

from . import processes, state, tracelog
from .lifecycle import error, is_ours_and_running
from .state import ComponentState

# `hopshop status` exit codes: LSB-style, so scripts can tell "down" from "broken".
STATUS_HEALTHY = 0
STATUS_UNHEALTHY = 1
STATUS_NOT_RUNNING = 3


def health(component: ComponentState) -> str:
    """healthy / unhealthy / not running, by the component's own probe."""
    if not is_ours_and_running(component):
        return "not running"
    if component.kind == "valkey" and component.port is not None:
        ok = processes.valkey_ping(component.port)
    elif component.kind == "kafka" and component.port is not None:
        ok = processes.port_open(component.port)
    elif component.health_url is not None:
        ok = processes.http_ok(component.health_url)
    else:
        ok = True  # a worker: running is all we can see
    return "healthy" if ok else "unhealthy"


def status(state_dir: Path, as_json: bool = False) -> int:
    state_dir = state_dir.resolve()
    try:
        found = state.load(state_dir)
    except state.StateError as exc:
        error(str(exc))
        return STATUS_UNHEALTHY
    if found is None:
        if as_json:
            print(json.dumps({"running": False, "state_dir": str(state_dir), "components": []}))
        else:
            print(f"hopshop is not running (no state in {state_dir})")
        return STATUS_NOT_RUNNING

    rows: list[dict[str, Any]] = []
    for component in found.components:
        rows.append(
            {
                "name": component.name,
                "kind": component.kind,
                "pid": component.pid,
                "port": component.port,
                "address": component.address,
                "health": health(component),
                "log": component.log,
            }
        )
    all_healthy = bool(rows) and all(row["health"] == "healthy" for row in rows)
    anything_running = any(row["health"] != "not running" for row in rows)
    if as_json:
        report = {
            "running": anything_running,
            "state_dir": str(state_dir),
            "mode": found.mode,
            "started_at": found.started_at,
            "supervisor_pid": found.supervisor_pid,
            "vulnerable": found.vulnerable,
            "components": rows,
        }
        print(json.dumps(report, indent=2))
    else:
        print(f"hopshop ({found.mode}, started {found.started_at}, state in {state_dir})")
        if found.vulnerable:
            print("!! VULNERABLE MODE (HOPSHOP_PROPAGATION=forward) !!")
        print(f"  {'COMPONENT':<14}{'PID':>8}  {'PORT':>5}  {'HEALTH':<12}ADDRESS")
        for row in rows:
            port = row["port"] if row["port"] is not None else "-"
            name, pid, health_, address = row["name"], row["pid"], row["health"], row["address"]
            print(f"  {name:<14}{pid:>8}  {port:>5}  {health_:<12}{address}")
    if all_healthy:
        return STATUS_HEALTHY
    return STATUS_UNHEALTHY if anything_running else STATUS_NOT_RUNNING


# --- logs ---------------------------------------------------------------------------------


def known_logs(state_dir: Path) -> dict[str, Path]:
    """Component name -> log file, in start order when a state file says it."""
    directory = state.logs_dir(state_dir)
    files = sorted(directory.glob("*.log")) if directory.is_dir() else []
    by_name = {path.stem: path for path in files}
    try:
        found = state.load(state_dir)
    except state.StateError:
        found = None
    if found is None:
        return by_name
    ordered = {c.name: Path(c.log) for c in found.components if Path(c.log).exists()}
    ordered.update({name: path for name, path in by_name.items() if name not in ordered})
    return ordered


def logs(
    state_dir: Path, component: str | None, follow: bool, lines: int, trace: str | None = None
) -> int:
    """Print the last ``lines`` of each log, or with ``trace`` every line of that trace."""
    state_dir = state_dir.resolve()
    if trace is not None:
        trace = trace.strip().lower()
        if not tracelog.TRACE_ID.fullmatch(trace):
            error(f"not a trace id: {trace!r} (32 hex digits, as the demo prints)")
            return 2
    available = known_logs(state_dir)
    if component is not None:
        if component not in available:
            known = ", ".join(available) or "none yet"
            error(f"no log for {component!r} in {state.logs_dir(state_dir)} (logs: {known})")
            return 1
        chosen = {component: available[component]}
    else:
        chosen = available
        if not chosen:
            error(f"no logs in {state.logs_dir(state_dir)}: has `hopshop up` run here?")
            return 1

    prefix_width = max(len(name) for name in chosen) if component is None else 0
    # --trace output is read off a projector: at most 100 columns, prefix included.
    width = 100 - (prefix_width + 3 if prefix_width else 0)

    def emit(name: str, line: str) -> None:
        prefix = f"{name:<{prefix_width}} | " if prefix_width else ""
        sys.stdout.write(prefix + line + "\n")

    if trace is not None:
        found = tracelog.trace_lines(chosen, trace)
        for name, line in found:
            for part in tracelog.summary(line, width):
                emit(name, part)
        if not found and not follow:
            error(f"no log line has trace id {trace} (logs: {', '.join(chosen)})")
            return 1
    else:
        for name, path in chosen.items():
            for line in processes.tail(path, lines):
                emit(name, line)
    sys.stdout.flush()
    if follow:

        def emit_followed(name: str, line: str) -> None:
            if trace is None:
                emit(name, line)
            elif trace in line:
                for part in tracelog.summary(line, width):
                    emit(name, part)

        with contextlib.suppress(KeyboardInterrupt):
            _follow(chosen, emit_followed)
    return 0


def _follow(files: dict[str, Path], emit: Any) -> None:
    """Print lines appended to ``files`` until Ctrl-C; a file that shrinks was restarted."""
    handles: dict[str, BinaryIO] = {}
    partial: dict[str, bytes] = {}
    try:
        for name, path in files.items():
            handle: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed in the finally below
            handle.seek(0, os.SEEK_END)
            handles[name] = handle
            partial[name] = b""
        while True:
            quiet = True
            for name, handle in handles.items():
                if os.fstat(handle.fileno()).st_size < handle.tell():
                    handle.seek(0)  # a new `hopshop up` truncated the log
                data = handle.read()
                if not data:
                    continue
                quiet = False
                chunks = (partial[name] + data).split(b"\n")
                partial[name] = chunks.pop()
                for chunk in chunks:
                    emit(name, chunk.decode("utf-8", errors="replace"))
            sys.stdout.flush()
            if quiet:
                time.sleep(0.2)
    finally:
        for handle in handles.values():
            handle.close()
