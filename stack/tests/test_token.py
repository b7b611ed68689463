"""`hopshop token`: its options, the refusal without a stack, and the note on stderr.

The token itself, from a real login at a real stack, is checked in
e2e-tests/test_token_command.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hopshop_stack import demo, state
from hopshop_stack.cli import build_parser, main
from hopshop_stack.token import default_scope, note

# Shaped like the claims of a real login's token (RFC 9068 §2.2); never printed here.
CLAIMS = {
    "iss": "http://127.0.0.1:8001",
    "sub": "d7e5afe9-dd92-4c97-8496-7fa3abb99795",
    "aud": "gateway",
    "client_id": "web",
    "scope": demo.SCOPE,
    "exp": 4_102_444_800,
}


def test_defaults_are_alice_and_the_demos_scopes() -> None:
    args = build_parser().parse_args(["token"])
    assert (args.command, args.user, args.scope) == ("token", "alice", None)
    assert default_scope(args.user) == default_scope("bob") == demo.SCOPE


def test_support_staff_also_ask_for_the_support_scopes_by_default() -> None:
    scopes = default_scope("carol").split()
    assert set(scopes) == set(demo.SCOPE.split()) | {"support:read", "support:broadcast"}
    assert len(scopes) == len(set(scopes))


def test_a_user_and_scopes_apart_by_commas_or_spaces() -> None:
    args = build_parser().parse_args(["token", "carol", "--scope", "orders:read, support:read"])
    assert (args.user, args.scope) == ("carol", "orders:read support:read")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["token", "mallory"], "argument user: invalid choice: 'mallory'"),
        (["token", "--scope", " , "], "argument --scope: no scope given"),
    ],
)
def test_bad_options_are_usage_errors(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_no_running_stack_is_exit_code_2_and_says_how_to_start_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", "--state-dir", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # `T=$(hopshop token)` gets nothing rather than a message
    assert err.startswith("hopshop: no running stack with auth in ")
    assert f"start one with `uv run hopshop up -d --state-dir {tmp_path}`" in err


def test_a_stack_whose_auth_is_gone_is_not_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ended = subprocess.Popen(["true"])  # noqa: S607 - a pid that has surely exited
    ended.wait()
    auth = state.ComponentState(
        name="auth",
        kind="service",
        pid=ended.pid,
        port=8001,
        address="http://127.0.0.1:8001",
        health_url=None,
        log=str(tmp_path / "auth.log"),
    )
    found = state.StackState("now", "detached", None, vulnerable=False, components=[auth])
    state.save(tmp_path, found)
    assert main(["token", "--state-dir", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "no running stack with auth" in err


def test_an_unreadable_state_file_is_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "stack.json").write_text("not json")
    assert main(["token", "--state-dir", str(tmp_path)]) == 2
    assert "not a hopshop state file" in capsys.readouterr().err


def test_the_note_says_what_the_token_is_and_what_order_will_do() -> None:
    lines = note(CLAIMS, "alice", demo.SCOPE, False, "http://127.0.0.1:8002")
    text = "\n".join(lines)
    assert "aud gateway" in text and "client web" in text and "bearer" in text
    assert f"scope {demo.SCOPE}" in text
    assert "expires 00:00:00 UTC" in text  # 2100-01-01
    assert "dev-realm token for the replay exercise" in text
    assert 'curl -H "Authorization: Bearer $T" http://127.0.0.1:8002/orders' in text
    assert "order refuses it: 401, wrong audience (gateway)" in text
    assert "  T=$(uv run hopshop token alice)\n" in text
    assert "asked for" not in text  # granted what was asked
    assert "eyJ" not in text
    assert max(map(len, lines)) <= demo.MAX_WIDTH


def test_in_vulnerable_mode_the_note_says_order_takes_it() -> None:
    text = "\n".join(note(CLAIMS, "alice", demo.SCOPE, True, "http://127.0.0.1:8002"))
    assert "this stack runs --vulnerable: order takes it (200)." in text
    assert "refuses" not in text


def test_a_token_without_orders_read_is_not_promised_a_200() -> None:
    claims = {**CLAIMS, "scope": ""}
    text = "\n".join(note(claims, "alice", "support:read", True, "http://127.0.0.1:8002"))
    assert "(asked for support:read: alice's roles allow none of it)" in text
    assert "the token lacks orders:read: 403" in text
    assert "(200)" not in text


def test_a_long_state_dir_does_not_break_the_command_to_copy() -> None:
    hint = " --state-dir /tmp/" + "x" * 90
    lines = note(CLAIMS, "alice", demo.SCOPE, False, "http://127.0.0.1:8002", hint)
    assert f"  T=$(uv run hopshop token alice{hint})" in lines


def test_scopes_the_user_may_not_have_are_named() -> None:
    claims = {**CLAIMS, "scope": "orders:read"}
    lines = note(claims, "bob", "orders:read support:read", False, None, " --state-dir x")
    text = "\n".join(lines)
    assert "scope orders:read\n" in text
    assert "(asked for orders:read support:read: bob's roles do not allow the rest)" in text
    assert "T=$(uv run hopshop token bob --state-dir x)" in text
    assert "curl" not in text  # no order in this stack (--only)
