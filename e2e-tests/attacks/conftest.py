"""The attack suite's harness: a ``target`` stack per mode, a recorder per attack, the report.

By default every attack runs twice: against the secure stack the other e2e
tests use (``system``), and against a second local stack started with
``--vulnerable`` (only if a vulnerable-mode test was collected). With
``--base-url`` only the running stack's own mode runs, as its gateway
announces it (``X-Hopshop-Mode``); ``--mode`` insists on one.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

# The harness' modules sit next to this file; the imports below need the path.
sys.path.insert(0, str(Path(__file__).parent))

from dpop_proofs import ProofKey
from e2e_support import System, free_ports
from forgery import AttackerHost
from oauth_flows import Login, login
from recorder import ROWS, Recorder, attack_name, write_report
from shop import paid_order
from stacks import (
    COMPONENTS,
    INTERNAL_SERVICES,
    MODES,
    Mode,
    Target,
    detect_mode,
    read_state,
    start_local_stack,
    stop_local_stack,
)

T = TypeVar("T")

RUN_MODES = pytest.StashKey[tuple[Mode, ...]]()
# After every attack: the leakage scan (it judges what they left behind), then the
# README check (it compares the rows they recorded with the READMEs' tables).
LAST = ("test_leakage.py", "test_readme_tables.py")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hopshop attacks")
    group.addoption(
        "--mode",
        choices=MODES,
        help="run the attacks in this mode only (with --base-url: fail unless the stack runs it)",
    )
    group.addoption(
        "--state-dir",
        help="state dir of the running stack (`hopshop up -d`): its service URLs and logs",
    )
    group.addoption(
        "--service-url",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="an internal service of the running stack, e.g. order=http://127.0.0.1:8002",
    )
    group.addoption(
        "--attack-report", metavar="PATH", help="write every attack's row (JSON) to PATH"
    )


def _option(config: pytest.Config, name: str) -> Any:
    # The options are only registered when this conftest is loaded at start-up
    # (`pytest e2e-tests/attacks`); a plain `pytest` run leaves them at their defaults.
    return config.getoption(name, default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[ROWS] = []


def run_modes(config: pytest.Config) -> tuple[Mode, ...]:
    if RUN_MODES in config.stash:
        return config.stash[RUN_MODES]
    insisted: Mode | None = _option(config, "--mode")
    base_url: str | None = _option(config, "--base-url")
    if base_url:
        detected = detect_mode(base_url)
        if insisted and insisted != detected:
            raise pytest.UsageError(
                f"--mode {insisted}, but the stack at {base_url} runs in {detected} mode"
            )
        modes: tuple[Mode, ...] = (detected,)
    elif insisted:
        modes = (insisted,)
    elif _option(config, "--stack") == "compose":
        modes = ("secure",)  # docker-compose.yml runs the secure mode only
    else:
        modes = MODES
    config.stash[RUN_MODES] = modes
    return modes


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" in metafunc.fixturenames:
        metafunc.parametrize("target", run_modes(metafunc.config), indirect=True, scope="session")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The leakage scan goes after every attack, the README check after it (see LAST)."""
    last = sorted(
        (item for item in items if item.path.name in LAST), key=lambda i: LAST.index(i.path.name)
    )
    items[:] = [item for item in items if item.path.name not in LAST] + last


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = _option(session.config, "--attack-report")
    if path:
        write_report(Path(path), session.config.stash.get(ROWS, []))


# --- the stacks -------------------------------------------------------------------


def _service_urls(config: pytest.Config) -> dict[str, str]:
    urls: dict[str, str] = {}
    for item in _option(config, "--service-url") or []:
        name, _, url = str(item).partition("=")
        if name not in INTERNAL_SERVICES or not url:
            raise pytest.UsageError(
                f"--service-url {item}: expected NAME=URL, NAME one of "
                + ", ".join(INTERNAL_SERVICES)
            )
        urls[name] = url.rstrip("/")
    return urls


def _running_target(config: pytest.Config, mode: Mode) -> Target:
    raw_state_dir = _option(config, "--state-dir")
    state_dir = Path(raw_state_dir).resolve() if raw_state_dir else None
    state = read_state(state_dir) if state_dir else {}
    services = {name: state[name] for name in INTERNAL_SERVICES if name in state}
    return Target(
        mode=mode,
        gateway=str(_option(config, "--base-url")).rstrip("/"),
        auth=(_option(config, "--auth-url") or state.get("auth") or "http://127.0.0.1:8001"),
        kafka=_option(config, "--kafka") or state.get("kafka"),
        services={**services, **_service_urls(config)},
        state_dir=state_dir,
    )


def _local_target(
    mode: Mode, gateway: str, auth: str, kafka: str | None, state_dir: Path
) -> Target:
    state = read_state(state_dir)
    return Target(
        mode=mode,
        gateway=gateway,
        auth=auth,
        kafka=kafka,
        services={name: state[name] for name in INTERNAL_SERVICES if name in state},
        state_dir=state_dir,
    )


@pytest.fixture(scope="session")
def vulnerable_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A second local stack, started with ``--vulnerable`` (HOPSHOP_PROPAGATION=forward)."""
    state_dir = tmp_path_factory.mktemp("vulnerable-stack")
    ports = free_ports(COMPONENTS)
    try:
        start_local_stack(state_dir, ports, vulnerable=True)
    except RuntimeError as exc:
        with contextlib.suppress(RuntimeError):
            stop_local_stack(state_dir)  # whatever did start
        pytest.fail(str(exc), pytrace=False)
    try:
        yield _local_target(
            "vulnerable",
            f"http://127.0.0.1:{ports['gateway']}",
            f"http://127.0.0.1:{ports['auth']}",
            f"127.0.0.1:{ports['kafka']}",
            state_dir,
        )
    finally:
        stop_local_stack(state_dir)


@pytest.fixture(scope="session")
def _targets() -> Iterator[dict[Mode, Target]]:
    """One Target per mode for the whole session: its traffic must outlive fixture switches."""
    made: dict[Mode, Target] = {}
    yield made
    for target in made.values():
        target.close()


def _make_target(request: pytest.FixtureRequest, mode: Mode) -> Target:
    config = request.config
    if _option(config, "--base-url"):
        return _running_target(config, mode)
    if mode == "vulnerable":
        made: Target = request.getfixturevalue("vulnerable_stack")
    else:
        system: System = request.getfixturevalue("system")
        state_dir = system.env.get("state_dir")
        if state_dir is None:  # docker compose: no state dir, no internal URLs from here
            return Target(mode, system.gateway, system.auth, system.kafka, {}, None)
        made = _local_target(mode, system.gateway, system.auth, system.kafka, Path(state_dir))
    announced = detect_mode(made.gateway)
    if announced != mode:
        pytest.fail(
            f"the {mode} stack at {made.gateway} runs in {announced} mode "
            "(judged by its X-Hopshop-Mode header)",
            pytrace=False,
        )
    return made


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest, _targets: dict[Mode, Target]) -> Target:
    mode: Mode = request.param
    if mode not in _targets:
        _targets[mode] = _make_target(request, mode)
    return _targets[mode]


# --- who and what the attacks start from ------------------------------------------

_memo: dict[tuple[int, str], Any] = {}


def once(target: Target, name: str, make: Callable[[], T]) -> T:
    """``make()`` once per target: session fixtures parametrized by mode get rebuilt when the
    mode switches, and a login or a paid order need not be."""
    key = (id(target), name)
    if key not in _memo:
        _memo[key] = make()
    value: T = _memo[key]
    return value


@pytest.fixture
def alice(target: Target) -> Login:
    return once(target, "alice", lambda: login(target, "alice"))


@pytest.fixture
def bob(target: Target) -> Login:
    return once(target, "bob", lambda: login(target, "bob"))


@pytest.fixture
def alice_paid_order(target: Target, alice: Login) -> dict[str, Any]:
    """One of alice's orders, paid: CONFIRMED, invoiced, notified."""
    return once(target, "alice_paid_order", lambda: paid_order(target, alice))


@pytest.fixture(scope="session")
def attacker_key() -> ProofKey:
    """The attacker's own key pair: signs forged tokens and the attacker's DPoP proofs."""
    return ProofKey()


@pytest.fixture(scope="session")
def attacker_host(attacker_key: ProofKey) -> Iterator[AttackerHost]:
    with AttackerHost(attacker_key).running() as host:
        yield host


# --- the recorder -------------------------------------------------------------------


@pytest.fixture
def attack(request: pytest.FixtureRequest, target: Target) -> Iterator[Recorder]:
    """The row of this attack in this mode; the test calls ``expect`` then ``observe``."""
    node = request.node
    recorder = Recorder(
        attack=attack_name(node, target.mode),
        category=str(request.module.CATEGORY),
        mode=target.mode,
        rows=request.config.stash[ROWS],
    )
    yield recorder
    if recorder.row is not None:
        return
    report = getattr(node, "report_call", None)
    if report is not None and report.skipped:
        return  # said why in pytest's own summary; no outcome to record
    if report is None:
        recorder.failed_before_observing("the harness failed before the attack")
    elif report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = str(getattr(crash, "message", None) or report.longrepr or "failed")
        recorder.failed_before_observing(message.strip().splitlines()[0])
    else:
        recorder.failed_before_observing("the test observed no outcome")
        pytest.fail("an attack test must call attack.observe()", pytrace=False)
