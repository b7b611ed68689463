"""What `hopshop demo` prints: the words a trainer reads out, and a picture that fits the screen."""

from __future__ import annotations

import io
import re

from hopshop_stack.demo import (
    MAX_WIDTH,
    Hop,
    explain,
    fit,
    hop_lines,
    print_hops,
    print_user_token,
    wrap_cell,
)

USER = "5d1c0b6e-user"
SCREEN = 100  # the projector's width, as the task states it; MAX_WIDTH must not exceed it


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


# --- a full purchase, as a real `hopshop demo` collected it ----------------------

ALICE = "5e388ae3-2f7c-4ec6-b3e9-678419498fe1"
ORDER = "ord_db06ac855d734954865bc7b294501c6c"
USER_SCOPES = ["billing:read", "notifications:read", "orders:read", "orders:write"]


def at(
    service: str,
    request: str,
    aud: str,
    scope: list[str],
    client_id: str,
    sub: str = ALICE,
    act: tuple[str, ...] = (),
    status: int = 200,
) -> Hop:
    method, path = request.split(" ", 1)
    return Hop(0.0, service, method, path, status, [aud], scope, client_id, sub, list(act))


def kafka_hops() -> list[Hop]:
    """Work after a Kafka event: client-credentials tokens, the same in both modes."""
    return [
        at("order", f"GET /internal/orders/{ORDER}", "order", ["orders:read"], "billing-worker",
           "billing-worker"),
        at("billing", f"GET /internal/orders/{ORDER}/payment", "billing", ["payments:verify"],
           "order", "order"),
        at("inventory", f"POST /reservations/{ORDER}/commit", "inventory", ["inventory:release"],
           "order", "order"),
        at("billing", f"GET /internal/orders/{ORDER}/payment", "billing", ["payments:verify"],
           "notification-worker", "notification-worker"),
        at("auth", f"GET /users/{ALICE}", "auth", ["users:read"], "notification-worker",
           "notification-worker"),
        at("order", f"GET /internal/orders/{ORDER}/status", "order", ["orders:status"],
           "notification-worker", "notification-worker"),
    ]  # fmt: skip


def secure_purchase() -> list[Hop]:
    """`hopshop up`: every hop after the gateway gets a token exchanged for it (RFC 8693)."""
    user = at("gateway", "POST /api/orders", "gateway", USER_SCOPES, "web", status=201)
    return [
        user,
        at("order", "POST /orders", "order", ["orders:write"], "gateway", act=("gateway",),
           status=201),
        at("inventory", "POST /reservations", "inventory", ["inventory:reserve"], "order",
           act=("order", "gateway"), status=201),
        *kafka_hops(),
        at("gateway", "GET /api/invoices", "gateway", USER_SCOPES, "web"),
        at("billing", "GET /invoices", "billing", ["billing:read"], "gateway", act=("gateway",)),
        at("gateway", "GET /api/notifications", "gateway", USER_SCOPES, "web"),
        at("notification", "GET /notifications", "notification", ["notifications:read"],
           "gateway", act=("gateway",)),
    ]  # fmt: skip


def vulnerable_purchase() -> list[Hop]:
    """`hopshop up --vulnerable`: the gateway's user token is forwarded to every hop."""

    def forwarded(service: str, request: str, status: int = 200) -> Hop:
        return at(service, request, "gateway", USER_SCOPES, "web", status=status)

    return [
        forwarded("gateway", "POST /api/orders", 201),
        forwarded("order", "POST /orders", 201),
        forwarded("inventory", "POST /reservations", 201),
        *kafka_hops(),
        forwarded("gateway", "GET /api/invoices"),
        forwarded("billing", "GET /invoices"),
        forwarded("gateway", "GET /api/notifications"),
        forwarded("notification", "GET /notifications"),
    ]


def rendered(hops: list[Hop]) -> list[str]:
    out = io.StringIO()
    print_hops(hops, ALICE, out)
    return out.getvalue().splitlines()


def too_wide(lines: list[str]) -> list[str]:
    return [f"{len(line)}: {line}" for line in lines if len(line) > SCREEN]


def block(lines: list[str], number: int) -> list[str]:
    """The lines of hop ``number``: its table row and the indented lines under it."""
    start = next(i for i, line in enumerate(lines) if re.match(rf"{number}\s", line))
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"\d", lines[i])), len(lines))
    return lines[start:end]


def cells(row: str) -> list[str]:
    """A table row's cells: columns stand two or more spaces apart."""
    return re.split(r"\s{2,}", row.strip())


def test_the_limit_is_the_projectors() -> None:
    assert MAX_WIDTH <= SCREEN


def test_a_secure_purchase_fits_the_screen_and_keeps_every_fact() -> None:
    lines = rendered(secure_purchase())
    assert too_wide(lines) == []
    assert cells(lines[3]) == ["#", "service", "request", "status", "aud", "client_id"]

    gateway = block(lines, 1)
    assert cells(gateway[0]) == ["1", "gateway", "POST /api/orders", "201", "gateway", "web"]
    assert gateway[1].strip() == (
        "sub 5e388ae3… · act - · scope billing:read notifications:read orders:read orders:write"
    )
    assert "the user's own token from login (client web)" in gateway[2]

    order = block(lines, 2)
    assert cells(order[0]) == ["2", "order", "POST /orders", "201", "order", "gateway"]
    assert order[1].strip() == "sub 5e388ae3… · act gateway · scope orders:write"
    assert "exchanged token: made for order alone" in order[2]
    assert "sent by gateway (act)" in order[2]

    inventory = block(lines, 3)
    assert cells(inventory[0])[4:] == ["inventory", "order"]
    assert "act order ← gateway · scope inventory:reserve" in inventory[1]

    worker = block(lines, 4)  # billing's worker, after order.placed over Kafka
    assert cells(worker[0]) == [
        "4", "order", "GET /internal/orders/ord_db06…", "200", "order", "billing-worker"
    ]  # fmt: skip
    assert worker[1].strip() == "sub billing-worker · act - · scope orders:read"
    assert "client-credentials token: billing-worker acting as itself" in worker[2]

    # One row, one claims line and one explanation per hop: nothing wrapped.
    assert [len(block(lines, n)) for n in range(1, 14)] == [3] * 13


def test_a_vulnerable_purchase_fits_the_screen_and_names_every_forwarded_token() -> None:
    lines = rendered(vulnerable_purchase())
    assert too_wide(lines) == []

    order = block(lines, 2)
    assert cells(order[0]) == ["2", "order", "POST /orders", "201", "gateway", "web"]
    assert order[1].strip().startswith("sub 5e388ae3… · act - · scope billing:read")
    assert "the user's own token, forwarded: made for gateway, yet order took it" in order[2]
    for number, service in ((3, "inventory"), (11, "billing"), (13, "notification")):
        explanation = " ".join(block(lines, number)[2:])
        assert f"forwarded: made for gateway, yet {service} took it" in explanation
    assert [len(block(lines, n)) for n in range(1, 14)] == [3] * 13


def test_a_pathological_hop_wraps_without_losing_a_value() -> None:
    scopes = [f"scope-number-{n}:read-and-write" for n in range(10)]
    chain = ["notification-worker", "order-scheduler", "billing-worker", ALICE]
    path = "/internal/" + "/".join(f"segment{n:02}-of-a-long-path" for n in range(5)) + "/"
    path += "x" * (150 - len(path))
    assert len(path) == 150
    weird = Hop(0.0, "notification", "DELETE", path, 503, ["billing", "order", "inventory"],
                scopes, "notification-worker", ALICE, chain)  # fmt: skip

    lines = rendered([*secure_purchase(), weird])
    assert too_wide(lines) == []
    text = " ".join(block(lines, 14))
    for value in [*scopes, *chain, "503", "billing,order,inventory", "notification-worker"]:
        assert value in text
    # The request column, read down its wrapped lines, is the whole path.
    header = lines[3]
    start, end = header.index("request"), header.index("status")
    rows = [line for line in block(lines, 14) if not line[:start].strip() or line[0] != " "]
    assert len(rows) > 1
    assert "".join(line[start:end].strip() for line in rows) == f"DELETE {path}"
    # The ordinary hops keep their own single row while the long one wraps.
    assert len(block(lines, 2)) == 3


def test_table_cells_break_after_a_slash_and_cut_only_what_cannot_break() -> None:
    assert wrap_cell("GET /internal/orders/ord_db06…/payment", 22) == [
        "GET /internal/orders/",
        "ord_db06…/payment",
    ]
    assert wrap_cell("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]
    assert wrap_cell("short", 10) == ["short"]


def test_long_lines_wrap_under_their_indent() -> None:
    footer = (
        f"Every hop above has trace_id {'f' * 32} (uv run hopshop logs --state-dir {'/d' * 80})"
    )
    lines = fit(footer)
    assert too_wide(lines) == [] and len(lines) > 1
    assert "".join(line.strip() for line in lines).replace(" ", "") == footer.replace(" ", "")
    assert all(line.startswith("  ") for line in lines[1:])


def test_the_users_token_fits_even_with_many_scopes() -> None:
    out = io.StringIO()
    scopes = " ".join(f"scope-number-{n}:read" for n in range(12))
    print_user_token({"iss": "http://127.0.0.1:8601", "sub": ALICE, "scope": scopes}, out)
    lines = out.getvalue().splitlines()
    assert too_wide(lines) == []
    first = next(i for i, line in enumerate(lines) if line.startswith("  scope "))
    assert lines[first].startswith("  scope      scope-number-0:read")
    assert lines[first + 1].startswith(" " * 13 + "scope-number-")  # wrapped under the value
    assert " ".join(line.strip() for line in lines[first:]) == f"scope      {scopes}"


def test_hop_lines_without_hops_is_just_the_header() -> None:
    assert [cells(line) for line in hop_lines([], ALICE)] == [
        ["#", "service", "request", "status", "aud", "client_id"],
        ["-", "-------", "-------", "------", "---", "---------"],
    ]
