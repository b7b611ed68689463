"""`hopshop attack`: the table, the summary line and the exit codes (pure logic, no stack).

The command against a real stack is exercised by e2e-tests/test_attack_command.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hopshop_stack import attack
from hopshop_stack.attack import Row, Stack
from hopshop_stack.cli import main


def row(
    name: str,
    *,
    mode: str = "secure",
    category: str = "replay",
    expected: str = "refused (401, invalid_token)",
    observed: str | None = None,
    result: str = "refused",
    why: str = "aud check (hopauth/rfc9068.py)",
) -> Row:
    observed = expected if observed is None else observed
    return Row(
        attack=name,
        category=category,
        mode=mode,
        expected=expected,
        observed=observed,
        why=why,
        as_expected=observed == expected,
        expected_result=result,
    )


SECURE = row("billing token replayed at order")
VULNERABLE = row(
    "billing token replayed at order",
    mode="vulnerable",
    expected="succeeded (200)",
    result="succeeded",
    why="audience not checked: a forwarded token is valid at every service",
)
FORGED = row(
    "forged token at the gateway (alg none)", category="forgery and confusion", mode="vulnerable"
)
SURPRISE = row(
    "forged payment succeeded confirms nothing",
    category="forgery and confusion",
    expected="refused (not confirmed)",
    observed="succeeded (order CONFIRMED)",
)


def test_each_attack_is_a_block_under_its_category_and_mode() -> None:
    lines = attack.render_table([SECURE, VULNERABLE]).splitlines()
    assert lines == [
        "replay (secure mode)",
        "  billing token replayed at order",
        "      observed  refused (401, invalid_token), as expected",
        "      why       aud check (hopauth/rfc9068.py)",
        "",
        "replay (vulnerable mode)",
        "  billing token replayed at order",
        "      observed  succeeded (200), as expected",
        "      why       audience not checked: a forwarded token is valid at every service",
    ]


def test_secure_rows_come_first_then_by_category_in_suite_order() -> None:
    late = row("a later replay", mode="secure")
    rows = attack.ordered([VULNERABLE, FORGED, SURPRISE, SECURE, late])
    assert rows == [SECURE, late, SURPRISE, VULNERABLE, FORGED]


def test_a_surprise_is_marked_and_shows_expected_and_observed_apart() -> None:
    table = attack.render_table([SECURE, SURPRISE]).splitlines()
    assert [line for line in table if line.startswith("✗")] == [
        "✗ forged payment succeeded confirms nothing"
    ]
    surprise = table[table.index("✗ forged payment succeeded confirms nothing") :]
    assert surprise[1:3] == [
        "      expected  refused (not confirmed)",
        "      observed  succeeded (order CONFIRMED): NOT as expected",
    ]


def _readme_rows() -> list[Row]:
    """Every attack of README.md's merged table, in both modes: the texts the suite prints."""
    text = (attack.REPO / "README.md").read_text(encoding="utf-8")
    rows: list[Row] = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip()[1:-1].split(" | ")]
        if not line.startswith("| ") or len(cells) != 5 or cells[0] == "attack":
            continue
        name, category, secure, vulnerable, why = cells
        secure_why, _, vulnerable_why = why.partition(" **Vulnerable:** ")
        rows.append(row(name, category=category, expected=secure, why=secure_why))
        rows.append(
            row(
                name,
                category=category,
                mode="vulnerable",
                expected=vulnerable,
                why=vulnerable_why or secure_why,
            )
        )
    return rows


README_ROWS = _readme_rows()


# The suite's longest attack name and longest why (a vulnerable row's), as README.md quotes them.
LONG_NAME = (
    "customer reads an invoice of another customer (list at billing, naming her in the query)"
)
LONG_WHY = (
    "audience not checked: a forwarded token is valid at every service, and no caller check; "
    "inventory asks only for the user's orders:write, which the forwarded token carries: "
    "stock held for no order"
)


def test_no_line_is_wider_than_a_projector() -> None:
    rows = [
        row(LONG_NAME, category="scope escalation", why=LONG_WHY),
        row(
            "exchanged token exchanged again to drop the act chain",
            category="scope escalation",
            expected="refused: 200 but act kept (order ← gateway)",
            observed="succeeded (200, act: order)",
            why=LONG_WHY,
        ),
        row("x" * 130, why="y" * 130),  # no space to wrap at: cut, never let through
        *README_ROWS,
    ]
    lines = attack.render_table(rows).splitlines()
    assert max(len(line) for line in lines) <= attack.MAX_WIDTH


def test_a_long_why_wraps_under_its_first_word_and_loses_nothing() -> None:
    lines = attack.render_table([row(LONG_NAME, why=LONG_WHY)]).splitlines()
    assert lines[:3] == [
        "replay (secure mode)",
        f"  {LONG_NAME}",
        "      observed  refused (401, invalid_token), as expected",
    ]
    why = lines[3:]
    assert len(why) == 3 and why[0].startswith("      why       audience not checked")
    assert all(line.startswith(" " * 16) and line[16] != " " for line in why[1:])
    assert " ".join(line[16:] for line in why) == LONG_WHY


def test_the_readme_table_is_read_for_realistic_rows() -> None:
    assert len(README_ROWS) >= 140  # every attack, in both modes
    assert LONG_NAME in {r.attack for r in README_ROWS}
    assert LONG_WHY in {r.why for r in README_ROWS}
    assert max(len(r.why) for r in README_ROWS) == len(LONG_WHY)


def test_summary_counts_refused_and_succeeded() -> None:
    assert attack.summary([SECURE, VULNERABLE, FORGED]) == (
        "3 attacks: 3 as expected (2 refused, 1 succeeded in vulnerable mode)"
    )


def test_summary_names_the_surprises() -> None:
    assert attack.summary([SECURE, SURPRISE]) == (
        "2 attacks: 1 as expected (1 refused, 0 succeeded), 1 NOT as expected"
    )


@pytest.mark.parametrize(
    ("rows", "returncode", "code"),
    [
        ([SECURE, VULNERABLE], 0, 0),
        ([SECURE, SURPRISE], 1, 1),
        ([SECURE, SURPRISE], 0, 1),  # a row that disagrees is enough
        ([SECURE], 1, 1),  # pytest failed elsewhere (a control test, the harness)
        ([], 0, 1),  # the suite produced nothing: never a pass
        ([], 4, 1),  # pytest could not even collect
    ],
)
def test_exit_code(rows: list[Row], returncode: int, code: int) -> None:
    assert attack.exit_code(rows, returncode) == code


def test_rows_are_read_from_the_suites_report(tmp_path: Path) -> None:
    report = tmp_path / "attacks.json"
    report.write_text(
        json.dumps(
            {
                "version": 1,
                "rows": [
                    {
                        "attack": "billing token replayed at order",
                        "category": "replay",
                        "mode": "secure",
                        "expected": "refused (401, invalid_token)",
                        "observed": "refused (401, invalid_token)",
                        "why": "aud check (hopauth/rfc9068.py)",
                        "as_expected": True,
                        "expected_result": "refused",
                        "observed_result": "refused",
                        "detail": "wrong audience",
                    }
                ],
            }
        )
    )
    assert attack.load_rows(report) == [SECURE]
    assert attack.load_rows(tmp_path / "missing.json") == []


def test_the_pytest_command_points_the_suite_at_the_stack(tmp_path: Path) -> None:
    stack = Stack("http://127.0.0.1:9000", "http://127.0.0.1:9001", "127.0.0.1:9092", True)
    command = attack.pytest_command(stack, tmp_path, tmp_path / "r.json", tmp_path / "t", "replay")
    assert command[1:4] == ["-m", "pytest", str(attack.SUITE)]

    def value(option: str) -> str:
        return command[command.index(option) + 1]

    assert value("--base-url") == "http://127.0.0.1:9000"
    assert value("--auth-url") == "http://127.0.0.1:9001"
    assert value("--kafka") == "127.0.0.1:9092"
    assert value("--state-dir") == str(tmp_path)
    assert value("--mode") == "vulnerable"
    assert value("--attack-report") == str(tmp_path / "r.json")
    assert value("-k") == "replay"
    assert (attack.SUITE / "conftest.py").is_file()  # the repository layout it relies on
    # Attacks only: the harness' unit tests and the README check need no stack.
    ignored = [arg.removeprefix("--ignore=") for arg in command if arg.startswith("--ignore=")]
    assert ignored == [
        str(attack.SUITE / "test_harness.py"),
        str(attack.SUITE / "test_readme_tables.py"),
    ]
    assert all(Path(path).is_file() for path in ignored)


def test_a_selection_pytest_cannot_parse_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest_said = "ERROR: Wrong expression passed to '-k': billing token: at column 9: ..."
    assert attack._no_match("billing token", f"\n{pytest_said}\n") == 2
    assert capsys.readouterr().err == (
        "hopshop: -k 'billing token' is not a valid selection:\n"
        "  Wrong expression passed to '-k': billing token: at column 9: ...\n"
    )


def test_a_selection_of_no_attack_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert attack._no_match("zzz", "85 deselected in 0.2s") == 2
    err = capsys.readouterr().err
    assert err.startswith("hopshop: no attack matches -k 'zzz'.\n")
    assert "deselected" not in err
    assert max(len(line) for line in err.splitlines()) <= attack.MAX_WIDTH


def test_no_running_stack_is_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["attack", "--state-dir", str(tmp_path)]) == 2
    assert "no running stack" in capsys.readouterr().err


def test_an_unreadable_state_file_is_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "stack.json").write_text("not json")
    assert main(["attack", "--state-dir", str(tmp_path)]) == 2
    assert "not a hopshop state file" in capsys.readouterr().err
