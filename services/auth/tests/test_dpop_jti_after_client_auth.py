"""A DPoP proof's jti is recorded only once the grant is validated (RFC 9449 §11.1).

Otherwise anyone could fill the replay cache with proofs of their own and no
credentials at all (the public client ``web`` has no secret, so a made-up code
or refresh token would do): in Redis that costs memory, and the in-memory
cache refuses every new proof, everyone's, once it holds 100,000. The jti is
still recorded before any token is issued or code or refresh token spent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis
from auth_service.app import create_app
from auth_testing import (
    REDIRECT_URI,
    ServerThread,
    ValkeyServer,
    assert_oauth_error,
    authorization_code,
    free_port,
    make_settings,
    pkce_pair,
)
from dpop_testing import client_credentials, forged_proof, jwt_claims, redeem, refresh
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


# -- the public client: no secret, so only the code or refresh token can stop a proof --

PUBLIC_GRANTS = ("refresh_token", "authorization_code")


def made_up_grant(http: httpx.Client, proof: str, grant_type: str) -> httpx.Response:
    """The public client ``web`` with a valid proof and a made-up refresh token or code."""
    data = {"grant_type": grant_type, "client_id": "web"}
    if grant_type == "refresh_token":
        data["refresh_token"] = "garbage"
    else:
        verifier, _ = pkce_pair()
        data |= {"code": "bogus", "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    return http.post("/token", data=data, headers={"DPoP": proof})


def fresh_proofs(server: ServerThread) -> list[str]:
    """One proof per attempt, each of a throw-away key: as cheap as an attacker makes them."""
    return [DPoPKey.generate().proof("POST", token_url(server)) for _ in range(ATTEMPTS)]


def assert_every_made_up_grant_refused(http: httpx.Client, proofs: list[str]) -> None:
    for i, proof in enumerate(proofs):
        response = made_up_grant(http, proof, PUBLIC_GRANTS[i % len(PUBLIC_GRANTS)])
        assert_oauth_error(response, 400, "invalid_grant")


def test_made_up_public_client_grants_leave_redis_untouched(
    http: httpx.Client, auth_server: ServerThread, store: redis.Redis
) -> None:
    before = jti_keys(store)
    proofs = fresh_proofs(auth_server)
    assert_every_made_up_grant_refused(http, proofs)
    assert jti_keys(store) == before
    # Never recorded, so still good for one real grant.
    code, verifier = authorization_code(http, "alice")
    granted = redeem(http, code, verifier, proofs[-1])
    assert granted.status_code == 200, granted.text
    assert jti_keys(store) == before | {
        f"{DPOP_JTI_PREFIX}{jwt_claims(proofs[-1])['jti']}".encode()
    }


def test_made_up_public_client_grants_leave_the_memory_cache_untouched(
    memory_server: ServerThread,
) -> None:
    cache = memory_server.app.state.oauth_server.context.dpop_replay
    assert isinstance(cache, MemoryReplayCache)
    with httpx.Client(base_url=memory_server.base_url, timeout=10) as http:
        before = len(cache)
        assert_every_made_up_grant_refused(http, fresh_proofs(memory_server))
        assert len(cache) == before


def test_a_granted_public_client_proof_is_recorded_and_a_replay_spends_nothing(
    memory_server: ServerThread,
) -> None:
    cache = memory_server.app.state.oauth_server.context.dpop_replay
    assert isinstance(cache, MemoryReplayCache)
    key = DPoPKey.generate()
    url = token_url(memory_server)
    with httpx.Client(base_url=memory_server.base_url, timeout=10) as http:
        before = len(cache)
        proof = key.proof("POST", url)
        code, verifier = authorization_code(http, "alice")
        granted = redeem(http, code, verifier, proof)
        assert granted.status_code == 200, granted.text
        assert len(cache) == before + 1
        refresh_token = granted.json()["refresh_token"]

        # The same proof with a good refresh token, then with a good code: refused...
        replay = refresh(http, refresh_token, proof)
        assert_oauth_error(replay, 400, "invalid_dpop_proof")
        assert replay.json()["error_description"] == "proof replayed (jti already used)"
        code, verifier = authorization_code(http, "alice")
        assert_oauth_error(redeem(http, code, verifier, proof), 400, "invalid_dpop_proof")
        assert len(cache) == before + 1
        # ...before either was spent: both still work, with new proofs.
        assert refresh(http, refresh_token, key.proof("POST", url)).status_code == 200
        assert redeem(http, code, verifier, key.proof("POST", url)).status_code == 200
        assert len(cache) == before + 3


def test_a_whole_captured_refresh_request_replayed_burns_nothing(
    memory_server: ServerThread,
) -> None:
    """A copy of a refresh request that succeeded (token and proof) is refused for its
    proof; the family survives (RFC 9449 §11.1). Reuse detection would revoke it if
    the copy got past the proof check."""
    key = DPoPKey.generate()
    url = token_url(memory_server)
    with httpx.Client(base_url=memory_server.base_url, timeout=10) as http:
        code, verifier = authorization_code(http, "alice")
        login = redeem(http, code, verifier, key.proof("POST", url))
        assert login.status_code == 200, login.text
        captured = key.proof("POST", url)
        first = refresh(http, login.json()["refresh_token"], captured)
        assert first.status_code == 200, first.text

        replay = refresh(http, login.json()["refresh_token"], captured)
        assert_oauth_error(replay, 400, "invalid_dpop_proof")
        after = refresh(http, first.json()["refresh_token"], key.proof("POST", url))
        assert after.status_code == 200, after.text


def test_a_spent_refresh_token_with_a_fresh_proof_still_revokes_the_family(
    memory_server: ServerThread,
) -> None:
    # The key's holder reusing a spent token is reuse (RFC 9700 §4.14.2): the family dies.
    key = DPoPKey.generate()
    url = token_url(memory_server)
    with httpx.Client(base_url=memory_server.base_url, timeout=10) as http:
        code, verifier = authorization_code(http, "alice")
        login = redeem(http, code, verifier, key.proof("POST", url))
        first = refresh(http, login.json()["refresh_token"], key.proof("POST", url))
        assert first.status_code == 200, first.text
        reuse = refresh(http, login.json()["refresh_token"], key.proof("POST", url))
        assert_oauth_error(reuse, 400, "invalid_grant")
        after = refresh(http, first.json()["refresh_token"], key.proof("POST", url))
        assert_oauth_error(after, 400, "invalid_grant")


def test_reuse_asking_for_more_scope_still_revokes_the_family(auth_server: ServerThread) -> None:
    """RFC 9700 §4.14.2: a spent refresh token shown again kills the family, whatever
    else is wrong with the request (the refresh token is the whole credential)."""
    with httpx.Client(base_url=auth_server.base_url, timeout=10) as http:
        code, verifier = authorization_code(http, "alice")
        login = redeem(http, code, verifier, None)
        assert login.status_code == 200, login.text
        first = refresh(http, login.json()["refresh_token"], None)
        assert first.status_code == 200, first.text

        form = {
            "grant_type": "refresh_token",
            "refresh_token": login.json()["refresh_token"],
            "client_id": "web",
            "scope": "orders:read support:read",
        }
        assert_oauth_error(http.post("/token", data=form), 400, "invalid_grant")
        after = refresh(http, first.json()["refresh_token"], None)
        assert_oauth_error(after, 400, "invalid_grant")


SENDERS = 6


def at_once(base_url: str, send: Callable[[httpx.Client], httpx.Response]) -> list[httpx.Response]:
    """``send`` from SENDERS threads released together, each with its own connection."""
    start = threading.Barrier(SENDERS)

    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=10) as http:
            start.wait()
            return send(http)

    with ThreadPoolExecutor(SENDERS) as pool:
        return list(pool.map(one, range(SENDERS)))


@pytest.mark.parametrize("server_name", ["auth_server", "memory_server"])
@pytest.mark.parametrize("grant_type", PUBLIC_GRANTS)
def test_one_proof_sent_at_once_with_one_grant_gets_tokens_once(
    request: pytest.FixtureRequest, server_name: str, grant_type: str
) -> None:
    server: ServerThread = request.getfixturevalue(server_name)
    key = DPoPKey.generate()
    url = token_url(server)
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        code, verifier = authorization_code(http, "bob")
        if grant_type == "refresh_token":
            login = redeem(http, code, verifier, key.proof("POST", url))
            assert login.status_code == 200, login.text
            refresh_token = login.json()["refresh_token"]
    proof = key.proof("POST", url)
    if grant_type == "refresh_token":
        responses = at_once(server.base_url, lambda http: refresh(http, refresh_token, proof))
    else:
        responses = at_once(server.base_url, lambda http: redeem(http, code, verifier, proof))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [400] * (SENDERS - 1), [r.text for r in responses]
    for response in responses:
        if response.status_code == 400:
            assert response.json()["error"] in {"invalid_dpop_proof", "invalid_grant"}
