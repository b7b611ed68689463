"""The state file: which processes a `hopshop up` started, so `down` and `status` find them.

``<state dir>/stack.json``, rewritten (atomically) after every process starts, so an
interrupted start-up can still be cleaned up by `hopshop down`::

    {"version": 1, "started_at": "...", "mode": "foreground" | "detached",
     "supervisor_pid": 1234, "vulnerable": false,
     "components": [{"name": "auth", "kind": "service", "pid": 1240, "port": 8001,
                     "address": "http://127.0.0.1:8001",
                     "health_url": "http://127.0.0.1:8001/healthz",
                     "log": "/.../logs/auth.log", "start_ticks": 123456}, ...]}

The supervisor is the foreground `hopshop up` process (``null`` when detached).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

VERSION = 1
STATE_FILE = "stack.json"
LOCK_FILE = "up.lock"

Mode = Literal["foreground", "detached"]


@dataclass
class ComponentState:
    name: str
    kind: str
    pid: int
    port: int | None
    address: str
    health_url: str | None
    log: str
    # The process's start time in clock ticks since boot (Linux), so a pid reused by
    # another program after a reboot is never taken for ours.
    start_ticks: int | None = None


@dataclass
class StackState:
    started_at: str
    mode: Mode
    supervisor_pid: int | None
    vulnerable: bool
    components: list[ComponentState] = field(default_factory=list)
    version: int = VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> StackState:
        raw: dict[str, Any] = json.loads(text)
        components = [ComponentState(**item) for item in raw.pop("components", [])]
        return cls(components=components, **raw)


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def logs_dir(state_dir: Path) -> Path:
    return state_dir / "logs"


def log_path(state_dir: Path, name: str) -> Path:
    return logs_dir(state_dir) / f"{name}.log"


class StateError(RuntimeError):
    """The state file exists but cannot be read (or the state dir cannot be)."""


def load(state_dir: Path) -> StackState | None:
    path = state_path(state_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:  # the state dir is a file, or is not ours to read
        raise StateError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return StackState.from_json(text)
    except (ValueError, TypeError) as exc:
        raise StateError(f"{path} is not a hopshop state file ({exc}); remove it") from exc


def save(state_dir: Path, state: StackState) -> None:
    path = state_path(state_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.to_json(), encoding="utf-8")
    os.replace(tmp, path)


def remove(state_dir: Path) -> None:
    state_path(state_dir).unlink(missing_ok=True)
