"""The harness' own logic, without a stack: reading outcomes, naming attacks, finding leaks.

An attack suite that misreads a response passes for the wrong reason; these
pin how it reads them.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from leaks import Traffic, scan
from recorder import (
    Expect,
    Recorder,
    Row,
    attack_name,
    error_code,
    observed,
    refused,
    succeeded,
)

JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def response(
    status: int, *, headers: dict[str, str] | None = None, json: object = None
) -> httpx.Response:
    request = httpx.Request("GET", "http://127.0.0.1:9/api/orders")
    return httpx.Response(status, headers=headers, json=json, request=request)


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (
            response(
                401,
                headers={"WWW-Authenticate": 'Bearer realm="order", error="invalid_token"'},
                json={"type": "urn:hopauth:problem:invalid-token"},
            ),
            "invalid_token",
        ),
        (
            response(
                401,
                headers={"WWW-Authenticate": 'DPoP algs="ES256", error="invalid_dpop_proof"'},
            ),
            "invalid_dpop_proof",
        ),
        (
            response(
                403,
                headers={"content-type": "application/problem+json"},
                json={"type": "urn:hopauth:problem:forbidden-caller"},
            ),
            "forbidden-caller",
        ),
        (
            response(
                404,
                headers={"content-type": "application/problem+json"},
                json={"type": "https://hopshop.example/problems/order-not-found"},
            ),
            "order-not-found",
        ),
        (response(400, json={"error": "invalid_grant"}), "invalid_grant"),
        (response(500, headers={"content-type": "text/plain"}), "no error code (text/plain)"),
        (response(200, json=[]), None),
    ],
)
def test_the_error_code_comes_from_the_challenge_the_problem_or_the_oauth_body(
    answer: httpx.Response, code: str | None
) -> None:
    assert error_code(answer) == code


def test_an_outcome_must_match_in_status_code_and_description() -> None:
    rows: list[Row] = []
    recorder = Recorder("x", "replay", "secure", rows)
    recorder.expect(
        Expect(
            secure=refused(401, "invalid_token", "aud check", detail="wrong audience"),
            vulnerable=succeeded(200, "no aud check"),
        )
    )
    wrong = response(
        401, headers={"WWW-Authenticate": 'Bearer error="invalid_token", error_description="x"'}
    )
    with pytest.raises(AssertionError, match="expected refused"):
        recorder.observe(observed(wrong, effect=False))
    assert rows[0].as_expected is False
    assert rows[0].observed == "refused (401, invalid_token)"


def test_an_effect_makes_an_attack_a_success_whatever_the_status() -> None:
    rows: list[Row] = []
    recorder = Recorder("x", "replay", "vulnerable", rows)
    recorder.expect(Expect.both(refused(400, "invalid_grant", "single use")))
    with pytest.raises(AssertionError):
        recorder.observe(observed(response(400, json={"error": "invalid_grant"}), effect=True))
    assert rows[0].observed == "succeeded (400, invalid_grant)"


class _Item:
    def __init__(self, name: str, originalname: str) -> None:
        self.name = name
        self.originalname = originalname


@pytest.mark.parametrize(
    ("name", "mode", "expected"),
    [
        ("test_spent_code[secure]", "secure", "spent code"),
        ("test_forged[vulnerable-alg none]", "vulnerable", "forged (alg none)"),
        ("test_forged[alg none-secure]", "secure", "forged (alg none)"),
    ],
)
def test_attack_names_drop_the_mode(name: str, mode: str, expected: str) -> None:
    item = _Item(name, name.partition("[")[0])
    assert attack_name(item, mode) == expected


def test_the_scan_finds_a_handled_token_and_anything_jwt_shaped(tmp_path: Path) -> None:
    traffic = Traffic()
    secret = "a-refresh-token-the-suite-handled"  # noqa: S105 - a made-up one
    traffic.add_secret(secret)
    log = tmp_path / "order.log"
    log.write_text(f'{{"msg": "ok"}}\n{{"msg": "refresh {secret}"}}\n{{"msg": "{JWT}"}}\n')
    findings, lines, _ = scan(traffic, [log])
    assert lines == 3
    assert sorted(f.where for f in findings) == ["logs/order.log:2", "logs/order.log:3"]
    assert all(secret not in f.what and JWT not in f.what for f in findings)


def test_the_scan_reads_bodies_and_redirects_but_not_token_responses() -> None:
    traffic = Traffic()
    token_request = httpx.Request("POST", "http://127.0.0.1:9/token")
    traffic.on_response(httpx.Response(200, json={"access_token": JWT}, request=token_request))
    assert JWT in traffic.secrets
    assert scan(traffic, [])[0] == []  # the token endpoint's answer is where tokens belong

    error = httpx.Request("GET", "http://127.0.0.1:9/api/orders")
    traffic.on_response(httpx.Response(401, json={"detail": f"bad token {JWT}"}, request=error))
    login = httpx.Request("POST", "http://127.0.0.1:9/authorize")
    redirect = f"http://127.0.0.1:8000/callback?code=a-code-for-the-web-client&t={JWT}"
    traffic.on_response(httpx.Response(302, headers={"location": redirect}, request=login))
    findings, _, responses = scan(traffic, [])
    assert responses == 3
    places = {f.where.rsplit(":", 1)[0] for f in findings}
    assert any(p.endswith("/api/orders (401) body") for p in places)
    assert any(p.endswith("/authorize (302) Location") for p in places)
    assert not any("code" in f.what for f in findings)  # the code is the redirect's purpose
