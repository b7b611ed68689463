"""Leakage: a token put where the stack echoes what it was sent, then no token anywhere.

First a user's own tokens go where a service writes back out what a caller
sent: into a URL path (the access log line has the path) and as a JSON key
(a 422 names the key in ``loc``). Then, after every other attack has run
(conftest orders this module last, and the scan last in it), the scan looks
for every secret the suite handled (access and refresh tokens, DPoP proofs,
authorization codes, client secrets and passwords, forged tokens too) and for
anything JWT-shaped in every log file of the stack and in every response body
and ``Location`` header the suite received, the token endpoint's own answers
excepted.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from leaks import Finding, Logged, logged, scan, scan_logs, scan_text, shapes_in
from oauth_flows import Login, login
from recorder import Expect, Observed, Recorder, refused
from shop import PENDING_CARD, bearer, eventually, stocked_product
from stacks import Target

CATEGORY = "leakage"

FOUND_NONE = "no token found"
IN_A_PATH = (
    "the access line logs the path with anything shaped like a JWT or a refresh token "
    "replaced by [redacted], never the query (hopkit/redact.py, in hopkit/tracing.py and logs.py)"
)
AS_A_KEY = (
    "a 422 names where the request was wrong (loc), never the value, and anything "
    "token-shaped in loc is [redacted] (hopkit/redact.py, used by hopkit/problems.py)"
)
#: How long a service may take to write a request's access line after answering it.
LOG_WAIT = 10.0

PASTED = [
    pytest.param(
        "gateway", "access", "/api/orders/{}", id="access token at the gateway order route"
    ),
    pytest.param(
        "gateway", "access", "/api/nope/{}", id="access token at an unknown gateway route"
    ),
    pytest.param(
        "gateway", "refresh", "/api/nope/{}", id="refresh token at an unknown gateway route"
    ),
    pytest.param("order", "access", "/orders/{}", id="access token at order"),
]


def _hidden(text: str, token: str) -> str:
    """What the test saw, fit to print: a leaked token is named, never shown."""
    return text.replace(token, "<the token>")


def _found(findings: list[Finding]) -> str:
    return "; ".join(f"{f.where}: {f.what}" for f in findings[:10])


def _once_accessed(lines: list[Logged]) -> list[Logged] | None:
    """A request's log lines, once its access line (written last) is among them."""
    return lines if any(line.entry.get("logger") == "access" for line in lines) else None


@pytest.mark.parametrize(("where", "which", "path"), PASTED)
def test_token_pasted_into_a_url_path(
    target: Target, attack: Recorder, where: str, which: str, path: str
) -> None:
    attack.expect(Expect.both(refused(None, FOUND_NONE, IN_A_PATH)))
    # A login of its own: a token no other row sends, so a finding is this row's.
    user = login(target, "alice")
    token = user.access_token if which == "access" else user.refresh_token
    assert token, "the login returned no refresh token"
    client = target.gw if where == "gateway" else target.service(where)
    # A request id of our own finds the request's log lines (the middleware keeps it).
    request_id = f"leak-probe-{secrets.token_hex(6)}"
    response = client.get(path.format(token), headers={**bearer(user), "X-Request-ID": request_id})
    logs = target.logs()
    assert target.state_dir is None or logs, f"no log files in {target.state_dir}/logs"
    lines: list[Logged] = []
    if logs:  # the line is written after the answer: wait for it, or the scan proves nothing
        lines = eventually(
            lambda: _once_accessed(logged(logs, request_id)),
            f"{where}'s access line of request {request_id}",
            timeout=LOG_WAIT,
        )
        paths = [str(line.entry["path"]) for line in lines if line.entry.get("logger") == "access"]
        seen = "logged as " + ", ".join(paths)
    else:
        seen = "no log files to scan (no --state-dir): the response only"
    # The token itself anywhere in any log; anything JWT-shaped on the request's own lines.
    findings, scanned = scan_logs(logs, {token}, shapes=False)
    findings += shapes_in(lines)
    answer = f"response GET {where} ({response.status_code})"
    findings += scan_text(response.text, f"{answer} body", {token})
    findings += scan_text(response.headers.get("location", ""), f"{answer} Location", {token})
    attack.observe(
        Observed(
            "succeeded" if findings else "refused",
            None,
            f"{len(findings)} found" if findings else FOUND_NONE,
            _hidden(
                f"{response.status_code} at {where}; {seen}; scanned {scanned} log lines in "
                f"{len(logs)} files and the response"
                + (f"; {_found(findings)}" if findings else ""),
                token,
            ),
        )
    )


def test_token_sent_as_a_json_key_of_an_order(
    target: Target, attack: Recorder, alice: Login
) -> None:
    attack.expect(Expect.both(refused(422, FOUND_NONE, AS_A_KEY)))
    token = alice.access_token
    # A valid order but for the one key: nothing else in the 422, and a pending card in
    # case the key were ever let through (nobody charged).
    line = {"product_id": stocked_product(target)["id"], "quantity": 1}
    body: dict[str, Any] = {"items": [line], "card": PENDING_CARD, token: "x"}
    response = target.gw.post("/api/orders", json=body, headers=bearer(alice))
    findings = scan_text(
        response.text, f"response POST /api/orders ({response.status_code})", {token}
    )
    try:
        errors = response.json().get("errors", [])
    except ValueError:
        errors = []
    locs = ", ".join(str(e.get("loc")) for e in errors if isinstance(e, dict))
    attack.observe(
        Observed(
            "succeeded" if findings else "refused",
            response.status_code,
            f"{len(findings)} found" if findings else FOUND_NONE,
            _hidden(f"loc {locs or 'none'}" + (f"; {_found(findings)}" if findings else ""), token),
        )
    )


def test_no_token_in_logs_error_bodies_or_redirects(target: Target, attack: Recorder) -> None:
    attack.expect(
        Expect.both(
            refused(
                None,
                FOUND_NONE,
                "logs carry claims (jti, sub, client_id, act), never a token (hopkit/logs.py); "
                "errors carry a reason, never the token (hopauth/errors.py)",
            )
        )
    )
    logs = target.logs()
    assert target.state_dir is None or logs, f"no log files in {target.state_dir}/logs"
    assert target.traffic.secrets, "the suite handled no secrets: nothing ran before this scan"
    findings, lines, responses = scan(target.traffic, logs)
    where = _found(findings)
    attack.observe(
        Observed(
            "succeeded" if findings else "refused",
            None,
            f"{len(findings)} found" if findings else FOUND_NONE,
            f"scanned {lines} log lines in {len(logs)} files, {responses} responses, "
            f"{len(target.traffic.secrets)} secrets" + (f"; {where}" if where else ""),
        )
    )
