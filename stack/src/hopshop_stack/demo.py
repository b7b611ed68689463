"""`hopshop demo`: a scripted purchase as alice, then the token each service received, hop by hop.

The demo talks to the running stack over HTTP only, like a browser would: it logs
in with authorization code + PKCE, browses, orders with a ``traceparent`` whose
trace id it chose, waits for payment over Kafka, and reads the invoice and the
notification. Every service's tracing middleware logs one JSON line per request
with the trace id and the claims of the validated token (``token``: jti, sub,
aud, scope, client_id, act; never the token itself), so the demo collects the
lines of its own trace from ``<state dir>/logs/*.log`` and prints them in order.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import re
import secrets
import shlex
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

import httpx

from . import state
from .lifecycle import RUN, error, is_ours_and_running, state_dir_hint

OK = 0
NOT_CONFIRMED = 1
NO_STACK = 2

USER = "alice"
CLIENT_ID = "web"
REDIRECT_URI = "http://127.0.0.1:8000/callback"
SCOPE = "orders:read orders:write billing:read notifications:read"
CARD = "4242424242424242"
CONFIRM_TIMEOUT = 30.0
LOG_SETTLE = 1.0  # the last hops (notification → auth) may land a moment after the answer
# The demo is the picture a trainer puts on a projector: no line of it is wider than this.
MAX_WIDTH = 100


class DemoError(RuntimeError):
    """A step of the scripted purchase went wrong."""


@dataclass(frozen=True)
class Hop:
    start: float
    service: str
    method: str
    path: str
    status: int | None
    aud: list[str]
    scope: list[str]
    client_id: str
    sub: str
    act: list[str]


# --- output that fits the screen ----------------------------------------------


def fit(text: str, hang: str = "  ") -> list[str]:
    """``text`` in lines of at most MAX_WIDTH columns, wrapped at spaces.

    The text's own leading spaces indent every line; lines after the first are
    indented by ``hang`` more. A word longer than a line is cut, never let through.
    """
    body = text.lstrip(" ")
    indent = text[: len(text) - len(body)]
    lines = textwrap.wrap(
        body,
        width=MAX_WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + hang,
        break_on_hyphens=False,  # client ids and scopes hold hyphens; cut at spaces
    )
    return lines or [""]


def say(out: TextIO, text: str = "", hang: str = "  ") -> None:
    """Print ``text`` wrapped to MAX_WIDTH (see :func:`fit`)."""
    for line in fit(text, hang):
        print(line, file=out)


# --- the purchase ------------------------------------------------------------


def login(auth: httpx.Client, user: str = USER, scope: str = SCOPE) -> str:
    """Authorization code + PKCE (RFC 7636, S256) through auth's HTML login form.

    ``user`` is one of the demo realm (DESIGN.md, dev only): password ``<user>-dev-password``.
    """
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    _expect(auth.get("/authorize", params=params), 200, "the login form")
    form = {"username": user, "password": f"{user}-dev-password"}
    redirect = _expect(auth.post("/authorize", params=params, data=form), 302, "the login")
    query = parse_qs(urlsplit(redirect.headers.get("location", "")).query)
    if query.get("state") != [params["state"]] or "code" not in query:
        raise DemoError(f"login redirected without a code for our state: {query}")
    token = auth.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID,
            "code_verifier": verifier,
        },
    )
    access_token = _expect(token, 200, "the token request").json().get("access_token")
    if not isinstance(access_token, str):
        raise DemoError("the token response has no access_token")
    return access_token


def _expect(response: httpx.Response, status: int, what: str) -> httpx.Response:
    if response.status_code != status:
        body = response.text[:300] or _redirected_error(response.headers.get("location", ""))
        raise DemoError(
            f"{what}: {response.request.method} {response.request.url.path} answered "
            f"{response.status_code}, expected {status}: {body}"
        )
    return response


def _redirected_error(location: str) -> str:
    """``error`` and ``error_description`` of an error redirect (RFC 6749 §4.1.2.1)."""
    query = parse_qs(urlsplit(location).query)
    error = query.get("error", [""])[0]
    if not error:
        return location
    description = query.get("error_description", [""])[0]
    return f"{error} ({description})" if description else error


def traceparent(trace_id: str) -> dict[str, str]:
    """A W3C Trace Context header (version 00, sampled) in our trace, with a new parent id."""
    return {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}


def _get(gateway: httpx.Client, path: str, headers: dict[str, str]) -> httpx.Response:
    """GET that waits out the gateway's per-user rate limit instead of failing on it."""
    while True:
        response = gateway.get(path, headers=headers)
        if response.status_code != 429:
            return response
        time.sleep(min(float(response.headers.get("retry-after", "1") or 1), 5.0))


def _wait_for(
    gateway: httpx.Client,
    path: str,
    auth: dict[str, str],
    order_id: str,
    timeout: float,
    at_least: int = 1,
) -> bool:
    """Poll a list endpoint (outside the demo's trace) until ``at_least`` items are the order's."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = _get(gateway, path, auth)
        if response.status_code == 200 and at_least <= sum(
            isinstance(item, dict) and item.get("order_id") == order_id for item in response.json()
        ):
            return True
        time.sleep(0.3)
    return False


def purchase(gateway: httpx.Client, token: str, trace_id: str, out: TextIO) -> bool:
    """The scripted purchase; True once the order is CONFIRMED."""
    auth = {"Authorization": f"Bearer {token}"}
    products = _expect(_get(gateway, "/api/products", {}), 200, "the catalogue").json()
    product = next((p for p in products if p.get("available", 0) > 0), None)
    if product is None:
        raise DemoError("no product is in stock")
    say(
        out, f"  GET  /api/products          {len(products)} products; buying 1 x {product['name']}"
    )

    body = {"items": [{"product_id": product["id"], "quantity": 1}], "card": CARD}
    # As a careful client would: a repeat of this request could never place a second order.
    key = {"Idempotency-Key": f'"{uuid.uuid4()}"'}
    placed = gateway.post(
        "/api/orders", json=body, headers={**auth, **traceparent(trace_id), **key}
    )
    order = _expect(placed, 201, "placing the order").json()
    order_id = str(order["id"])
    say(out, f"  POST /api/orders            order {order_id} {order['status']}")
    say(out, f"{'':30}card {CARD[:4]}…{CARD[-4:]}, trace {trace_id}")

    deadline = time.monotonic() + CONFIRM_TIMEOUT
    status = str(order["status"])
    while status != "CONFIRMED" and time.monotonic() < deadline:
        time.sleep(0.5)
        current = _expect(_get(gateway, f"/api/orders/{order_id}", auth), 200, "the order")
        status = str(current.json()["status"])
        if status == "CANCELLED":
            break
    say(out, f"  GET  /api/orders/{order_id}  {status}")
    if status != "CONFIRMED":
        return False

    # Invoices and notifications arrive over Kafka; wait (outside our trace), then read
    # them once inside it, so the gateway → billing/notification hops are in the picture.
    _wait_for(gateway, "/api/invoices", auth, order_id, 10.0)
    # Two for a paid order: payment.succeeded and order.confirmed, in either order.
    _wait_for(gateway, "/api/notifications", auth, order_id, 10.0, at_least=2)
    for path in ("/api/invoices", "/api/notifications"):
        items = _expect(_get(gateway, path, {**auth, **traceparent(trace_id)}), 200, path).json()
        mine = [i for i in items if isinstance(i, dict) and i.get("order_id") == order_id]
        say(out, f"  GET  {path:<23}{len(mine)} for this order")
    return True


# --- the picture -------------------------------------------------------------


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, decoded WITHOUT verification: only to show it, never to trust it."""
    try:
        payload = token.split(".")[1]
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(decoded)
    except (IndexError, ValueError, binascii.Error) as exc:
        raise DemoError(f"the access token is not a JWT ({exc})") from exc
    if not isinstance(claims, dict):
        raise DemoError("the access token's payload is not a JSON object")
    return claims


def act_chain(act: object) -> list[str]:
    """The RFC 8693 ``act`` claim flattened, current actor first."""
    chain: list[str] = []
    while isinstance(act, dict) and len(chain) < 10:
        chain.append(str(act.get("sub")))
        act = act.get("act")
    return chain


def print_user_token(claims: dict[str, Any], out: TextIO) -> None:
    say(out)
    say(out, "The user token alice got at login (decoded for display, not verified):")
    for name in ("iss", "sub", "aud", "client_id", "scope", "sid", "jti", "iat", "exp", "act"):
        if name not in claims:
            continue
        value = claims[name]
        if name in ("iat", "exp") and isinstance(value, int | float):
            when = datetime.fromtimestamp(value, UTC).strftime("%H:%M:%S UTC")
            value = f"{value}  ({when})"
        elif name == "act":
            value = " ← ".join(act_chain(value))
        say(out, f"  {name:<10} {value}", hang=" " * 11)  # wrapped under the value


def collect_hops(logs_dir: Path, trace_id: str) -> list[Hop]:
    """The request lines of our trace that carry a token's claims, in the order they started."""
    hops: list[Hop] = []
    for path in sorted(logs_dir.glob("*.log")):
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if trace_id not in line:
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                token = entry.get("token") if isinstance(entry, dict) else None
                if entry.get("trace_id") != trace_id or not isinstance(token, dict):
                    continue
                ts = float(entry.get("ts", 0.0))
                hops.append(
                    Hop(
                        start=ts - float(entry.get("ms", 0.0)) / 1000,
                        service=str(entry.get("service") or path.stem),
                        method=str(entry.get("method", "?")),
                        path=str(entry.get("path", "?")),
                        status=entry.get("status"),
                        aud=[str(a) for a in token.get("aud") or []],
                        scope=[str(s) for s in token.get("scope") or []],
                        client_id=str(token.get("client_id")),
                        sub=str(token.get("sub")),
                        act=[str(a) for a in token.get("act") or []],
                    )
                )
    return sorted(hops, key=lambda hop: hop.start)


def shorten(value: str, keep: int = 8) -> str:
    return value if len(value) <= keep + 2 else value[:keep] + "…"


# An id in a path: an order id (ord_ + hex) or a user id (a UUID); words are left whole.
PATH_ID = re.compile(r"(?:[A-Za-z]+_)?[0-9A-Fa-f-]{16,}")


def short_path(path: str) -> str:
    """Long ids in a path (order ids, user ids) cut to their start, to keep the table narrow."""
    return "/".join(shorten(part) if PATH_ID.fullmatch(part) else part for part in path.split("/"))


def explain(hop: Hop, user: str) -> str:
    if hop.act:
        return (
            f"exchanged token: made for {'/'.join(hop.aud)} alone, on behalf of the user, "
            f"sent by {hop.act[0]} (act)"
        )
    if hop.sub == hop.client_id:
        return (
            f"client-credentials token: {hop.client_id} acting as itself after a Kafka "
            "event (no user)"
        )
    if hop.sub == user and hop.service in hop.aud:
        return f"the user's own token from login (client {hop.client_id}), made for {hop.service}"
    if hop.sub == user:
        # Vulnerable mode (forwarding): the lesson is that this hop should have refused it.
        return (
            f"the user's own token, forwarded: made for {'/'.join(hop.aud)}, "
            f"yet {hop.service} took it (replay works)"
        )
    return "a token for this hop"


HOP_HEADERS = ("#", "service", "request", "status", "aud", "client_id")
GAP = "  "


def wrap_cell(text: str, width: int) -> list[str]:
    """A table cell in lines of at most ``width``: broken after a ``/``, ``,`` or space.

    A piece longer than a whole line (a 60-character path segment) is cut where it must.
    """
    lines: list[str] = []
    current = ""
    for piece in re.split(r"(?<=[/, ])", text):
        if current and len(current + piece.rstrip()) > width:
            lines.append(current.rstrip())
            current = ""
        while len(current + piece.rstrip()) > width:
            lines.append(piece[:width])
            piece = piece[width:]
        current += piece
    lines.append(current.rstrip())
    return lines


def column_widths(rows: list[tuple[str, ...]]) -> list[int]:
    """Each column as wide as its widest cell, the widest ones narrowed until a row fits.

    Narrowing stops at the header's width; the cells of a narrowed column wrap
    (:func:`wrap_cell`). In the demo only a long request path ever needs it.
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    floors = [len(header) for header in rows[0]]
    while sum(widths) + len(GAP) * (len(widths) - 1) > MAX_WIDTH:
        narrowable = [i for i, width in enumerate(widths) if width > floors[i]]
        if not narrowable:
            break
        widths[max(narrowable, key=lambda i: widths[i])] -= 1
    return widths


def hop_lines(hops: list[Hop], user_sub: str) -> list[str]:
    """The hop-by-hop table: per hop one row, the rest of its token, and what it is.

    The row holds what a reader scans for (service, request, status, aud,
    client_id); the values that grow (sub, the act chain, the scopes) and the
    explanation follow on indented lines, wrapped to MAX_WIDTH.
    """
    rows: list[tuple[str, ...]] = [
        (
            str(number),
            hop.service,
            f"{hop.method} {short_path(hop.path)}",
            "-" if hop.status is None else str(hop.status),
            ",".join(hop.aud) or "-",
            hop.client_id,
        )
        for number, hop in enumerate(hops, start=1)
    ]
    widths = column_widths([HOP_HEADERS, *rows])

    def table_row(cells: tuple[str, ...]) -> list[str]:
        wrapped = [wrap_cell(cell, width) for cell, width in zip(cells, widths, strict=True)]
        return [
            GAP.join(
                (cell[depth] if depth < len(cell) else "").ljust(width)
                for cell, width in zip(wrapped, widths, strict=True)
            ).rstrip()
            for depth in range(max(map(len, wrapped)))
        ]

    indent = " " * (widths[0] + len(GAP))  # a hop's further lines start under its service
    lines = [*table_row(HOP_HEADERS), *table_row(tuple("-" * width for width in widths))]
    for hop, row in zip(hops, rows, strict=True):
        sub = hop.sub if hop.sub == hop.client_id else shorten(hop.sub)  # a service: its name
        claims = (
            f"sub {sub} · act {' ← '.join(hop.act) or '-'} · scope {' '.join(hop.scope) or '-'}"
        )
        lines += table_row(row)
        lines += fit(indent + claims)
        lines += fit(f"{indent}↳ {explain(hop, user_sub)}")
    return lines


def print_hops(hops: list[Hop], user_sub: str, out: TextIO) -> None:
    say(out)
    say(out, f"Hop by hop: the token each service received ({len(hops)} hops)")
    say(out)
    for line in hop_lines(hops, user_sub):
        print(line, file=out)


# --- the command -------------------------------------------------------------


def _urls(state_dir: Path) -> tuple[str, str] | None:
    """The gateway's and auth's addresses, if both run in this state dir's stack."""
    found = state.load(state_dir)
    if found is None:
        return None
    running = {c.name: c for c in found.components if is_ours_and_running(c)}
    if "gateway" not in running or "auth" not in running:
        return None
    return running["gateway"].address, running["auth"].address


def demo(state_dir: Path, out: TextIO = sys.stdout) -> int:
    state_dir = state_dir.resolve()
    try:
        urls = _urls(state_dir)
    except state.StateError as exc:
        error(str(exc))
        return NO_STACK
    if urls is None:
        error(
            f"no running stack with a gateway and auth in {state_dir}; "
            f"start one with `{RUN} up -d{state_dir_hint(state_dir)}`"
        )
        return NO_STACK
    gateway_url, auth_url = urls
    trace_id = secrets.token_hex(16)

    say(out, f"hopshop demo: alice buys something at {gateway_url}")
    say(out)
    try:
        with (
            httpx.Client(base_url=auth_url, timeout=15) as auth,
            httpx.Client(base_url=gateway_url, timeout=15) as gateway,
        ):
            token = login(auth)
            say(out, f"  login as {USER} at {auth_url} (authorization code + PKCE)")
            confirmed = purchase(gateway, token, trace_id, out)
    except (DemoError, httpx.HTTPError) as exc:
        error(f"demo failed: {exc}")
        return NOT_CONFIRMED

    claims = jwt_claims(token)
    print_user_token(claims, out)
    time.sleep(LOG_SETTLE)
    hops = collect_hops(state.logs_dir(state_dir), trace_id)
    print_hops(hops, str(claims.get("sub")), out)
    say(out)
    say(out, f"Each hop above is one log line with trace_id {trace_id}.")
    say(out, "All of them, every service, in the order they were logged:")
    here = state_dir
    with contextlib.suppress(ValueError):  # shorter from here, when it is below here
        here = state_dir.resolve().relative_to(Path.cwd())
    print(f"  {RUN} logs --trace {trace_id}{state_dir_hint(here)}", file=out)  # never wrapped
    logs = state.logs_dir(here)
    say(out, "or, with the tools you have:")
    print(f"  grep {trace_id} {shlex.quote(str(logs))}/*.log", file=out)  # never wrapped
    if not confirmed:
        error(f"the order was not CONFIRMED within {CONFIRM_TIMEOUT:.0f} s")
        return NOT_CONFIRMED
    return OK
