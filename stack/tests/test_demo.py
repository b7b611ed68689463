"""What `hopshop demo` says under each hop: the words a trainer reads out."""

from __future__ import annotations

from hopshop_stack.demo import Hop, explain

USER = "5d1c0b6e-user"


def hop(service: str, aud: list[str], client_id: str, sub: str, act: list[str]) -> Hop:
    return Hop(0.0, service, "POST", "/x", 200, aud, [], client_id, sub, act)


def test_the_users_token_at_the_gateway_is_made_for_it() -> None:
    words = explain(hop("gateway", ["gateway"], "web", USER, []), USER)
    assert words == "the user's own token from login (client web), made for gateway"


def test_a_forwarded_token_is_named_as_one_where_it_should_have_been_refused() -> None:
    # Vulnerable mode: order receives the gateway's token unchanged.
    words = explain(hop("order", ["gateway"], "web", USER, []), USER)
    assert "forwarded: made for gateway, yet order took it" in words


def test_exchanged_and_client_credentials_tokens() -> None:
    exchanged = explain(hop("inventory", ["inventory"], "order", USER, ["order", "gateway"]), USER)
    assert exchanged.startswith("exchanged token: made for inventory alone")
    worker = explain(hop("order", ["order"], "billing-worker", "billing-worker", []), USER)
    assert worker.startswith("client-credentials token: billing-worker acting as itself")
