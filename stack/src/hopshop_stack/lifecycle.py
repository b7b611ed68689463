"""`hopshop up` and `hopshop down`."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TextIO

from . import processes, state
from .components import DEMO_CLIENTS, DEMO_USERS, Options, Plan, PlanError, Planned, build_plan
from .kafka import TopicError, create_topics
from .output import outliving_output
from .state import ComponentState, Mode, StackState

LOG_TAIL_LINES = 30
DEFAULT_STATE_DIR = Path("var/stack")


class ComponentFailed(RuntimeError):
    """A component exited, or did not become ready in time."""

    def __init__(self, component: str, reason: str, log: Path | None) -> None:
        super().__init__(f"{component} {reason}")
        self.component = component
        self.reason = reason
        self.log = log


def how_it_ended(returncode: int) -> str:
    """A process's end in words: a negative return code is the signal that killed it."""
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


class Interrupted(Exception):
    """Ctrl-C, SIGTERM or SIGHUP arrived: stop everything."""


class _Deferral:
    """The stop signal received, if any; held back while a process is spawned and recorded.

    Otherwise a signal landing between fork and bookkeeping would leave a
    process nobody knows to stop. Only the first stop signal counts: a second one
    (a double Ctrl-C, or `uv run` and `make` passing on the SIGTERM sent to the
    whole group) must not cut the stopping short.
    """

    def __init__(self) -> None:
        self.active = False
        self.pending: str | None = None

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        self.active = True
        try:
            yield
        finally:
            self.active = False
            self.check()  # the stop signal wins over whatever else went wrong meanwhile

    def requested(self) -> bool:
        return self.pending is not None

    def check(self) -> None:
        """Raise the stop signal received, should its exception have been swallowed."""
        if self.pending is not None:
            raise Interrupted(self.pending)


_deferral = _Deferral()


# How hopshop is run from a clone: `make up` does not put `hopshop` on the PATH.
RUN = "uv run hopshop"


def error(message: str) -> None:
    print(f"hopshop: {message}", file=sys.stderr)


def state_dir_hint(state_dir: Path) -> str:
    """`` --state-dir X`` when the state dir is not the default, for commands we print."""
    if state_dir.resolve() == DEFAULT_STATE_DIR.resolve():
        return ""
    return f" --state-dir {state_dir}"


def vulnerable_banner(out: TextIO) -> None:
    bar = "!" * 78
    lines = (
        "VULNERABLE MODE: HOPSHOP_PROPAGATION=forward",
        "Services forward the user's token downstream and accept any audience",
        "from the issuer: a token replayed at another service, or a worker's",
        "token on customer routes, is accepted (`hopshop attack` shows which).",
        "It is for teaching only. Never run it anywhere that matters.",
    )
    print(bar, file=out)
    for line in lines:
        print(f"!!  {line:<72}!!", file=out)
    print(bar, file=out, flush=True)


# --- the running stack ------------------------------------------------------------------


class Runner:
    """The processes one `hopshop up` started, in order, mirrored in the state file."""

    def __init__(self, state_dir: Path, mode: Mode, vulnerable: bool, stop_timeout: float) -> None:
        self.state_dir = state_dir
        self.mode = mode
        self.stop_timeout = stop_timeout
        self.started: list[tuple[Planned, subprocess.Popen[bytes]]] = []
        self.state = StackState(
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            mode=mode,
            supervisor_pid=os.getpid() if mode == "foreground" else None,
            vulnerable=vulnerable,
        )
        self._tty = sys.stdout.isatty()

    def start_all(self, plan: Plan, wait_timeout: float) -> None:
        for component in plan.components:
            self.start(component, wait_timeout)
            if component.kind == "kafka":
                self.create_topics(plan, wait_timeout)

    def start(self, component: Planned, wait_timeout: float) -> None:
        self._progress(component.name)
        log = state.log_path(self.state_dir, component.name)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_bytes(b"")  # each run starts a fresh log
        began = time.monotonic()
        with _deferral.hold():
            process = processes.spawn(
                component.argv, component.env, log, tied_to_parent=self.mode == "foreground"
            )
            self.started.append((component, process))
            self.state.components.append(
                ComponentState(
                    name=component.name,
                    kind=component.kind,
                    pid=process.pid,
                    port=component.port,
                    address=component.address,
                    health_url=component.health_url,
                    log=str(log),
                    start_ticks=processes.start_ticks(process.pid),
                )
            )
            state.save(self.state_dir, self.state)
        self._wait_ready(component, process, began, wait_timeout, log)
        self._done(component.name, time.monotonic() - began, component.address)

    def _wait_ready(
        self,
        component: Planned,
        process: subprocess.Popen[bytes],
        began: float,
        timeout: float,
        log: Path,
    ) -> None:
        deadline = began + timeout
        while True:
            code = process.poll()
            if code is not None:
                raise ComponentFailed(component.name, how_it_ended(code), log)
            if is_ready(component, time.monotonic() - began):
                return
            if time.monotonic() >= deadline:
                raise ComponentFailed(component.name, f"was not ready after {timeout:.0f}s", log)
            _deferral.check()
            time.sleep(0.1)

    def create_topics(self, plan: Plan, timeout: float) -> None:
        self._progress("topics")
        began = time.monotonic()
        try:
            # Held, not raised: an exception raised inside the event loop can leave it
            # half made. hold() raises the stop signal once asyncio is done.
            with _deferral.hold():
                created = create_topics(
                    plan.kafka_bootstrap, plan.topics, timeout, stop_requested=_deferral.requested
                )
        except TopicError as exc:
            kafka_log = state.log_path(self.state_dir, "kafka")
            raise ComponentFailed("topics", str(exc), kafka_log) from exc
        detail = f"{len(plan.topics)} topics ({len(created)} created)"
        self._done("topics", time.monotonic() - began, detail)

    def first_exited(self) -> tuple[Planned, int] | None:
        for component, process in self.started:
            code = process.poll()
            if code is not None:
                return component, code
        return None

    def stop_all(self) -> None:
        """Stop everything started, last first; forget the state file."""
        for component, process in reversed(self.started):
            killed = processes.stop_group(process.pid, self.stop_timeout)
            process.poll()  # let Popen know; the group stop already reaped it
            how = "killed (did not stop in time)" if killed else "stopped"
            print(f"  {how} {component.name}", flush=True)
        self.started.clear()
        state.remove(self.state_dir)

    def _progress(self, name: str) -> None:
        if self._tty:
            print(f"  … {name:<14} starting", end="\r", flush=True)

    def _done(self, name: str, seconds: float, detail: str) -> None:
        clear = "\r\033[K" if self._tty else ""
        print(f"{clear}  ✓ {name:<14}{seconds:5.1f}s  {detail}", flush=True)

    def fail(self, exc: ComponentFailed) -> None:
        clear = "\r\033[K" if self._tty else ""
        print(f"{clear}  ✗ {exc.component:<14}{exc.reason}", flush=True)
        if exc.log is not None:
            lines = processes.tail(exc.log, LOG_TAIL_LINES)
            print(f"--- last {len(lines)} lines of {exc.log} ---", file=sys.stderr)
            for line in lines:
                print(f"    {line}", file=sys.stderr)
            print("---", file=sys.stderr, flush=True)


def is_ready(component: Planned, elapsed: float) -> bool:
    if component.kind == "valkey" and component.port is not None:
        return processes.valkey_ping(component.port)
    if component.kind == "kafka" and component.port is not None:
        return processes.port_open(component.port)
    if component.kind == "service" and component.ready_url is not None:
        return processes.http_ok(component.ready_url)
    return elapsed >= component.settle  # a worker that stayed up long enough


# --- up ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _start_lock(state_dir: Path) -> Iterator[bool]:
    """Held while one `hopshop up` starts, so two cannot start in the same state dir."""
    with open(state_dir / state.LOCK_FILE, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _stop_signals() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP (terminal closed) stop the stack.

    SIGINT is set explicitly: a shell starts background jobs with it ignored.
    """

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if _deferral.pending is not None:
            return  # already stopping
        _deferral.pending = signal.Signals(signum).name
        if not _deferral.active:
            raise Interrupted(_deferral.pending)

    stoppers = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, interrupt) for sig in stoppers}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _deferral.pending = None


@contextlib.contextmanager
def _no_interrupts() -> Iterator[None]:
    """While stopping, a second Ctrl-C must not abandon half-stopped processes."""
    previous = {
        sig: signal.signal(sig, signal.SIG_IGN)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def live_components(found: StackState) -> list[ComponentState]:
    return [c for c in found.components if is_ours_and_running(c)]


def is_ours_and_running(component: ComponentState) -> bool:
    """Is the recorded process (or something it forked) still running?"""
    leader_exists = processes.alive(component.pid)
    if leader_exists and not processes.alive(component.pid, component.start_ticks):
        return False  # the pid now belongs to another program
    return processes.group_alive(component.pid)


def up(
    options: Options,
    *,
    detach: bool,
    wait_timeout: float = 60.0,
    stop_timeout: float = 10.0,
) -> int:
    state_dir = options.state_dir.resolve()
    try:
        plan = build_plan(options)
    except PlanError as exc:
        error(str(exc))
        return 2
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / state.LOCK_FILE).touch()
    except OSError as exc:
        error(f"cannot write to the state dir {state_dir}: {exc.strerror or exc}")
        return 2
    hint = state_dir_hint(options.state_dir)
    mode: Mode = "detached" if detach else "foreground"
    runner = Runner(state_dir, mode, options.vulnerable, stop_timeout)
    ready = False

    # One signal scope from the first process started to the last one stopped:
    # no moment where Ctrl-C could leave processes behind. Nor a closed terminal:
    # output that cannot be written is dropped, the stopping goes on.
    with outliving_output(), _stop_signals():
        try:
            try:
                with _start_lock(state_dir) as locked:
                    if not locked:
                        error(f"another `hopshop up` is starting right now (state dir {state_dir})")
                        return 1
                    if not _may_start(plan, state_dir, hint):
                        return 1
                    if options.vulnerable:
                        vulnerable_banner(sys.stderr)
                    print(f"Starting hopshop (state and logs in {state_dir})", flush=True)
                    for name, why in plan.skipped:
                        print(f"  - {name:<14}skipped: {why}")
                    began = time.monotonic()
                    runner.start_all(plan, wait_timeout)
                ready = True
                elapsed = time.monotonic() - began
                print_summary(plan, state_dir, elapsed, detach, options.vulnerable, hint)
                if detach:
                    return 0
                supervise(runner)
            except ComponentFailed as exc:
                # A stop signal arriving in here is caught by the handler below.
                runner.fail(exc)
                print("Stopping everything…", flush=True)
                with _no_interrupts():
                    runner.stop_all()
                return 1
        except (KeyboardInterrupt, Interrupted):
            print("\nStopping hopshop…", flush=True)
            with _no_interrupts():
                runner.stop_all()
            print("Stopped.")
            return 0 if ready else 130
    raise AssertionError("supervise() only returns by raising")  # pragma: no cover


def _may_start(plan: Plan, state_dir: Path, hint: str) -> bool:
    """Refuse (with a message) when a stack runs here already or a port is taken."""
    try:
        found = state.load(state_dir)
    except state.StateError as exc:
        error(str(exc))
        return False
    if found is not None:
        supervisor = found.supervisor_pid
        live = live_components(found)
        if live or (supervisor is not None and processes.alive(supervisor)):
            where = (
                f"in the foreground (pid {supervisor})"
                if found.mode == "foreground"
                else "in the background"
            )
            error(
                f"a stack is already running {where}.\n"
                f"  Started {found.started_at}; {len(live)} of its {len(found.components)} "
                "parts are up.\n"
                f"  See it with `{RUN} status{hint}`;\n  stop it with `{RUN} down{hint}`."
            )
            return False
        state.remove(state_dir)  # left by a run that is gone

    busy = [c for c in plan.components if c.port is not None and processes.port_in_use(c.port)]
    for component in busy:
        error(f"port {component.port} ({component.name}) is already in use")
    if busy:
        error(
            "nothing was started. Stop whatever holds the port, or move the stack: "
            "--port-offset N, or HOPSHOP_PORT_<NAME>=PORT (e.g. HOPSHOP_PORT_AUTH=9001)"
        )
        return False
    return True


def supervise(runner: Runner) -> None:
    """Foreground: run until a signal arrives (raised as an exception) or a process dies."""
    while True:
        exited = runner.first_exited()
        if exited is not None:
            component, code = exited
            log = state.log_path(runner.state_dir, component.name)
            raise ComponentFailed(component.name, how_it_ended(code), log)
        _deferral.check()
        time.sleep(0.5)


def print_summary(
    plan: Plan, state_dir: Path, seconds: float, detach: bool, vulnerable: bool, hint: str
) -> None:
    print(f"\nhopshop is up ({len(plan.components)} processes ready in {seconds:.1f}s)\n")
    for component in plan.components:
        print(f"  {component.name:<14}{component.address}")
        for label, url in component.links:
            print(f"  {'':<14}  {label + ':':<11}{url}")
    # Wrapped: the summary fits a ~100-column (projected) terminal however many topics.
    topics = textwrap.wrap(", ".join(t for t in plan.topics if not t.endswith(".dlq")), 82)
    for index, line in enumerate(topics):
        print(f"  {'topics' if index == 0 else '':<14}{line}")
    print(f"  {'':<14}and a .dlq for each")
    if plan.skipped:
        names = ", ".join(name for name, _ in plan.skipped)
        print(f"  {'not started':<14}{names}")
    print("\nDemo logins (development only):")
    for user, password, role in DEMO_USERS:
        print(f"  {user + ' / ' + password:<30}{role}")
    # Two lines: on one, it would not fit the 100 columns of a projected terminal.
    print("Service clients: <id> / <id>-dev-secret for")
    print("  " + ", ".join(DEMO_CLIENTS))
    print("  and web, the browser's public client: authorization code + PKCE, no secret")
    dpop = "on: service tokens bound to each caller's key" if plan.dpop else "off: bearer tokens"
    print(f"DPoP (RFC 9449): {dpop}")
    gateway = next((c for c in plan.components if c.name == "gateway"), None)
    if gateway is not None:
        print(f"\nShop:   open {gateway.address}/ in a browser, sign in as alice")
    print(f"\nLogs:   {RUN} logs{hint} [component] [-f]")
    print(f"        (files in {state_dir / 'logs'})")
    print(f"Status: {RUN} status{hint}")
    if detach:
        print(f"Stop:   {RUN} down{hint}")
    else:
        print(f"Stop:   Ctrl-C (or `{RUN} down{hint}` from another terminal)")
    if vulnerable:
        print("\n!! VULNERABLE MODE (HOPSHOP_PROPAGATION=forward): for teaching only !!")
    sys.stdout.flush()


# --- down --------------------------------------------------------------------------------


def down(state_dir: Path, timeout: float = 10.0) -> int:
    state_dir = state_dir.resolve()
    try:
        found = state.load(state_dir)
    except state.StateError as exc:
        error(str(exc))
        return 1
    if found is None:
        print(f"hopshop is not running (no state in {state_dir})")
        return 0

    supervisor = found.supervisor_pid
    if supervisor is not None and supervisor != os.getpid() and processes.alive(supervisor):
        # The foreground `hopshop up` stops its own processes, in order, as on Ctrl-C.
        print(f"Asking the foreground `hopshop up` (pid {supervisor}) to stop…", flush=True)
        budget = timeout * (len(found.components) + 1) + 5
        if processes.stop_pid(supervisor, budget):
            print(f"  killed the `hopshop up` process (pid {supervisor})")

    for component in reversed(found.components):
        if not is_ours_and_running(component):
            continue
        killed = processes.stop_group(component.pid, timeout)
        how = "killed (did not stop in time)" if killed else "stopped"
        print(f"  {how} {component.name} (pid {component.pid})", flush=True)
    state.remove(state_dir)
    print("hopshop is down.")
    return 0
