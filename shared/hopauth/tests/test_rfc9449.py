"""DPoP proofs (RFC 9449): the key, the proof it builds, and every refusal rule of the validator."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hopauth import (
    DPoPKey,
    DPoPProof,
    DPoPProofValidator,
    InvalidDPoPProofError,
    MemoryReplayCache,
)
from hopauth.rfc9449 import (
    access_token_hash,
    jwk_thumbprint,
    normalize_htu,
    resource_nonce,
    token_endpoint_nonce,
)
from hopauth_support import FakeClock, b64json, b64url, sign_es256

URL = "https://order.example/orders/42"
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"

# RFC 7638 §3.1: the example RSA key and its thumbprint.
RFC7638_KEY = {
    "kty": "RSA",
    "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
        "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
        "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    ),
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

# RFC 9449 §4.1's example proof key, and the jkt its §6.1 example token carries.
RFC9449_KEY = {
    "kty": "EC",
    "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
    "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
    "crv": "P-256",
}
RFC9449_JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


def decode(segment: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return value


def public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    return DPoPKey(key).public_jwk


class Forger:
    """Builds proofs by hand, so each test can break exactly one thing."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, now: float) -> None:
        self.key = key
        self.now = now

    def header(self, **overrides: Any) -> dict[str, Any]:
        return {"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(self.key), **overrides}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        claims = {
            "jti": "jti-" + b64url(hashlib.sha256(str(time.perf_counter_ns()).encode()).digest()),
            "htm": "GET",
            "htu": URL,
            "iat": int(self.now),
            "ath": access_token_hash(TOKEN),
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def proof(
        self,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
        key: ec.EllipticCurvePrivateKey | None = None,
    ) -> str:
        return sign_es256(
            key or self.key,
            header if header is not None else self.header(),
            claims if claims is not None else self.claims(),
        )


@pytest.fixture
def dpop_clock() -> FakeClock:
    return FakeClock(start=time.time())


@pytest.fixture
def validator(dpop_clock: FakeClock) -> DPoPProofValidator:
    return DPoPProofValidator(replay_cache=MemoryReplayCache(), clock=dpop_clock)


@pytest.fixture
def client_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def forge(client_key: ec.EllipticCurvePrivateKey, dpop_clock: FakeClock) -> Forger:
    return Forger(client_key, dpop_clock.now)


async def check(
    validator: DPoPProofValidator,
    proof: str,
    *,
    method: str = "GET",
    url: str = URL,
    access_token: str | None = TOKEN,
    jkt: str | None = None,
) -> DPoPProof:
    return await validator.validate(
        proof, method=method, url=url, access_token=access_token, jkt=jkt
    )


async def refused(validator: DPoPProofValidator, proof: str, **kwargs: Any) -> str:
    with pytest.raises(InvalidDPoPProofError) as caught:
        await check(validator, proof, **kwargs)
    reason = caught.value.reason
    # The reason goes into logs and error bodies: never the proof or the token.
    for part in (*proof.split("."), TOKEN):
        if len(part) >= 8:
            assert part not in reason and part not in str(caught.value)
    return reason


# --- the key -----------------------------------------------------------------


def test_thumbprint_of_the_rfc7638_example_key() -> None:
    assert jwk_thumbprint(RFC7638_KEY) == RFC7638_THUMBPRINT


def test_thumbprint_of_the_rfc9449_example_key() -> None:
    assert jwk_thumbprint(RFC9449_KEY) == RFC9449_JKT


def test_thumbprint_refuses_unknown_key_types_and_missing_members() -> None:
    with pytest.raises(ValueError, match="unsupported key type"):
        jwk_thumbprint({"kty": "oct", "k": "c2VjcmV0"})
    with pytest.raises(ValueError, match="y"):
        jwk_thumbprint({"kty": "EC", "crv": "P-256", "x": "abc"})


def test_key_thumbprint_is_that_of_its_public_jwk() -> None:
    key = DPoPKey.generate()
    jwk = key.public_jwk
    assert set(jwk) == {"kty", "crv", "x", "y"}
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256"
    assert key.thumbprint == jwk_thumbprint(jwk)
    assert len(key.thumbprint) == 43  # SHA-256, base64url without padding


def test_key_repr_shows_no_key_material(client_key: ec.EllipticCurvePrivateKey) -> None:
    key = DPoPKey(client_key)
    d = b64url(client_key.private_numbers().private_value.to_bytes(32, "big"))
    text = repr(key) + str(key)
    assert key.thumbprint in text
    assert d not in text
    assert key.public_jwk["x"] not in text


def test_key_from_pem_is_the_same_key(client_key: ec.EllipticCurvePrivateKey) -> None:
    pem = client_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert DPoPKey.from_pem(pem).thumbprint == DPoPKey(client_key).thumbprint


@pytest.mark.parametrize(
    "other",
    [
        lambda: ec.generate_private_key(ec.SECP384R1()),
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    ],
    ids=["P-384", "RSA"],
)
def test_only_p256_keys(other: Any) -> None:
    pem = other().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="P-256"):
        DPoPKey.from_pem(pem)


def test_proof_shape() -> None:
    key = DPoPKey.generate()
    proof = key.proof("POST", "https://order.example/orders?page=2#top", access_token=TOKEN)
    header_segment, claims_segment, signature = proof.split(".")
    header, claims = decode(header_segment), decode(claims_segment)
    assert header == {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk}
    assert set(claims) == {"jti", "htm", "htu", "iat", "ath"}
    assert claims["htm"] == "POST"
    assert claims["htu"] == "https://order.example/orders"  # no query, no fragment (§4.2)
    assert abs(claims["iat"] - time.time()) < 5
    assert claims["ath"] == b64url(hashlib.sha256(TOKEN.encode()).digest())
    assert len(base64.urlsafe_b64decode(claims["jti"] + "==")) >= 12  # >= 96 bits
    assert len(base64.urlsafe_b64decode(signature + "==")) == 64  # R || S (RFC 7518 §3.4)


def test_proof_without_token_has_no_ath_and_carries_a_nonce() -> None:
    claims = decode(DPoPKey.generate().proof("POST", URL, nonce="n-1").split(".")[1])
    assert "ath" not in claims
    assert claims["nonce"] == "n-1"


def test_every_proof_has_its_own_jti() -> None:
    key = DPoPKey.generate()
    jtis = {decode(key.proof("GET", URL).split(".")[1])["jti"] for _ in range(50)}
    assert len(jtis) == 50


# --- the validator: acceptance -------------------------------------------------


async def test_round_trip() -> None:
    key = DPoPKey.generate()
    validator = DPoPProofValidator(replay_cache=MemoryReplayCache())
    proof = key.proof("GET", URL, access_token=TOKEN)
    result = await validator.validate(
        proof, method="GET", url=URL, access_token=TOKEN, jkt=key.thumbprint
    )
    assert result.jkt == key.thumbprint
    assert result.htm == "GET" and result.htu == URL
    assert result.jti == decode(proof.split(".")[1])["jti"]
    assert abs(result.iat - time.time()) < 5


async def test_token_endpoint_proof_needs_no_ath() -> None:
    key = DPoPKey.generate()
    validator = DPoPProofValidator(replay_cache=MemoryReplayCache())
    proof = key.proof("POST", "http://127.0.0.1:8001/token")
    result = await validator.validate(proof, method="POST", url="http://127.0.0.1:8001/token")
    assert result.jkt == key.thumbprint


@pytest.mark.parametrize(
    ("htu", "request_url"),
    [
        (URL, URL + "?page=2"),  # the request's query is ignored
        (URL + "?page=2#frag", URL),  # and so is the proof's
        ("HTTPS://Order.EXAMPLE/orders/42", URL),  # scheme and host are case-insensitive
        ("https://order.example:443/orders/42", URL),  # default port
        ("http://127.0.0.1:80/x", "http://127.0.0.1/x"),
        ("https://order.example/orders/%34%32", URL),  # unreserved percent-encoding
        ("https://order.example/orders/./x/../42", URL),  # dot segments
        ("https://order.example", "https://order.example/"),  # empty path
    ],
)
async def test_htu_is_compared_normalized(
    validator: DPoPProofValidator, forge: Forger, htu: str, request_url: str
) -> None:
    await check(validator, forge.proof(claims=forge.claims(htu=htu)), url=request_url)


async def test_htu_may_name_the_published_url(validator: DPoPProofValidator, forge: Forger) -> None:
    # An authorization server reached at an internal name also accepts its published
    # token_endpoint (RFC 8414), and nothing else.
    received, published = "http://auth:8000/token", "https://auth.example/token"
    for htu in (received, published):
        proof = forge.proof(claims=forge.claims(htm="POST", htu=htu))
        await validator.validate(proof, method="POST", url=received, published_url=published)
    for htu in ("https://auth.example/introspect", "https://evil.example/token"):
        proof = forge.proof(claims=forge.claims(htm="POST", htu=htu))
        with pytest.raises(InvalidDPoPProofError, match="htu does not match"):
            await validator.validate(proof, method="POST", url=received, published_url=published)


async def test_with_origins_only_the_path_of_the_url_counts(
    dpop_clock: FakeClock, forge: Forger
) -> None:
    """§4.3 point 9, §11.1: the configured origins say where we are, not the request's Host."""
    validator = DPoPProofValidator(
        replay_cache=MemoryReplayCache(),
        clock=dpop_clock,
        origins=["https://order.example", "http://order:8002/"],
    )
    # What an adapter that trusted the Host header would pass for "Host: evil.example".
    spoofed = "https://evil.example/orders/42"
    for htu in (URL, "http://order:8002/orders/42", "HTTPS://ORDER.example:443/orders/%34%32"):
        await check(validator, forge.proof(claims=forge.claims(htu=htu)), url=spoofed)
    for htu in (
        spoofed,
        "https://order.example/orders/43",
        "http://order.example/orders/42",
        "https://user@order.example/orders/42",
        "not a URL",
    ):
        reason = await refused(validator, forge.proof(claims=forge.claims(htu=htu)), url=spoofed)
        assert reason == "htu does not match the request URL", htu


def test_origins_are_origins() -> None:
    validator = DPoPProofValidator(
        replay_cache=MemoryReplayCache(),
        origins=["HTTPS://Order.example:443/", "http://[::1]:8002"],
    )
    assert validator.origins == ("https://order.example", "http://[::1]:8002")
    assert "https://order.example" in repr(validator)
    assert DPoPProofValidator(replay_cache=MemoryReplayCache()).origins == ()
    for bad in (
        "https://order.example/api",
        "https://order.example?x=1",
        "https://order.example#f",
        "https://user@order.example",
        "ftp://order.example",
        "order.example",
        "http://order.example:99999",
    ):
        with pytest.raises(ValueError, match="not an origin"):
            DPoPProofValidator(replay_cache=MemoryReplayCache(), origins=[bad])
    with pytest.raises(TypeError):
        DPoPProofValidator(replay_cache=MemoryReplayCache(), origins="https://order.example")


def test_normalize_htu_keeps_what_matters() -> None:
    assert normalize_htu("HTTP://A.example:8080/P%2fq?x#y") == "http://a.example:8080/P%2Fq"
    assert normalize_htu("http://[::1]:80/") == "http://[::1]/"
    for bad in ("ftp://a.example/", "/relative", "http://a.example:99999/"):
        with pytest.raises(ValueError):
            normalize_htu(bad)


# --- the validator: one test per refusal rule ---------------------------------------


async def test_typ_must_be_dpop_jwt(validator: DPoPProofValidator, forge: Forger) -> None:
    for typ in ("JWT", "at+jwt", None):
        header = forge.header(typ=typ) if typ else {"alg": "ES256", "jwk": forge.header()["jwk"]}
        assert await refused(validator, forge.proof(header=header)) == "not a DPoP proof (typ)"


async def test_alg_none_refused(validator: DPoPProofValidator, forge: Forger) -> None:
    for alg in ("none", "None", "NONE"):
        unsigned = f"{b64json(forge.header(alg=alg))}.{b64json(forge.claims())}."
        assert await refused(validator, unsigned) == "algorithm not allowed"


async def test_alg_hs256_refused(validator: DPoPProofValidator, forge: Forger) -> None:
    # The classic confusion: the public key's bytes as an HMAC secret.
    signing_input = f"{b64json(forge.header(alg='HS256'))}.{b64json(forge.claims())}"
    secret = json.dumps(forge.header()["jwk"]).encode()
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    assert await refused(validator, f"{signing_input}.{b64url(mac)}") == "algorithm not allowed"


async def test_alg_outside_the_allowlist(validator: DPoPProofValidator, forge: Forger) -> None:
    proof = forge.proof(header=forge.header(alg="ES384"))
    assert await refused(validator, proof) == "algorithm not allowed"


@pytest.mark.parametrize("alg", ["none", "HS256", "hs512", "XX1"])
def test_symmetric_or_unknown_algorithms_cannot_be_configured(alg: str) -> None:
    with pytest.raises(ValueError):
        DPoPProofValidator(replay_cache=MemoryReplayCache(), algorithms=[alg])


async def test_private_jwk_refused(
    validator: DPoPProofValidator, forge: Forger, client_key: ec.EllipticCurvePrivateKey
) -> None:
    d = b64url(client_key.private_numbers().private_value.to_bytes(32, "big"))
    header = forge.header(jwk={**forge.header()["jwk"], "d": d})
    reason = await refused(validator, forge.proof(header=header))
    assert reason == "jwk contains a private key"
    assert d not in reason


async def test_jwk_must_be_there_and_fit_the_algorithm(
    validator: DPoPProofValidator, forge: Forger
) -> None:
    no_jwk = {"typ": "dpop+jwt", "alg": "ES256"}
    assert await refused(validator, forge.proof(header=no_jwk)) == "missing jwk header"
    rsa_jwk = forge.header(jwk={"kty": "RSA", "n": RFC7638_KEY["n"], "e": "AQAB"})
    assert await refused(validator, forge.proof(header=rsa_jwk)) == "jwk does not fit the algorithm"
    p384 = forge.header(jwk={**forge.header()["jwk"], "crv": "P-384"})
    assert await refused(validator, forge.proof(header=p384)) == "jwk does not fit the algorithm"
    off_curve = forge.header(jwk={**forge.header()["jwk"], "y": RFC9449_KEY["x"]})
    assert await refused(validator, forge.proof(header=off_curve)) == "malformed jwk"


async def test_bad_signature(
    validator: DPoPProofValidator, forge: Forger, attacker_key: ec.EllipticCurvePrivateKey
) -> None:
    # The header names the client's key, the signature is someone else's.
    assert await refused(validator, forge.proof(key=attacker_key)) == "invalid signature"
    proof = forge.proof()
    tampered_claims = b64json({**decode(proof.split(".")[1]), "jti": "another-jti"})
    header, _, signature = proof.split(".")
    tampered = f"{header}.{tampered_claims}.{signature}"
    assert await refused(validator, tampered) == "invalid signature"


async def test_htm_must_match(validator: DPoPProofValidator, forge: Forger) -> None:
    proof = forge.proof(claims=forge.claims(htm="POST"))
    assert await refused(validator, proof) == "htm does not match the request method"
    lower = forge.proof(claims=forge.claims(htm="get"))
    assert await refused(validator, lower) == "htm does not match the request method"


@pytest.mark.parametrize(
    "htu",
    [
        "https://order.example/orders/43",  # another resource
        "https://order.example/orders/42/",  # trailing slash is another path
        "http://order.example/orders/42",  # another scheme
        "https://inventory.example/orders/42",  # another host
        "https://order.example:8443/orders/42",  # another port
        "https://order.example/Orders/42",  # paths are case-sensitive
        "/orders/42",  # not absolute
        "",
    ],
)
async def test_htu_must_match(validator: DPoPProofValidator, forge: Forger, htu: str) -> None:
    proof = forge.proof(claims=forge.claims(htu=htu))
    assert await refused(validator, proof) == "htu does not match the request URL"


async def test_iat_too_old(
    validator: DPoPProofValidator, forge: Forger, dpop_clock: FakeClock
) -> None:
    # max_age 60 s + leeway 5 s
    await check(validator, forge.proof(claims=forge.claims(iat=int(dpop_clock.now) - 64)))
    old = forge.proof(claims=forge.claims(iat=int(dpop_clock.now) - 66))
    assert await refused(validator, old) == "proof too old"


async def test_iat_in_the_future(
    validator: DPoPProofValidator, forge: Forger, dpop_clock: FakeClock
) -> None:
    await check(validator, forge.proof(claims=forge.claims(iat=int(dpop_clock.now) + 4)))
    future = forge.proof(claims=forge.claims(iat=int(dpop_clock.now) + 6))
    assert await refused(validator, future) == "proof issued in the future"


@pytest.mark.parametrize("iat", ["1700000000", True, None, [1]])
async def test_iat_must_be_a_number(validator: DPoPProofValidator, forge: Forger, iat: Any) -> None:
    claims = forge.claims()
    claims["iat"] = iat
    assert await refused(validator, forge.proof(claims=claims)) == "missing or malformed iat"


async def test_nan_is_not_json(validator: DPoPProofValidator, forge: Forger) -> None:
    proof = forge.proof(claims=forge.claims(iat=float("nan")))
    assert await refused(validator, proof) == "malformed proof: claims is not a JSON object"


async def test_ath_required_with_a_token(validator: DPoPProofValidator, forge: Forger) -> None:
    claims = forge.claims()
    del claims["ath"]
    assert await refused(validator, forge.proof(claims=claims)) == "missing ath"


async def test_ath_must_be_the_tokens_hash(validator: DPoPProofValidator, forge: Forger) -> None:
    other = forge.proof(claims=forge.claims(ath=access_token_hash(TOKEN + "x")))
    assert await refused(validator, other) == "ath does not match the access token"
    raw = forge.proof(claims=forge.claims(ath=TOKEN))
    assert await refused(validator, raw) == "ath does not match the access token"


async def test_jkt_must_be_the_proof_key(
    validator: DPoPProofValidator, forge: Forger, client_key: ec.EllipticCurvePrivateKey
) -> None:
    other_jkt = DPoPKey.generate().thumbprint
    reason = await refused(validator, forge.proof(), jkt=other_jkt)
    assert reason == "proof key does not match the token's key"
    await check(validator, forge.proof(), jkt=DPoPKey(client_key).thumbprint)


async def test_jti_is_used_once(validator: DPoPProofValidator, forge: Forger) -> None:
    proof = forge.proof()
    await check(validator, proof)
    assert await refused(validator, proof) == "proof replayed (jti already used)"
    # The same jti in a new, validly signed proof is a replay too.
    jti = decode(proof.split(".")[1])["jti"]
    again = forge.proof(claims=forge.claims(jti=jti, htm="POST"))
    assert await refused(validator, again, method="POST") == "proof replayed (jti already used)"


async def test_jti_required_and_bounded(validator: DPoPProofValidator, forge: Forger) -> None:
    for jti in (None, "", 42, "x" * 257):
        claims = forge.claims()
        claims.pop("jti")
        if jti is not None:
            claims["jti"] = jti
        assert await refused(validator, forge.proof(claims=claims)) == "missing or malformed jti"


async def test_refused_proof_does_not_burn_its_jti(
    validator: DPoPProofValidator, forge: Forger
) -> None:
    proof = forge.proof()
    await refused(validator, proof, method="POST")
    await check(validator, proof)


async def test_oversized_proof(validator: DPoPProofValidator, forge: Forger) -> None:
    proof = forge.proof(claims=forge.claims(pad="x" * 5000))
    assert await refused(validator, proof) == "proof too large"


async def test_crit_header_refused(validator: DPoPProofValidator, forge: Forger) -> None:
    proof = forge.proof(header=forge.header(crit=["exp"]))
    assert await refused(validator, proof) == "unsupported critical header"


@pytest.mark.parametrize(
    ("proof", "reason"),
    [
        ("not-a-jwt", "malformed proof: expected a compact JWS"),
        ("a.b.c.d", "malformed proof: expected a compact JWS"),
        ("!!!.e30.sig", "malformed proof: header not base64url"),
        (f"{b64url(b'[1]')}.e30.c2ln", "malformed proof: header is not a JSON object"),
    ],
)
async def test_malformed_proofs(validator: DPoPProofValidator, proof: str, reason: str) -> None:
    assert await refused(validator, proof) == reason


async def test_duplicate_header_members_refused(
    validator: DPoPProofValidator, forge: Forger
) -> None:
    raw = json.dumps(forge.header())[:-1] + ', "typ": "JWT"}'
    signing_input = f"{b64url(raw.encode())}.{b64json(forge.claims())}"
    proof = f"{signing_input}.{b64url(b'x' * 64)}"
    assert await refused(validator, proof) == "malformed proof: header is not a JSON object"


# --- replay cache ------------------------------------------------------------------


async def test_jti_remembered_until_the_proof_would_be_too_old(
    forge: Forger, dpop_clock: FakeClock
) -> None:
    cache_clock = FakeClock()
    validator = DPoPProofValidator(
        replay_cache=MemoryReplayCache(clock=cache_clock), clock=dpop_clock
    )
    proof = forge.proof()
    await check(validator, proof)
    cache_clock.advance(64)
    dpop_clock.advance(64)
    assert await refused(validator, proof) == "proof replayed (jti already used)"
    cache_clock.advance(2)
    dpop_clock.advance(2)
    # Forgotten by the cache, but by now too old to pass anyway.
    assert await refused(validator, proof) == "proof too old"


async def test_memory_replay_cache_expires_entries() -> None:
    clock = FakeClock()
    cache = MemoryReplayCache(clock=clock)
    assert await cache.first_use("a", 10) is True
    assert await cache.first_use("a", 10) is False
    clock.advance(10.5)
    assert await cache.first_use("a", 10) is True
    assert len(cache) == 1


async def test_memory_replay_cache_is_bounded_and_fails_closed() -> None:
    clock = FakeClock()
    cache = MemoryReplayCache(max_entries=3, clock=clock)
    # A long-lived entry first: the oldest is not always the first to expire.
    assert await cache.first_use("long", 100)
    for jti in ("b", "c"):
        assert await cache.first_use(jti, 10)
    with pytest.raises(InvalidDPoPProofError, match="replay cache full"):
        await cache.first_use("d", 10)
    clock.advance(11)
    assert await cache.first_use("d", 10)  # expired entries made room
    assert await cache.first_use("long", 10) is False  # and the live one is still known


# --- nonces (RFC 9449 §8, §9) --------------------------------------------------------


def test_token_endpoint_nonce() -> None:
    asked = httpx.Response(400, json={"error": "use_dpop_nonce"}, headers={"DPoP-Nonce": "n-1"})
    assert token_endpoint_nonce(asked) == "n-1"
    other = httpx.Response(400, json={"error": "invalid_grant"}, headers={"DPoP-Nonce": "n-1"})
    assert token_endpoint_nonce(other) is None
    bad = httpx.Response(400, json={"error": "use_dpop_nonce"}, headers={"DPoP-Nonce": 'a"b'})
    assert token_endpoint_nonce(bad) is None


def test_resource_nonce() -> None:
    challenge = 'DPoP algs="ES256", error="use_dpop_nonce", error_description="nonce"'
    asked = httpx.Response(401, headers={"WWW-Authenticate": challenge, "DPoP-Nonce": "n-2"})
    assert resource_nonce(asked) == "n-2"
    plain = httpx.Response(
        401, headers={"WWW-Authenticate": 'DPoP error="invalid_token"', "DPoP-Nonce": "n-2"}
    )
    assert resource_nonce(plain) is None
    no_nonce = httpx.Response(401, headers={"WWW-Authenticate": challenge})
    assert resource_nonce(no_nonce) is None
