"""A DPoP proof's jti is recorded only once the client is authenticated (RFC 9449 §11.1).

Otherwise anyone could fill the replay cache with proofs of their own and no
credentials at all: in Redis that costs memory, and the in-memory cache
refuses every new proof, everyone's, once it holds 100,000.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from auth_service.app import create_app
from auth_testing import (
    ServerThread,
    ValkeyServer,
    assert_oauth_error,
    free_port,
    make_settings,
)
from dpop_testing import client_credentials, forged_proof, jwt_claims
from hopauth import DPoPKey, MemoryReplayCache
from hopauth.redis_replay import DPOP_JTI_PREFIX

ATTEMPTS = 40


def token_url(server: ServerThread) -> str:
    return f"{server.app.state.settings.issuer}/token"


def unauthenticated(http: httpx.Client, proof: str, how: str) -> httpx.Response:
    """A token request with a valid proof and no valid client credentials."""
    data: dict[str, str] = {"grant_type": "client_credentials", "audience": "order"}
    auth: Any = None
    if how == "wrong-secret":
        auth = ("billing-worker", "not-the-secret")
    elif how == "unknown-client":
        auth = ("nobody", "whatever")
    elif how == "secret-in-body":
        data |= {"client_id": "billing-worker", "client_secret": "not-the-secret"}
    elif how == "public-client":
        data |= {"client_id": "web"}  # a public client may not use client credentials
    elif how == "unknown-grant":
        data = {"grant_type": "password", "username": "alice", "password": "x"}
    elif how == "no-grant-type":
        data = {"audience": "order"}
    return http.post("/token", data=data, auth=auth, headers={"DPoP": proof})


HOW = ["wrong-secret", "unknown-client", "secret-in-body", "public-client"]
HOW += ["unknown-grant", "no-grant-type", "none"]


def expected_error(response: httpx.Response, how: str) -> None:
    if how == "unknown-grant":
        assert_oauth_error(response, 400, "unsupported_grant_type")
    elif how == "no-grant-type":
        assert_oauth_error(response, 400, "invalid_request")
    else:  # a public client has no secret, so it cannot use client credentials either
        assert_oauth_error(response, 401, "invalid_client")


def jti_keys(store: redis.Redis) -> set[bytes]:
    return set(store.scan_iter(match=f"{DPOP_JTI_PREFIX}*", count=1000))


@pytest.fixture
def store(valkey: ValkeyServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(valkey.url)
    yield client
    client.close()


def test_proofs_without_client_credentials_leave_redis_untouched(
    http: httpx.Client, auth_server: ServerThread, store: redis.Redis
) -> None:
    key = DPoPKey.generate()
    before = jti_keys(store)
    proofs = [key.proof("POST", token_url(auth_server)) for _ in range(ATTEMPTS)]
    for i, proof in enumerate(proofs):
        how = HOW[i % len(HOW)]
        expected_error(unauthenticated(http, proof, how), how)
    assert jti_keys(store) == before

    # The same proof, now with the client's credentials: it was never used, so it is good...
    proof = proofs[0]
    granted = client_credentials(http, "billing-worker", "order", proof)
    assert granted.status_code == 200, granted.text
    assert granted.json()["token_type"] == "DPoP"
    assert store.exists(f"{DPOP_JTI_PREFIX}{jwt_claims(proof)['jti']}") == 1
    # ...once: a replay with good credentials is still refused.
    replay = client_credentials(http, "billing-worker", "order", proof)
    assert_oauth_error(replay, 400, "invalid_dpop_proof")
    assert replay.json()["error_description"] == "proof replayed (jti already used)"


@pytest.fixture(scope="module")
def memory_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """An auth server without Redis: its replay cache is hopauth's MemoryReplayCache."""
    port = free_port()
    settings = make_settings(tmp_path_factory.mktemp("auth-no-redis"), port)
    with ServerThread(create_app(settings), port) as server:
        yield server


def test_proofs_without_client_credentials_leave_the_memory_cache_untouched(
    memory_server: ServerThread,
) -> None:
    cache = memory_server.app.state.oauth_server.context.dpop_replay
    assert isinstance(cache, MemoryReplayCache)
    key = DPoPKey.generate()
    with httpx.Client(base_url=memory_server.base_url, timeout=10) as http:
        before = len(cache)
        for i in range(ATTEMPTS):
            how = HOW[i % len(HOW)]
            proof = key.proof("POST", token_url(memory_server))
            expected_error(unauthenticated(http, proof, how), how)
        assert len(cache) == before

        proof = key.proof("POST", token_url(memory_server))
        assert client_credentials(http, "billing-worker", "order", proof).status_code == 200
        assert len(cache) == before + 1
        replay = client_credentials(http, "billing-worker", "order", proof)
        assert_oauth_error(replay, 400, "invalid_dpop_proof")
        assert len(cache) == before + 1


def test_a_bad_proof_is_still_refused_before_client_authentication(
    http: httpx.Client, auth_server: ServerThread
) -> None:
    # The proof is checked first: a bad one is invalid_dpop_proof whatever the credentials.
    stale = forged_proof(token_url(auth_server), iat_offset=-3600)
    response = unauthenticated(http, stale, "wrong-secret")
    assert_oauth_error(response, 400, "invalid_dpop_proof")
