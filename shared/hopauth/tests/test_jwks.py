"""JWKSCache and StaticKeySource: discovery, TTL, cooldown, single flight, rotation."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hopauth import (
    AccessTokenValidator,
    HopAuthError,
    InvalidTokenError,
    JWKSCache,
    StaticKeySource,
)
from hopauth_support import (
    AUDIENCE,
    ISSUER,
    KID,
    FakeClock,
    FakeIssuer,
    MakeToken,
    public_jwk,
)

DISCOVERY = "/.well-known/oauth-authorization-server"
JWKS = "/jwks.json"


def make_cache(http: httpx.AsyncClient, clock: FakeClock, **kwargs: Any) -> JWKSCache:
    return JWKSCache(issuer=ISSUER, http=http, clock=clock, **kwargs)


async def test_prefetch_then_keys_served_from_memory(
    fake_issuer: FakeIssuer, issuer_http: httpx.AsyncClient, clock: FakeClock
) -> None:
    cache = make_cache(issuer_http, clock)
    await cache.prefetch()
    for _ in range(10):
        key = await cache.get_key(KID)
        assert key.key_id == KID
    assert (fake_issuer.count(DISCOVERY), fake_issuer.count(JWKS)) == (1, 1)


async def test_first_get_key_fetches_lazily(
    fake_issuer: FakeIssuer, issuer_http: httpx.AsyncClient, clock: FakeClock
) -> None:
    cache = make_cache(issuer_http, clock)
    assert (await cache.get_key(KID)).algorithm_name == "ES256"
    assert fake_issuer.count(JWKS) == 1


@pytest.mark.parametrize(
    "advertised", [ISSUER + "/", "http://127.0.0.1:800", "https://evil.example", None]
)
async def test_discovery_issuer_mismatch_gives_no_keys(
    fake_issuer: FakeIssuer, issuer_http: httpx.AsyncClient, clock: FakeClock, advertised: Any
) -> None:
    fake_issuer.issuer = advertised
    cache = make_cache(issuer_http, clock)
    with pytest.raises(HopAuthError, match="does not match"):
        await cache.prefetch()
    clock.advance(60)
    with pytest.raises(InvalidTokenError) as caught:
        await cache.get_key(KID)
    assert caught.value.reason == "signing keys unavailable"
    assert fake_issuer.count(JWKS) == 0


@pytest.mark.parametrize(
    ("jwks_uri", "loads"),
    [("http://issuer.example/jwks.json", False), ("https://issuer.example/jwks.json", True)],
)
async def test_https_issuer_keys_only_over_https(
    fake_issuer: FakeIssuer,
    issuer_http: httpx.AsyncClient,
    clock: FakeClock,
    jwks_uri: str,
    loads: bool,
) -> None:
    """RFC 8414 §6.1: an https issuer's keys fetched over http could be swapped in transit."""
    https_issuer = "https://issuer.example"
    metadata = {"issuer": https_issuer, "jwks_uri": jwks_uri}
    cache = JWKSCache(
        issuer=https_issuer, http=issuer_http, clock=clock, discovery_path="/metadata"
    )
    fake_issuer.extra = {"/metadata": metadata}
    if loads:
        assert (await cache.get_key(KID)).key_id == KID
    else:
        with pytest.raises(HopAuthError, match="no usable jwks_uri"):
            await cache.prefetch()
        assert fake_issuer.count(JWKS) == 0


async def test_discovery_url_built_from_issuer(
    fake_issuer: FakeIssuer, issuer_http: httpx.AsyncClient, clock: FakeClock
) -> None:
    # A custom discovery path is appended to the issuer without its trailing slash.
    fake_issuer.extra["/.well-known/openid-configuration"] = fake_issuer.metadata
    cache = make_cache(issuer_http, clock, discovery_path="/.well-known/openid-configuration")
    await cache.prefetch()
    assert fake_issuer.count("/.well-known/openid-configuration") == 1
    assert fake_issuer.count(DISCOVERY) == 0


async def test_ttl_expiry_refetches(
    fake_issuer: FakeIssuer, issuer_http: httpx.AsyncClient, clock: FakeClock
) -> None:
    cache = make_cache(issuer_http, clock, ttl=300)
    await cache.prefetch()
    clock.advance(299)
    await cache.get_key(KID)
    assert fake_issuer.count(JWKS) == 1
    clock.advance(1)
    await cache.get_key(KID)
    assert fake_issuer.count(JWKS) == 2
    # The metadata was read once; the JWKS location is remembered.
    assert fake_issuer.count(DISCOVERY) == 1


async def test_kid_flood_costs_one_fetch_per_window(
    fake_issuer: FakeIssuer, issuer_http: httpx.AsyncClient, clock: FakeClock
) -> None:
    cache = make_cache(issuer_http, clock, refetch_cooldown=10)
    await cache.prefetch()
    clock.advance(11)

    async def lookup(kid: str) -> str:
        try:
            await cache.get_key(kid)
        except InvalidTokenError as exc:
            return exc.reason
        return "found"

    kids = [uuid.uuid4().hex for _ in range(500)]
    results = await asyncio.gather(*(lookup(kid) for kid in kids))
    assert set(results) == {"unknown key"}
    assert fake_issuer.count(JWKS) == 2  # prefetch + one shared refetch

    # Still inside the window: more random kids cost nothing.
    clock.advance(9)
    results = await asyncio.gather(*(lookup(uuid.uuid4().hex) for _ in range(500)))
    assert set(results) == {"unknown key"}
    assert fake_issuer.count(JWKS) == 2

    # The window has passed: one more fetch, however many callers.
    clock.advance(1)
    await asyncio.gather(*(lookup(uuid.uuid4().hex) for _ in range(500)))
    assert fake_issuer.count(JWKS) == 3
    # Known keys kept working throughout.
    assert (await cache.get_key(KID)).key_id == KID


async def test_rotation_new_kid_served_without_failure(
    fake_issuer: FakeIssuer,
    issuer_http: httpx.AsyncClient,
    clock: FakeClock,
    make_token: MakeToken,
) -> None:
    cache = make_cache(issuer_http, clock, ttl=300, refetch_cooldown=10)
    validator = AccessTokenValidator(issuer=ISSUER, audience=AUDIENCE, keys=cache)
    assert (await validator.validate(make_token())).subject == "alice"
    clock.advance(10)

    # The issuer rotates: publishes key-2 and starts signing with it at once.
    new_key = ec.generate_private_key(ec.SECP256R1())
    fake_issuer.jwks = {"keys": [*fake_issuer.jwks["keys"], public_jwk(new_key, "key-2")]}
    new_header = {"alg": "ES256", "typ": "at+jwt", "kid": "key-2"}
    tokens = [make_token(header=new_header, key=new_key) for _ in range(20)]
    principals = await asyncio.gather(*(validator.validate(t) for t in tokens))
    assert {p.subject for p in principals} == {"alice"}
    assert fake_issuer.count(JWKS) == 2
    # Tokens signed with the old key, still published, keep working.
    assert (await validator.validate(make_token())).subject == "alice"


async def test_unknown_kid_first_use_after_start_fetches_immediately(
    fake_issuer: FakeIssuer, issuer_http: httpx.AsyncClient, clock: FakeClock
) -> None:
    # The cooldown starts after a fetch, not at construction.
    cache = make_cache(issuer_http, clock)
    with pytest.raises(InvalidTokenError, match="unknown key"):
        await cache.get_key("not-there")
    assert fake_issuer.count(JWKS) == 1


async def test_cached_keys_survive_failing_refresh(
    fake_issuer: FakeIssuer,
    issuer_http: httpx.AsyncClient,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = make_cache(issuer_http, clock, ttl=300, refetch_cooldown=10)
    await cache.prefetch()
    fake_issuer.fail = True
    clock.advance(301)
    with caplog.at_level(logging.WARNING, logger="hopauth.jwks"):
        assert (await cache.get_key(KID)).key_id == KID
    assert fake_issuer.count(JWKS) == 2  # the refresh was tried, and failed
    assert any("failed" in r.getMessage() for r in caplog.records)

    # While the issuer stays down, retries are spaced by the cooldown.
    attempts = sum(fake_issuer.hits.values())
    clock.advance(5)
    assert (await cache.get_key(KID)).key_id == KID
    assert sum(fake_issuer.hits.values()) == attempts
    clock.advance(5)
    assert (await cache.get_key(KID)).key_id == KID
    assert sum(fake_issuer.hits.values()) == attempts + 1

    # Back up: the next refresh succeeds.
    fake_issuer.fail = False
    clock.advance(10)
    before = fake_issuer.count(JWKS)
    await cache.get_key(KID)
    clock.advance(10)
    await cache.get_key(KID)  # fresh again: no fetch
    assert fake_issuer.count(JWKS) == before + 1


async def test_no_keys_and_issuer_down_is_refused(
    fake_issuer: FakeIssuer, issuer_http: httpx.AsyncClient, clock: FakeClock
) -> None:
    fake_issuer.fail = True
    cache = make_cache(issuer_http, clock)
    with pytest.raises(HopAuthError):
        await cache.prefetch()
    with pytest.raises(InvalidTokenError) as caught:
        await cache.get_key(KID)
    assert caught.value.reason == "signing keys unavailable"


async def test_jwks_uri_reread_after_failed_jwks_fetch(
    fake_issuer: FakeIssuer, issuer_http: httpx.AsyncClient, clock: FakeClock
) -> None:
    cache = make_cache(issuer_http, clock, ttl=300, refetch_cooldown=10)
    await cache.prefetch()
    saved = fake_issuer.jwks
    fake_issuer.jwks = {"no": "keys"}
    clock.advance(301)
    await cache.get_key(KID)  # refresh fails, old key served
    fake_issuer.jwks = saved
    clock.advance(10)
    await cache.get_key(KID)
    assert fake_issuer.count(DISCOVERY) == 2


def test_static_source_keeps_only_signing_keys_with_kid(
    signing_key: ec.EllipticCurvePrivateKey,
) -> None:
    good = public_jwk(signing_key, "good")
    no_use = {k: v for k, v in public_jwk(signing_key, "no-use").items() if k != "use"}
    source = StaticKeySource(
        {
            "keys": [
                good,
                no_use,
                {**public_jwk(signing_key, "enc"), "use": "enc"},
                {k: v for k, v in good.items() if k != "kid"},
                {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
                {"kty": "EC", "kid": "broken", "crv": "P-256", "x": "AA", "y": "AA"},
                "not a key",
            ]
        }
    )

    async def check() -> None:
        assert (await source.get_key("good")).key_id == "good"
        assert (await source.get_key("no-use")).key_id == "no-use"
        for kid in ("enc", "secret", "broken", ""):
            with pytest.raises(InvalidTokenError, match="unknown key"):
                await source.get_key(kid)

    asyncio.run(check())


def test_static_source_refuses_a_document_without_keys() -> None:
    with pytest.raises(HopAuthError):
        StaticKeySource({"kid": "x"})


async def test_rotation_right_after_a_routine_fetch_causes_no_failure(
    fake_issuer: FakeIssuer,
    issuer_http: httpx.AsyncClient,
    clock: FakeClock,
    make_token: MakeToken,
) -> None:
    """The refetch window counts unknown-kid refetches only, not the start-up fetch."""
    cache = make_cache(issuer_http, clock, ttl=300, refetch_cooldown=10)
    validator = AccessTokenValidator(issuer=ISSUER, audience=AUDIENCE, keys=cache)
    await validator.validate(make_token())  # start-up fetch, moments before the rotation
    clock.advance(1)

    new_key = ec.generate_private_key(ec.SECP256R1())
    fake_issuer.jwks = {"keys": [*fake_issuer.jwks["keys"], public_jwk(new_key, "key-2")]}
    token = make_token(header={"alg": "ES256", "typ": "at+jwt", "kid": "key-2"}, key=new_key)
    assert (await validator.validate(token)).subject == "alice"
    assert fake_issuer.count(JWKS) == 2


async def test_warm_reports_an_unreachable_issuer_instead_of_raising(
    fake_issuer: FakeIssuer, issuer_http: httpx.AsyncClient, clock: FakeClock
) -> None:
    fake_issuer.fail = True
    cache = make_cache(issuer_http, clock)
    assert await cache.warm() is False
    fake_issuer.fail = False
    clock.advance(60)
    assert await cache.warm() is True
    assert (await cache.get_key(KID)).key_id == KID
