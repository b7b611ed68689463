"""The sending side with a DPoP key (RFC 9449 §5, §7, §8, §9).

The token endpoint here is a stand-in (httpx.MockTransport) that checks each
proof with hopauth's own validator and mints JWTs bound to its key; the
resource server is a real FastAPI app with hopauth's adapter, through ASGI.
(The real auth server does the same in services/auth/tests/test_dpop.py.)
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from hopauth import (
    AccessTokenValidator,
    ClientCredentials,
    ClientCredentialsAuth,
    DPoPKey,
    DPoPProofValidator,
    HopAuthError,
    MemoryReplayCache,
    MemoryTokenCache,
    Principal,
    StaticKeySource,
    TokenEndpoint,
    TokenExchangeAuth,
    TokenExchanger,
    TokenRequestError,
)
from hopauth.client_credentials import token_cache_key
from hopauth.fastapi import Requires, install_problem_handlers
from hopauth_support import AUDIENCE, ISSUER, MakeToken

TOKEN_URL = "http://127.0.0.1:8001/token"
ORDER = "http://order"


def claims_of(jwt: str) -> dict[str, Any]:
    segment = jwt.split(".")[1]
    value: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return value


@dataclass
class DPoPTokenServer:
    """Checks DPoP proofs like RFC 9449 §5 asks, and binds what it mints to the proof key."""

    make_token: MakeToken
    validator: DPoPProofValidator = field(
        default_factory=lambda: DPoPProofValidator(replay_cache=MemoryReplayCache())
    )
    #: When set, a proof without this nonce gets 400 use_dpop_nonce (§8).
    nonce: str | None = None
    #: Answer token_type Bearer whatever was asked (a server ignoring DPoP).
    ignore_dpop: bool = False
    proofs: list[str | None] = field(default_factory=list)

    async def handler(self, request: httpx.Request) -> httpx.Response:
        proof = request.headers.get("dpop")
        self.proofs.append(proof)
        jkt = None
        if proof is not None and not self.ignore_dpop:
            checked = await self.validator.validate(proof, method="POST", url=TOKEN_URL)
            if self.nonce is not None and claims_of(proof).get("nonce") != self.nonce:
                return httpx.Response(
                    400, json={"error": "use_dpop_nonce"}, headers={"DPoP-Nonce": self.nonce}
                )
            jkt = checked.jkt
        token = self.make_token(
            act=None, **({"cnf": {"jkt": jkt}} if jkt else {}), client_id="order"
        )
        return httpx.Response(
            200,
            json={
                "access_token": token,
                "token_type": "DPoP" if jkt else "Bearer",
                "expires_in": 300,
                "scope": "orders:read",
            },
        )


@pytest.fixture
def token_server(make_token: MakeToken) -> DPoPTokenServer:
    return DPoPTokenServer(make_token)


@pytest.fixture
async def issuer(token_server: DPoPTokenServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(token_server.handler)) as http:
        yield http


@pytest.fixture
def key() -> DPoPKey:
    return DPoPKey.generate()


def endpoint(http: httpx.AsyncClient, key: DPoPKey | None) -> TokenEndpoint:
    return TokenEndpoint(
        token_url=TOKEN_URL,
        client_id="order",
        client_secret="order-dev-secret",
        http=http,
        dpop_key=key,
    )


def order_app(static_keys: StaticKeySource) -> FastAPI:
    app = FastAPI()
    app.state.hopauth_validator = AccessTokenValidator(
        issuer=ISSUER, audience=AUDIENCE, keys=static_keys
    )
    app.state.hopauth_dpop = DPoPProofValidator(replay_cache=MemoryReplayCache(), origins=[ORDER])
    app.state.hopauth_require_dpop = True
    install_problem_handlers(app)

    @app.post("/orders/{order_id}/notes")
    async def note(
        order_id: str,
        body: dict[str, str],
        principal: Annotated[Principal, Depends(Requires("orders:read"))],
    ) -> dict[str, Any]:
        return {"order": order_id, "jkt": principal.confirmation_jkt, "body": body}

    return app


# --- TokenEndpoint ----------------------------------------------------------------


async def test_token_request_carries_a_proof_and_gets_a_bound_token(
    issuer: httpx.AsyncClient, token_server: DPoPTokenServer, key: DPoPKey
) -> None:
    response = await endpoint(issuer, key).client_credentials(
        audience="order", scopes=["orders:read"]
    )
    assert response.token_type == "DPoP"
    assert claims_of(response.access_token)["cnf"] == {"jkt": key.thumbprint}
    [proof] = token_server.proofs
    assert proof is not None
    claims = claims_of(proof)
    assert claims["htm"] == "POST" and claims["htu"] == TOKEN_URL
    assert "ath" not in claims


async def test_exchange_carries_a_proof_too(
    issuer: httpx.AsyncClient, token_server: DPoPTokenServer, key: DPoPKey, make_token: MakeToken
) -> None:
    response = await endpoint(issuer, key).exchange(
        subject_token=make_token(), audience="inventory", scopes=["inventory:reserve"]
    )
    assert response.token_type == "DPoP"
    assert token_server.proofs[0] is not None


async def test_without_a_key_no_proof_and_bearer(
    issuer: httpx.AsyncClient, token_server: DPoPTokenServer
) -> None:
    response = await endpoint(issuer, None).client_credentials(audience="order", scopes=[])
    assert response.token_type == "Bearer"
    assert token_server.proofs == [None]
    assert "cnf" not in claims_of(response.access_token)


async def test_bearer_answer_to_a_proof_is_refused(
    issuer: httpx.AsyncClient, token_server: DPoPTokenServer, key: DPoPKey
) -> None:
    token_server.ignore_dpop = True
    with pytest.raises(HopAuthError, match="token_type is not DPoP"):
        await endpoint(issuer, key).client_credentials(audience="order", scopes=[])


async def test_nonce_dance_at_the_token_endpoint(
    issuer: httpx.AsyncClient, token_server: DPoPTokenServer, key: DPoPKey
) -> None:
    token_server.nonce = "server-nonce-1"
    response = await endpoint(issuer, key).client_credentials(audience="order", scopes=[])
    assert response.token_type == "DPoP"
    first, second = token_server.proofs
    assert first is not None and second is not None
    assert "nonce" not in claims_of(first)
    assert claims_of(second)["nonce"] == "server-nonce-1"
    assert claims_of(first)["jti"] != claims_of(second)["jti"]


async def test_nonce_retried_only_once(key: DPoPKey) -> None:
    calls = 0

    def always_nonce(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(
            400, json={"error": "use_dpop_nonce"}, headers={"DPoP-Nonce": f"n-{calls}"}
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(always_nonce)) as http:
        with pytest.raises(TokenRequestError) as caught:
            await endpoint(http, key).client_credentials(audience="order", scopes=[])
    assert caught.value.error == "use_dpop_nonce"
    assert calls == 2


def test_endpoint_exposes_the_key_without_showing_it(key: DPoPKey) -> None:
    ep = endpoint(httpx.AsyncClient(), key)
    assert ep.dpop_key is key
    assert key.thumbprint in repr(ep)
    assert endpoint(httpx.AsyncClient(), None).dpop_key is None


# --- client-credentials cache ---------------------------------------------------------


def test_cache_key_includes_the_key_thumbprint() -> None:
    plain = token_cache_key("order", "inventory", ["b", "a"])
    assert plain == '["order","inventory",["a","b"]]'  # unchanged without DPoP
    a = token_cache_key("order", "inventory", ["a", "b"], "jkt-a")
    b = token_cache_key("order", "inventory", ["a", "b"], "jkt-b")
    assert len({plain, a, b}) == 3


async def test_replicas_with_their_own_keys_do_not_share_a_bound_token(
    issuer: httpx.AsyncClient, token_server: DPoPTokenServer
) -> None:
    shared = MemoryTokenCache()
    replica_a = ClientCredentials(
        endpoint(issuer, DPoPKey.generate()), audience="order", scopes=["x"], cache=shared
    )
    replica_b = ClientCredentials(
        endpoint(issuer, DPoPKey.generate()), audience="order", scopes=["x"], cache=shared
    )
    token_a, token_b = await replica_a.token(), await replica_b.token()
    assert token_a != token_b
    assert claims_of(token_a)["cnf"] != claims_of(token_b)["cnf"]
    assert len(token_server.proofs) == 2
    # A replica sharing a key (and the cache) does reuse the token.
    same_key = ClientCredentials(
        endpoint(issuer, replica_a.dpop_key), audience="order", scopes=["x"], cache=shared
    )
    assert await same_key.token() == token_a
    assert len(token_server.proofs) == 2


# --- auth flows against a DPoP resource server ---------------------------------------


async def test_client_credentials_auth_sends_token_and_proof(
    issuer: httpx.AsyncClient, key: DPoPKey, static_keys: StaticKeySource
) -> None:
    credentials = ClientCredentials(endpoint(issuer, key), audience="order", scopes=["x"])
    transport = httpx.ASGITransport(app=order_app(static_keys))
    async with httpx.AsyncClient(
        transport=transport, base_url=ORDER, auth=ClientCredentialsAuth(credentials)
    ) as order:
        for _ in range(3):  # a fresh proof each time, or the second would be a replay
            response = await order.post("/orders/42/notes?x=1", json={"text": "hi"})
            assert response.status_code == 200, response.text
            assert response.json() == {
                "order": "42",
                "jkt": key.thumbprint,
                "body": {"text": "hi"},
            }


async def test_token_exchange_auth_sends_token_and_proof(
    issuer: httpx.AsyncClient, key: DPoPKey, static_keys: StaticKeySource, make_token: MakeToken
) -> None:
    exchanger = TokenExchanger(endpoint(issuer, key))
    auth = TokenExchangeAuth(exchanger, make_token(), audience="order", scopes=["orders:read"])
    assert auth.requires_request_body is True
    transport = httpx.ASGITransport(app=order_app(static_keys))
    async with httpx.AsyncClient(transport=transport, base_url=ORDER) as order:
        first = await order.post("/orders/7/notes", json={"text": "a"}, auth=auth)
        second = await order.post("/orders/7/notes", json={"text": "b"}, auth=auth)
    assert first.status_code == second.status_code == 200, second.text
    assert second.json()["jkt"] == key.thumbprint
    assert exchanger.stats.hits == 1  # the bound token is cached like any other


async def test_bearer_exchange_auth_needs_no_body_buffering(
    issuer: httpx.AsyncClient, make_token: MakeToken
) -> None:
    auth = TokenExchangeAuth(
        TokenExchanger(endpoint(issuer, None)), make_token(), audience="order", scopes=[]
    )
    assert auth.requires_request_body is False


class NonceResource:
    """A resource server that asks for a nonce once (RFC 9449 §9), then checks it."""

    def __init__(self) -> None:
        # Headers as sent: httpx re-sends the same (mutated) request object.
        self.seen: list[dict[str, str]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(dict(request.headers))
        proof = claims_of(request.headers["dpop"])
        if proof.get("nonce") != "rs-nonce":
            return httpx.Response(
                401,
                headers={
                    "WWW-Authenticate": 'DPoP algs="ES256", error="use_dpop_nonce"',
                    "DPoP-Nonce": "rs-nonce",
                },
            )
        return httpx.Response(200, json={"body": request.content.decode()})


async def test_resource_nonce_retry_for_both_flows(
    issuer: httpx.AsyncClient, token_server: DPoPTokenServer, key: DPoPKey, make_token: MakeToken
) -> None:
    credentials = ClientCredentials(endpoint(issuer, key), audience="order", scopes=["x"])
    exchanger = TokenExchanger(endpoint(issuer, key))
    flows: list[httpx.Auth] = [
        ClientCredentialsAuth(credentials),
        TokenExchangeAuth(exchanger, make_token(), audience="order", scopes=["orders:read"]),
    ]
    for auth in flows:
        resource = NonceResource()
        async with httpx.AsyncClient(transport=httpx.MockTransport(resource.handler)) as http:
            response = await http.post(f"{ORDER}/orders", content=b"payload", auth=auth)
        assert response.status_code == 200
        assert response.json() == {"body": "payload"}
        first, second = resource.seen
        assert first["authorization"] == second["authorization"]
        assert first["authorization"].startswith("DPoP ")
        assert claims_of(first["dpop"])["jti"] != claims_of(second["dpop"])["jti"]
    # The nonce retry kept the token: no new token requests beyond one per flow.
    assert len(token_server.proofs) == 2


async def test_client_credentials_auth_401_gets_a_new_token_and_a_new_proof(
    issuer: httpx.AsyncClient, token_server: DPoPTokenServer, key: DPoPKey
) -> None:
    seen: list[dict[str, str]] = []

    def refuse_first(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.headers))
        if len(seen) == 1:
            return httpx.Response(401, headers={"WWW-Authenticate": 'DPoP error="invalid_token"'})
        return httpx.Response(200)

    credentials = ClientCredentials(endpoint(issuer, key), audience="order", scopes=["x"])
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse_first)) as http:
        response = await http.get(f"{ORDER}/orders", auth=ClientCredentialsAuth(credentials))
    assert response.status_code == 200
    first, second = seen
    assert first["authorization"] != second["authorization"]
    assert first["dpop"] != second["dpop"]
    assert len(token_server.proofs) == 2


async def test_concurrent_callers_share_one_bound_token(
    issuer: httpx.AsyncClient, token_server: DPoPTokenServer, key: DPoPKey
) -> None:
    credentials = ClientCredentials(endpoint(issuer, key), audience="order", scopes=["x"])
    tokens = await asyncio.gather(*(credentials.token() for _ in range(20)))
    assert len(set(tokens)) == 1
    assert len(token_server.proofs) == 1
