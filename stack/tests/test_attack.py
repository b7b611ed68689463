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


def test_the_table_has_a_header_a_rule_and_one_line_per_attack() -> None:
    lines = attack.render_table([SECURE, VULNERABLE]).splitlines()
    assert lines[0].split() == ["attack", "category", "mode", "expected", "observed", "why"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert len(lines) == 4
    assert "secure" in lines[2] and "refused (401, invalid_token)" in lines[2]
    assert lines[3].endswith("audience not checked: a forwarded token is valid at every service")


def test_columns_line_up() -> None:
    lines = attack.render_table([SECURE, VULNERABLE, FORGED]).splitlines()
    starts = {
        line.index(" secure ") if " secure " in line else line.index(" vulnerable ")
        for line in lines[2:]
    }
    assert len(starts) == 1, lines


def test_secure_rows_come_first_then_by_category_in_suite_order() -> None:
    late = row("a later replay", mode="secure")
    rows = attack.ordered([VULNERABLE, FORGED, SURPRISE, SECURE, late])
    assert rows == [SECURE, late, SURPRISE, VULNERABLE, FORGED]


def test_a_surprise_is_marked_in_the_table() -> None:
    table = attack.render_table([SECURE, SURPRISE]).splitlines()
    assert not table[2].startswith("✗")
    assert [line for line in table if line.startswith("✗")] == [
        line for line in table if "forged payment" in line
    ]


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
