"""Principal.from_claims: claim shapes, the act chain, caller and service tokens."""

from __future__ import annotations

from typing import Any

import pytest
from hopauth import InvalidTokenError, Principal
from hopauth_support import default_claims


def test_act_chain_outermost_first() -> None:
    claims = default_claims(
        client_id="order", act={"sub": "order", "act": {"sub": "gateway", "act": {"sub": "web"}}}
    )
    principal = Principal.from_claims(claims)
    assert principal.actors == ("order", "gateway", "web")
    assert principal.current_actor == "order"
    assert principal.caller == "order"
    assert principal.is_delegated
    assert not principal.is_service


def test_support_staff_actor_is_the_caller() -> None:
    # gateway exchanged alice's token with carol as actor token.
    principal = Principal.from_claims(default_claims(client_id="gateway", act={"sub": "carol"}))
    assert principal.subject == "alice"
    assert principal.caller == "carol"


def test_no_act_caller_is_client() -> None:
    principal = Principal.from_claims(default_claims(client_id="web", act=None))
    assert principal.actors == ()
    assert principal.current_actor is None
    assert principal.caller == "web"
    assert not principal.is_delegated
    assert not principal.is_service  # sub is a user, not the client


def test_client_credentials_token_is_service() -> None:
    claims = default_claims(sub="billing-worker", client_id="billing-worker", act=None, sid=None)
    principal = Principal.from_claims(claims)
    assert principal.is_service
    assert principal.caller == "billing-worker"
    assert principal.session_id is None


def test_delegated_token_whose_sub_equals_client_is_not_service() -> None:
    claims = default_claims(sub="order", client_id="order", act={"sub": "gateway"})
    assert not Principal.from_claims(claims).is_service


def test_scopes_and_has_scopes() -> None:
    principal = Principal.from_claims(default_claims(scope="  orders:read  orders:write "))
    assert principal.scopes == frozenset({"orders:read", "orders:write"})
    assert principal.has_scopes("orders:read")
    assert principal.has_scopes("orders:read", "orders:write")
    assert principal.has_scopes()
    assert not principal.has_scopes("orders:read", "admin")


def test_missing_scope_is_empty() -> None:
    claims = default_claims()
    del claims["scope"]
    assert Principal.from_claims(claims).scopes == frozenset()


def test_cnf_kept_read_only() -> None:
    principal = Principal.from_claims(default_claims(cnf={"jkt": "abc"}))
    assert principal.confirmation == {"jkt": "abc"}
    with pytest.raises(TypeError):
        principal.confirmation["jkt"] = "x"  # type: ignore[index]


def test_frozen() -> None:
    principal = Principal.from_claims(default_claims())
    with pytest.raises(AttributeError):
        principal.subject = "mallory"  # type: ignore[misc]


def nested_act(depth: int) -> dict[str, Any]:
    act: dict[str, Any] = {"sub": f"svc-{depth}"}
    for i in range(depth - 1, 0, -1):
        act = {"sub": f"svc-{i}", "act": act}
    return act


def test_act_depth_capped() -> None:
    assert len(Principal.from_claims(default_claims(act=nested_act(10))).actors) == 10
    with pytest.raises(InvalidTokenError, match="nested too deeply"):
        Principal.from_claims(default_claims(act=nested_act(11)))


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"act": "gateway"}, "act claim must be an object"),
        ({"act": {"client_id": "gateway"}}, "act claim must have a non-empty string sub"),
        (
            {"act": {"sub": "order", "act": {"sub": 5}}},
            "act claim must have a non-empty string sub",
        ),
        ({"act": {"sub": "order", "act": ["gateway"]}}, "act claim must be an object"),
        ({"scope": ["a", "b"]}, "scope claim must be a space-delimited string"),
        ({"aud": 3}, "aud claim must be a string or a list of strings"),
        ({"aud": ["order", 3]}, "aud claim must be a string or a list of strings"),
        ({"aud": []}, "aud claim must be a string or a list of strings"),
        ({"sid": 12}, "sid claim must be a non-empty string"),
        ({"cnf": "x"}, "cnf claim must be an object"),
        ({"exp": "soon"}, "exp claim must be a number"),
        # int(inf) raises OverflowError and int(nan) ValueError: a 500, not a refusal.
        ({"exp": float("inf")}, "exp claim must be a number"),
        ({"iat": float("nan")}, "iat claim must be a number"),
        ({"iss": None}, "iss claim must be a non-empty string"),
    ],
)
def test_bad_shapes_refused(overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidTokenError) as caught:
        Principal.from_claims(default_claims(**overrides))
    assert caught.value.reason == reason
