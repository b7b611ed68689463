"""hopauth.fastapi with DPoP (RFC 9449 §7): bound tokens need their key's proof, through ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from hopauth import (
    AccessTokenValidator,
    DPoPKey,
    DPoPProofValidator,
    MemoryReplayCache,
    Principal,
    StaticKeySource,
)
from hopauth.fastapi import BearerToken, Requires, _request_uri, install_problem_handlers
from hopauth_support import AUDIENCE, ISSUER, MakeToken

BASE = "http://order"
ORDERS = f"{BASE}/orders"
PROBLEM = "application/problem+json"

AppFactory = Callable[..., httpx.AsyncClient]


def build_app(static_keys: StaticKeySource, *, dpop: object, require: bool) -> FastAPI:
    app = FastAPI()
    app.state.hopauth_validator = AccessTokenValidator(
        issuer=ISSUER, audience=AUDIENCE, keys=static_keys
    )
    if dpop is not None:
        app.state.hopauth_dpop = dpop
    app.state.hopauth_require_dpop = require
    install_problem_handlers(app)

    @app.get("/orders")
    @app.post("/orders")
    async def orders(
        principal: Annotated[Principal, Depends(Requires("orders:read"))], token: BearerToken
    ) -> dict[str, Any]:
        return {"jkt": principal.confirmation_jkt, "token_length": len(token)}

    @app.get("/things/{name:path}")
    async def thing(
        name: str, principal: Annotated[Principal, Depends(Requires("orders:read"))]
    ) -> dict[str, str]:
        return {"name": name}

    @app.get("/admin")
    async def admin(principal: Annotated[Principal, Depends(Requires("admin:write"))]) -> None:
        return None

    return app


@pytest.fixture
async def clients(static_keys: StaticKeySource) -> AsyncIterator[AppFactory]:
    opened: list[httpx.AsyncClient] = []

    def make(*, dpop: bool | object = True, require: bool = False) -> httpx.AsyncClient:
        validator = (
            DPoPProofValidator(replay_cache=MemoryReplayCache(), origins=[BASE])
            if dpop is True
            else dpop or None
        )
        app = build_app(static_keys, dpop=validator, require=require)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


@pytest.fixture
def key() -> DPoPKey:
    return DPoPKey.generate()


@pytest.fixture
def bound_token(make_token: MakeToken, key: DPoPKey) -> str:
    return make_token(cnf={"jkt": key.thumbprint})


def dpop_headers(token: str, proof: str) -> dict[str, str]:
    return {"Authorization": f"DPoP {token}", "DPoP": proof}


def assert_proof_refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == (
        f'DPoP algs="ES256", error="invalid_dpop_proof", error_description="{reason}"'
    )
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:hopauth:problem:invalid-dpop-proof"
    assert body["detail"] == reason


def assert_token_refused(response: httpx.Response, reason: str, scheme: str = "DPoP") -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith(f"{scheme} ")
    assert 'error="invalid_token"' in challenge
    assert f'error_description="{reason}"' in challenge
    assert response.json()["type"] == "urn:hopauth:problem:invalid-token"
    assert response.json()["detail"] == reason


async def test_bound_token_with_valid_proof(
    clients: AppFactory, key: DPoPKey, bound_token: str
) -> None:
    proof = key.proof("GET", ORDERS, access_token=bound_token)
    response = await clients().get("/orders", headers=dpop_headers(bound_token, proof))
    assert response.status_code == 200, response.text
    assert response.json() == {"jkt": key.thumbprint, "token_length": len(bound_token)}


async def test_scheme_is_case_insensitive_and_query_ignored(
    clients: AppFactory, key: DPoPKey, bound_token: str
) -> None:
    proof = key.proof("GET", ORDERS, access_token=bound_token)
    response = await clients().get(
        "/orders?page=2", headers={"Authorization": f"dpop {bound_token}", "DPoP": proof}
    )
    assert response.status_code == 200, response.text


async def test_captured_proof_replayed(clients: AppFactory, key: DPoPKey, bound_token: str) -> None:
    client = clients()
    proof = key.proof("GET", ORDERS, access_token=bound_token)
    assert (await client.get("/orders", headers=dpop_headers(bound_token, proof))).is_success
    replayed = await client.get("/orders", headers=dpop_headers(bound_token, proof))
    assert_proof_refused(replayed, "proof replayed (jti already used)")


async def test_proof_from_another_key(clients: AppFactory, bound_token: str) -> None:
    thief = DPoPKey.generate()
    proof = thief.proof("GET", ORDERS, access_token=bound_token)
    response = await clients().get("/orders", headers=dpop_headers(bound_token, proof))
    assert_proof_refused(response, "proof key does not match the token's key")


@pytest.mark.parametrize(
    ("method", "url", "reason"),
    [
        ("POST", ORDERS, "htm does not match the request method"),
        ("GET", f"{BASE}/admin", "htu does not match the request URL"),
        ("GET", "http://inventory/orders", "htu does not match the request URL"),
    ],
)
async def test_proof_for_another_request(
    clients: AppFactory, key: DPoPKey, bound_token: str, method: str, url: str, reason: str
) -> None:
    proof = key.proof(method, url, access_token=bound_token)
    response = await clients().get("/orders", headers=dpop_headers(bound_token, proof))
    assert_proof_refused(response, reason)


@pytest.mark.parametrize("htu_path", ["/things/a%2Fb", "/things/a%2fb", "/things/%61%2Fb"])
async def test_htu_keeps_the_percent_encoding_of_the_request(
    clients: AppFactory, key: DPoPKey, bound_token: str, htu_path: str
) -> None:
    # RFC 9449 §4.3 point 9 compares with the URI as sent, up to RFC 3986 §6.2.2
    # normalization: %2F is not "/", though the framework decodes it for routing.
    proof = key.proof("GET", BASE + htu_path, access_token=bound_token)
    response = await clients().get("/things/a%2Fb", headers=dpop_headers(bound_token, proof))
    assert response.status_code == 200, response.text
    assert response.json() == {"name": "a/b"}


@pytest.mark.parametrize(
    ("htu_path", "request_path"),
    [("/things/a/b", "/things/a%2Fb"), ("/things/a%2Fb", "/things/a/b")],
)
async def test_htu_with_decoded_slash_is_another_path(
    clients: AppFactory, key: DPoPKey, bound_token: str, htu_path: str, request_path: str
) -> None:
    proof = key.proof("GET", BASE + htu_path, access_token=bound_token)
    response = await clients().get(request_path, headers=dpop_headers(bound_token, proof))
    assert_proof_refused(response, "htu does not match the request URL")


async def test_proof_for_another_token(
    clients: AppFactory, key: DPoPKey, bound_token: str, make_token: MakeToken
) -> None:
    other = make_token(cnf={"jkt": key.thumbprint})
    proof = key.proof("GET", ORDERS, access_token=other)
    response = await clients().get("/orders", headers=dpop_headers(bound_token, proof))
    assert_proof_refused(response, "ath does not match the access token")


async def test_missing_or_repeated_proof_header(
    clients: AppFactory, key: DPoPKey, bound_token: str
) -> None:
    client = clients()
    response = await client.get("/orders", headers={"Authorization": f"DPoP {bound_token}"})
    assert_proof_refused(response, "missing DPoP proof")
    first = key.proof("GET", ORDERS, access_token=bound_token)
    second = key.proof("GET", ORDERS, access_token=bound_token)
    two = [("Authorization", f"DPoP {bound_token}"), ("DPoP", first), ("DPoP", second)]
    assert_proof_refused(await client.get("/orders", headers=two), "more than one DPoP header")
    # Neither proof was spent by the refused request.
    assert (await client.get("/orders", headers=dpop_headers(bound_token, first))).is_success


async def test_bound_token_as_bearer(clients: AppFactory, key: DPoPKey, bound_token: str) -> None:
    proof = key.proof("GET", ORDERS, access_token=bound_token)
    headers = {"Authorization": f"Bearer {bound_token}", "DPoP": proof}
    response = await clients().get("/orders", headers=headers)
    assert_token_refused(response, "DPoP-bound token presented as a bearer token")


async def test_bound_token_where_dpop_is_off(
    clients: AppFactory, key: DPoPKey, bound_token: str
) -> None:
    client = clients(dpop=None)
    proof = key.proof("GET", ORDERS, access_token=bound_token)
    reason = "DPoP-bound token, but this service does not check DPoP proofs"
    for scheme in ("Bearer", "DPoP"):
        headers = {"Authorization": f"{scheme} {bound_token}", "DPoP": proof}
        assert_token_refused(await client.get("/orders", headers=headers), reason, "Bearer")


async def test_unbound_token_with_dpop_scheme(
    clients: AppFactory, key: DPoPKey, make_token: MakeToken
) -> None:
    token = make_token()
    proof = key.proof("GET", ORDERS, access_token=token)
    response = await clients().get("/orders", headers=dpop_headers(token, proof))
    assert_token_refused(response, "DPoP scheme used with a token that is not DPoP-bound")


async def test_unbound_bearer_token_when_dpop_optional(
    clients: AppFactory, make_token: MakeToken
) -> None:
    response = await clients().get("/orders", headers={"Authorization": f"Bearer {make_token()}"})
    assert response.status_code == 200
    assert response.json()["jkt"] is None


async def test_unbound_token_when_dpop_required(clients: AppFactory, make_token: MakeToken) -> None:
    response = await clients(require=True).get(
        "/orders", headers={"Authorization": f"Bearer {make_token()}"}
    )
    assert_token_refused(response, "this service accepts only DPoP-bound tokens")


async def test_required_dpop_still_accepts_bound_tokens(
    clients: AppFactory, key: DPoPKey, bound_token: str
) -> None:
    proof = key.proof("POST", ORDERS, access_token=bound_token)
    response = await clients(require=True).post("/orders", headers=dpop_headers(bound_token, proof))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("dpop", "require", "challenge", "detail"),
    [
        (None, False, f'Bearer realm="{AUDIENCE}"', "a bearer token is required"),
        (
            True,
            False,
            f'Bearer realm="{AUDIENCE}", DPoP algs="ES256"',
            "an access token is required",
        ),
        (True, True, 'DPoP algs="ES256"', "a DPoP-bound access token is required"),
    ],
)
async def test_missing_token_challenges(
    clients: AppFactory, dpop: bool | None, require: bool, challenge: str, detail: str
) -> None:
    response = await clients(dpop=dpop, require=require).get("/orders")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == challenge
    assert response.json()["detail"] == detail


async def test_insufficient_scope_answers_in_the_dpop_scheme(
    clients: AppFactory, key: DPoPKey, bound_token: str
) -> None:
    proof = key.proof("GET", f"{BASE}/admin", access_token=bound_token)
    response = await clients().get("/admin", headers=dpop_headers(bound_token, proof))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'DPoP algs="ES256", error="insufficient_scope", scope="admin:write"'
    )


async def test_malformed_cnf_refused(clients: AppFactory, make_token: MakeToken) -> None:
    for cnf in ({"jkt": 5}, {"jkt": ""}, "jkt"):
        token = make_token(cnf=cnf)
        response = await clients().get("/orders", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.json()["type"] == "urn:hopauth:problem:invalid-token"


@pytest.mark.parametrize("dpop", [True, False], ids=["dpop-on", "dpop-off"])
async def test_token_bound_by_an_unchecked_method_refused(
    clients: AppFactory, make_token: MakeToken, key: DPoPKey, dpop: bool
) -> None:
    """RFC 7800 §3.1 / RFC 8705 §3: an mTLS-bound token is not a bearer token here."""
    app = clients(dpop=dpop)
    x5t = {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}
    reason = "token bound by a confirmation method this service cannot check"
    bearer = make_token(cnf=x5t)
    response = await app.get("/orders", headers={"Authorization": f"Bearer {bearer}"})
    assert_token_refused(response, reason, scheme="Bearer")
    if dpop:
        # Bound twice: a good DPoP proof does not make up for the binding left unchecked.
        both = make_token(cnf={"jkt": key.thumbprint, **x5t})
        proof = key.proof("GET", ORDERS, access_token=both)
        response = await app.get("/orders", headers=dpop_headers(both, proof))
        assert_token_refused(response, reason)


async def test_wrongly_wired_dpop_validator_is_a_programming_error(
    clients: AppFactory, make_token: MakeToken
) -> None:
    client = clients(dpop="not a validator")
    with pytest.raises(RuntimeError, match="hopauth_dpop"):
        await client.get("/orders", headers={"Authorization": f"Bearer {make_token()}"})


@pytest.mark.parametrize("host", ["evil.example", "order", "order:8080"])
async def test_a_proof_for_another_server_is_refused_whatever_the_host_header(
    clients: AppFactory, key: DPoPKey, bound_token: str, host: str
) -> None:
    """RFC 9449 §4.3 point 9, §11.1: the client's Host header does not say where it is."""
    proof = key.proof("GET", "http://evil.example/orders", access_token=bound_token)
    headers = {**dpop_headers(bound_token, proof), "Host": host}
    response = await clients().get("/orders", headers=headers)
    assert_proof_refused(response, "htu does not match the request URL")


@pytest.mark.parametrize("host", ["evil.example", "order", "10.0.0.7:8002"])
async def test_a_proof_for_the_configured_origin_passes_whatever_the_host_header(
    clients: AppFactory, key: DPoPKey, bound_token: str, host: str
) -> None:
    proof = key.proof("GET", ORDERS, access_token=bound_token)
    headers = {**dpop_headers(bound_token, proof), "Host": host}
    response = await clients().get("/orders", headers=headers)
    assert response.status_code == 200, response.text


async def test_every_configured_origin_is_accepted_and_only_those(
    clients: AppFactory, key: DPoPKey, bound_token: str
) -> None:
    """A service reached under two names (inside the network and published)."""
    validator = DPoPProofValidator(
        replay_cache=MemoryReplayCache(), origins=[BASE, "https://orders.example:8443/"]
    )
    client = clients(dpop=validator)
    for url in (ORDERS, "https://orders.example:8443/orders", "HTTPS://Orders.Example:8443/orders"):
        proof = key.proof("GET", url, access_token=bound_token)
        response = await client.get("/orders", headers=dpop_headers(bound_token, proof))
        assert response.status_code == 200, (url, response.text)
    for url in ("https://orders.example/orders", "http://orders.example:8443/orders"):
        proof = key.proof("GET", url, access_token=bound_token)
        response = await client.get("/orders", headers=dpop_headers(bound_token, proof))
        assert_proof_refused(response, "htu does not match the request URL")


async def test_a_validator_without_origins_is_refused(
    clients: AppFactory, key: DPoPKey, bound_token: str, make_token: MakeToken
) -> None:
    """Fail closed: with no origin the only URL at hand would be the client's Host header."""
    client = clients(dpop=DPoPProofValidator(replay_cache=MemoryReplayCache()))
    proof = key.proof("GET", ORDERS, access_token=bound_token)
    for headers in (
        dpop_headers(bound_token, proof),
        {"Authorization": f"Bearer {make_token()}"},
    ):
        with pytest.raises(RuntimeError, match="no origins"):
            await client.get("/orders", headers=headers)


async def test_refusals_never_log_token_or_proof(
    clients: AppFactory, key: DPoPKey, bound_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = clients()
    proof = key.proof("GET", ORDERS, access_token=bound_token)
    with caplog.at_level("DEBUG"):
        await client.get("/orders", headers=dpop_headers(bound_token, proof))
        replayed = await client.get("/orders", headers=dpop_headers(bound_token, proof))
        as_bearer = await client.get("/orders", headers={"Authorization": f"Bearer {bound_token}"})
    assert replayed.status_code == as_bearer.status_code == 401
    assert caplog.records, "refusals should be logged"
    for text in [r.getMessage() for r in caplog.records] + [replayed.text, as_bearer.text]:
        for secret in (bound_token, proof, *proof.split(".")):
            assert secret not in text


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/orders/a?b", "/orders/a%3Fb"), ("/orders/a#b", "/orders/a%23b"), ("/x y", "/x%20y")],
)
def test_without_raw_path_the_decoded_path_is_encoded_again(path: str, expected: str) -> None:
    # ASGI makes raw_path optional; a decoded "?" must not end the path for htu.
    request = Request({"type": "http", "method": "GET", "path": path, "headers": []})
    assert _request_uri(request, "http://order:8002") == f"http://order:8002{expected}"
