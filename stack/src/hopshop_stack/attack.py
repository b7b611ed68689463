"""`hopshop attack`: the attack suite against the running stack, as one table.

It runs ``python -m pytest <repo>/e2e-tests/attacks`` against the stack of the
state dir (its gateway, auth, Kafka and internal service addresses, and its
log files for the leakage scan), in the mode that stack runs in, with
``--attack-report`` into a temporary file, then prints every attack (grouped
by category, with its outcome and why) and a summary line. The suite's own
unit tests and its README check are left out: they need no stack, and
``make test`` runs them.

The output fits a 100-column terminal (a projector): each attack is a small
block, its name, then its outcome and its why on indented lines, wrapped.

Exit code: 0 every attack went as expected, 1 one did not (or the suite
could not run), 2 no stack is running, or ``-k`` matches no attack.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from . import state
from .lifecycle import RUN, error, is_ours_and_running, state_dir_hint

OK = 0
NOT_AS_EXPECTED = 1
NO_STACK = 2
NO_MATCH = 2  # a usage error: -k selects no attack (or pytest cannot parse it)

# pytest's exit codes that mean "nothing to run" rather than "an attack went wrong".
PYTEST_USAGE_ERROR = 4
PYTEST_NO_TESTS = 5

#: The suite lives in the repository, next to the package: <repo>/stack/src/hopshop_stack.
REPO = Path(__file__).resolve().parents[3]
SUITE = REPO / "e2e-tests" / "attacks"

#: Not attacks: the harness' own unit tests and the README check (make test runs them).
NOT_ATTACKS = ("test_harness.py", "test_readme_tables.py")

CATEGORY_ORDER = ("replay", "scope escalation", "forgery and confusion", "abuse", "leakage")
# The table is what a trainer projects: no line of it is wider than this.
MAX_WIDTH = 100
LABEL = 10  # "expected  ", "observed  ", "why       "
DETAIL_INDENT = " " * 6


@dataclass(frozen=True)
class Row:
    attack: str
    category: str
    mode: str
    expected: str
    observed: str
    why: str
    as_expected: bool
    expected_result: str

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Row:
        return cls(
            attack=str(raw["attack"]),
            category=str(raw["category"]),
            mode=str(raw["mode"]),
            expected=str(raw["expected"]),
            observed=str(raw["observed"]),
            why=str(raw.get("why", "")),
            as_expected=bool(raw["as_expected"]),
            expected_result=str(raw["expected_result"]),
        )


def load_rows(path: Path) -> list[Row]:
    """The rows of an ``--attack-report`` file; [] when there is none (the suite never ran)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    return [Row.from_json(item) for item in raw.get("rows", [])]


def ordered(rows: Sequence[Row]) -> list[Row]:
    """Secure mode first, then by category, keeping the suite's order within a category."""

    def key(item: tuple[int, Row]) -> tuple[int, int, int]:
        index, row = item
        category = (
            CATEGORY_ORDER.index(row.category)
            if row.category in CATEGORY_ORDER
            else len(CATEGORY_ORDER)
        )
        return (0 if row.mode == "secure" else 1, category, index)

    return [row for _, row in sorted(enumerate(rows), key=key)]


def render_table(rows: Sequence[Row]) -> str:
    """One block per attack under a ``category (mode mode)`` heading, at most MAX_WIDTH wide.

    ``✗`` starts the block of an attack that did not go as expected; such a
    block shows expected and observed apart. The why wraps onto lines
    indented under its first word.
    """
    lines: list[str] = []
    group: tuple[str, str] | None = None
    for row in ordered(rows):
        if (row.mode, row.category) != group:
            group = (row.mode, row.category)
            if lines:
                lines.append("")
            lines.append(f"{row.category} ({row.mode} mode)")
        lines += _block(row)
    return "\n".join(lines)


def _block(row: Row) -> list[str]:
    lines = _wrap(row.attack, "  " if row.as_expected else "✗ ", "    ")
    if row.as_expected:
        lines += _field("observed", f"{row.observed}, as expected")
    else:
        lines += _field("expected", row.expected)
        lines += _field("observed", f"{row.observed}: NOT as expected")
    if row.why:
        lines += _field("why", row.why)
    return lines


def _field(label: str, text: str) -> list[str]:
    first = f"{DETAIL_INDENT}{label:<{LABEL}}"
    return _wrap(text, first, " " * len(first))


def _wrap(text: str, first: str, rest: str) -> list[str]:
    # Cut at spaces only: scopes, client ids and file names hold hyphens and slashes.
    return textwrap.wrap(
        text,
        width=MAX_WIDTH,
        initial_indent=first,
        subsequent_indent=rest,
        break_on_hyphens=False,
    ) or [first.rstrip()]


def summary(rows: Sequence[Row]) -> str:
    """``41 attacks: 41 as expected (33 refused, 8 succeeded in vulnerable mode)``."""
    good = [row for row in rows if row.as_expected]
    refused = sum(1 for row in good if row.expected_result == "refused")
    succeeded = [row for row in good if row.expected_result == "succeeded"]
    vulnerable_only = succeeded and all(row.mode == "vulnerable" for row in succeeded)
    where = " in vulnerable mode" if vulnerable_only else ""
    text = (
        f"{len(rows)} attacks: {len(good)} as expected "
        f"({refused} refused, {len(succeeded)} succeeded{where})"
    )
    surprises = len(rows) - len(good)
    return f"{text}, {surprises} NOT as expected" if surprises else text


def exit_code(rows: Sequence[Row], pytest_returncode: int) -> int:
    """0 only when the suite ran, produced rows, and every one went as expected."""
    if not rows or pytest_returncode != 0:
        return NOT_AS_EXPECTED
    return OK if all(row.as_expected for row in rows) else NOT_AS_EXPECTED


@dataclass(frozen=True)
class Stack:
    gateway: str
    auth: str
    kafka: str | None
    vulnerable: bool


def running_stack(state_dir: Path) -> Stack | None:
    found = state.load(state_dir)
    if found is None:
        return None
    running = {c.name: c for c in found.components if is_ours_and_running(c)}
    if "gateway" not in running or "auth" not in running:
        return None
    kafka = running.get("kafka")
    return Stack(
        gateway=running["gateway"].address,
        auth=running["auth"].address,
        kafka=kafka.address if kafka is not None else None,
        vulnerable=found.vulnerable,
    )


def pytest_command(
    stack: Stack, state_dir: Path, report: Path, basetemp: Path, select: str | None
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(SUITE),
        "--base-url",
        stack.gateway,
        "--auth-url",
        stack.auth,
        "--state-dir",
        str(state_dir),
        "--mode",
        "vulnerable" if stack.vulnerable else "secure",
        "--attack-report",
        str(report),
        f"--basetemp={basetemp}",
        "-q",
        *(f"--ignore={SUITE / name}" for name in NOT_ATTACKS),
        "-p",
        "no:cacheprovider",
        "--tb=line",
        "-rfE",
    ]
    if stack.kafka:
        command += ["--kafka", stack.kafka]
    if select:
        command += ["-k", select]
    return command


def attack(state_dir: Path, select: str | None = None, out: TextIO = sys.stdout) -> int:
    state_dir = state_dir.resolve()
    try:
        stack = running_stack(state_dir)
    except state.StateError as exc:
        error(str(exc))
        return NO_STACK
    if stack is None:
        error(
            f"no running stack with a gateway and auth in {state_dir}; "
            f"start one with `{RUN} up -d{state_dir_hint(state_dir)}`"
        )
        return NO_STACK
    if not SUITE.is_dir():
        error(f"the attack suite is not at {SUITE}: run hopshop from a checkout of the repository")
        return NOT_AS_EXPECTED

    mode = "vulnerable" if stack.vulnerable else "secure"
    print(
        f"hopshop attack: the attack suite against the {mode} stack at {stack.gateway}\n",
        file=out,
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="hopshop-attack-") as tmp:
        report = Path(tmp) / "attacks.json"
        command = pytest_command(stack, state_dir, report, Path(tmp) / "pytest", select)
        result = subprocess.run(  # noqa: S603 - our own interpreter and suite
            command, cwd=REPO, capture_output=True, text=True, check=False
        )
        rows = load_rows(report)

    if not rows and select and result.returncode in (0, PYTEST_USAGE_ERROR, PYTEST_NO_TESTS):
        return _no_match(select, result.stdout + result.stderr)
    if rows:
        print(render_table(rows), file=out)
        print(f"\n{summary(rows)}", file=out)
    code = exit_code(rows, result.returncode)
    if code != OK:
        # The suite's own one-line reasons (--tb=line, -rfE), for whoever has to look.
        error(f"the attack suite did not pass (pytest exit code {result.returncode}):")
        print(_tail(result.stdout + result.stderr), file=sys.stderr)
    return code


def _no_match(select: str, output: str) -> int:
    """``-k`` selected no attack: say so, not pytest's count of deselected tests."""
    # pytest's own reason when it could not parse the expression ("ERROR: Wrong expression ...").
    reason = next((line for line in output.splitlines() if line.startswith("ERROR:")), "")
    if reason:
        error(f"-k {select!r} is not a valid selection:\n  {reason.removeprefix('ERROR: ')}")
    else:
        error(
            f"no attack matches -k {select!r}.\n"
            "  -k matches parts of the attacks' test names (words joined by _), e.g.\n"
            "  -k replay, -k 'dpop and not bearer', -k forged_token, -k internal"
        )
    return NO_MATCH


def _tail(output: str, lines: int = 40) -> str:
    return "\n".join(output.strip().splitlines()[-lines:])
