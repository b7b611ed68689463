"""`hopshop token`: a demo user's access token on stdout, for the replay exercise.

The token is the one the web UI gets at login: authorization code + PKCE (RFC 7636)
through auth's login form as client ``web`` (:func:`hopshop_stack.demo.login`), so its
audience is ``gateway`` and it is a bearer token (no DPoP key, RFC 9449). Only the
token goes to stdout, so ``T=$(uv run hopshop token alice)`` holds it; what it is
(audience, scopes, expiry) and what to try with it go to stderr. Nothing is logged:
the token is printed once, where the caller asked for it. The users and passwords
are the demo realm's (DESIGN.md), which exists in development only.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx

from . import demo, state
from .lifecycle import RUN, error, live_components, state_dir_hint

OK = 0
FAILED = 1
NO_STACK = 2

USERS = ("alice", "bob", "carol")  # the demo realm (DESIGN.md): <name>-dev-password
#: What support staff (carol) also ask for by default: any order, and broadcasts. The
#: issuer grants these to support staff only, so a customer asking would get none of it.
STAFF = frozenset({"carol"})
STAFF_SCOPES = "support:read support:broadcast"


def default_scope(user: str) -> str:
    """The demo's scopes, plus the support scopes for support staff."""
    return f"{demo.SCOPE} {STAFF_SCOPES}" if user in STAFF else demo.SCOPE


def token(
    state_dir: Path,
    user: str = demo.USER,
    scope: str = demo.SCOPE,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Log ``user`` in at the stack's auth and print the access token; see the module doc."""
    hint = state_dir_hint(state_dir)  # as the caller wrote it, for the command we print
    state_dir = state_dir.resolve()
    try:
        found = state.load(state_dir)
    except state.StateError as exc:
        error(str(exc))
        return NO_STACK
    running = {c.name: c for c in live_components(found)} if found else {}
    if found is None or "auth" not in running:
        error(f"no running stack with auth in {state_dir}; start one with `{RUN} up -d{hint}`")
        return NO_STACK
    try:
        with httpx.Client(base_url=running["auth"].address, timeout=15) as auth:
            access_token = demo.login(auth, user, scope)
        claims = demo.jwt_claims(access_token)
    except (demo.DemoError, httpx.HTTPError) as exc:
        error(f"no token for {user}: {exc}")
        return FAILED

    print(access_token, file=out)
    order = running["order"].address if "order" in running else None
    for line in note(claims, user, scope, found.vulnerable, order, hint):
        print(line, file=err)
    return OK


def note(
    claims: dict[str, Any],
    user: str,
    asked: str,
    vulnerable: bool,
    order: str | None,
    hint: str = "",
) -> list[str]:
    """What the token is and what to try with it, wrapped to the demo's width; never the token."""
    aud = claims.get("aud")
    audience = " ".join(aud) if isinstance(aud, list) else str(aud)
    granted = str(claims.get("scope") or "")
    prose = [
        f"  as the web UI gets it at login: client {claims.get('client_id')}, "
        f"aud {audience}, a bearer token (no DPoP key)",
        f"  scope {granted or '(none)'}",
        f"  {expiry(claims.get('exp'))}",
    ]
    if set(granted.split()) != set(asked.split()):
        # Login grants what was asked for AND the user's roles allow; no error for the rest.
        allowed = "allow none of it" if not granted else "do not allow the rest"
        prose.append(f"  (asked for {asked}: {user}'s roles {allowed})")
    prose.append("A dev-realm token for the replay exercise: send it where it was not meant to go.")
    # Commands are never wrapped: a wrapped one cannot be copied.
    lines = [
        f"hopshop token: {user}'s access token is on stdout; keep it with",
        f"  T=$({RUN} token {user}{hint})",
        *[wrapped for line in prose for wrapped in demo.fit(line, hang="    ")],
    ]
    if order is not None:
        lines.append(f'  curl -H "Authorization: Bearer $T" {order}/orders')
        if not vulnerable:
            expected = (
                f"order refuses it: 401, wrong audience ({audience}); a --vulnerable stack takes it"
            )
        elif "orders:read" in granted.split():
            expected = "this stack runs --vulnerable: order takes it (200)"
        else:
            expected = "this stack runs --vulnerable, but the token lacks orders:read: 403"
        lines.extend(demo.fit(f"  {expected}.", hang="    "))
    return lines


def expiry(exp: object) -> str:
    if not isinstance(exp, int | float):
        return "no expiry"
    when = datetime.fromtimestamp(exp, UTC).strftime("%H:%M:%S UTC")
    minutes = max(0, round((exp - time.time()) / 60))
    return f"expires {when} (in {minutes} min)"
