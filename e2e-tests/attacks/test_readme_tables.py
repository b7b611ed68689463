"""The README tables say what the attacks declare: each one's outcome and why, per mode.

Both tables are written by hand (the repository README's merged one and this
suite's per category, e2e-tests/attacks/README.md), so this compares them with
the rows the attacks just recorded, and they cannot drift from the suite.
It runs after every attack (the conftest orders it last) and checks the rows
that ran; with nothing deselected it also wants no row in a README that names
no attack, and the summary lines the repository README quotes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from recorder import ROWS, Row, attack_name

SUITE_README = Path(__file__).parent / "README.md"
REPO_README = Path(__file__).resolve().parents[2] / "README.md"
# In a why cell, the secure mode's why, then this, then the vulnerable mode's where it differs.
VULNERABLE = " **Vulnerable:** "


@dataclass(frozen=True)
class TableRow:
    category: str
    outcome: dict[str, str]  # mode -> the outcome's label, as the suite prints it
    why: dict[str, str]  # mode -> why


def _section(text: str, heading: str) -> list[str]:
    """The lines under ``heading`` up to the next heading of its level."""
    _, _, rest = text.partition(f"\n{heading}\n")
    assert rest, f"no {heading!r} section"
    level = heading.split(" ", 1)[0] + " "
    return rest.split(f"\n{level}", 1)[0].splitlines()


def _cells(line: str) -> list[str] | None:
    """The cells of a table's body row; None for anything else (text, header, rule)."""
    if not line.startswith("| ") or line.startswith(("| attack |", "|---")):
        return None
    return [cell.strip() for cell in line.strip()[1:-1].split(" | ")]


def _row(category: str, secure: str, vulnerable: str, why: str) -> TableRow:
    secure_why, _, vulnerable_why = why.partition(VULNERABLE)
    return TableRow(
        category,
        {"secure": secure, "vulnerable": vulnerable},
        {"secure": secure_why, "vulnerable": vulnerable_why or secure_why},
    )


def repo_table() -> dict[str, TableRow]:
    """README.md: one table, | attack | category | secure | vulnerable | why |."""
    lines = _section(REPO_README.read_text(encoding="utf-8"), "## The attack suite, in both modes")
    table: dict[str, TableRow] = {}
    for line in lines:
        cells = _cells(line)
        if cells is not None and len(cells) == 5:
            attack, category, secure, vulnerable, why = cells
            table[attack] = _row(category, secure, vulnerable, why)
    return table


def suite_tables() -> dict[str, TableRow]:
    """e2e-tests/attacks/README.md: per ``**category**``, | attack | secure | vulnerable | why |."""
    lines = _section(SUITE_README.read_text(encoding="utf-8"), "## The table")
    table: dict[str, TableRow] = {}
    category = ""
    for line in lines:
        if line.startswith("**") and line.endswith("**"):
            category = line.strip("*")
        cells = _cells(line)
        if cells is not None and len(cells) == 4:
            attack, secure, vulnerable, why = cells
            table[attack] = _row(category, secure, vulnerable, why)
    return table


def differences(name: str, table: dict[str, TableRow], rows: list[Row]) -> Iterator[str]:
    for row in rows:
        if row.expected == "?":  # the test broke before it declared anything
            continue
        where = f"{name}: {row.attack!r} ({row.mode})"
        written = table.get(row.attack)
        if written is None:
            yield f"{where}: no row"
            continue
        if written.category != row.category:
            yield f"{where}: category {written.category!r}, the suite says {row.category!r}"
        if written.outcome[row.mode] != row.expected:
            yield f"{where}: outcome {written.outcome[row.mode]!r}, the suite {row.expected!r}"
        if written.why[row.mode] != row.why:
            yield f"{where}: why {written.why[row.mode]!r},\n    the suite {row.why!r}"


def summary(rows: list[Row]) -> str:
    """What ``hopshop attack`` prints below a run in which every attack went as expected."""
    succeeded = sum(1 for row in rows if row.expected_result == "succeeded")
    where = " in vulnerable mode" if succeeded and rows[0].mode == "vulnerable" else ""
    return (
        f"{len(rows)} attacks: {len(rows)} as expected "
        f"({len(rows) - succeeded} refused, {succeeded} succeeded{where})"
    )


def test_the_readme_tables_say_what_the_attacks_declare(request: pytest.FixtureRequest) -> None:
    config = request.config
    modes_of = {
        item: str(item.callspec.params["target"])
        for item in request.session.items
        if isinstance(item, pytest.Function) and "attack" in item.fixturenames
    }
    if not modes_of:
        pytest.skip("no attack was selected, so there is nothing to compare")
    rows: list[Row] = config.stash[ROWS]
    selected = bool(config.option.keyword or config.option.markexpr or config.option.deselect)
    modes = set(modes_of.values())
    names = {attack_name(item, mode) for item, mode in modes_of.items()}

    problems: list[str] = []
    for name, table in (
        ("README.md", repo_table()),
        ("e2e-tests/attacks/README.md", suite_tables()),
    ):
        problems += differences(name, table, rows)
        problems += [f"{name}: {attack!r} has no row" for attack in sorted(names - set(table))]
        if not selected:
            problems += [
                f"{name}: {attack!r} is no attack" for attack in sorted(set(table) - names)
            ]

    readme = REPO_README.read_text(encoding="utf-8")
    for mode in sorted(modes):
        ran = [row for row in rows if row.mode == mode]
        if not selected and len(ran) == len(names):  # every attack of this mode declared its row
            line = summary(ran)
            quoted = [
                text.partition(":")[2].strip()
                for text in readme.splitlines()
                if text.startswith(f"{mode}:")
            ]
            if line not in quoted:
                problems.append(f"README.md: the {mode} summary should read {mode}: {line!r}")
    assert not problems, "\n".join(problems)
