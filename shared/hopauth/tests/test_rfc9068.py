"""AccessTokenValidator: one test per RFC 9068 §4 rule, each with its reason."""

from __future__ import annotations

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
    AccessTokenValidator,
    InvalidTokenError,
    JWKSCache,
    Principal,
    StaticKeySource,
)
from hopauth import rfc9068 as rfc9068_module
from hopauth_support import (
    AUDIENCE,
    ISSUER,
    KID,
    FakeIssuer,
    MakeToken,
    b64json,
    b64url,
    default_claims,
    public_jwk,
    sign_es256,
)
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

HEADER = {"alg": "ES256", "typ": "at+jwt", "kid": KID}


@pytest.fixture
def validator(static_keys: StaticKeySource) -> AccessTokenValidator:
    return AccessTokenValidator(issuer=ISSUER, audience=AUDIENCE, keys=static_keys)


async def reason_for(validator: AccessTokenValidator, token: str) -> str:
    with pytest.raises(InvalidTokenError) as caught:
        await validator.validate(token)
    return caught.value.reason


async def test_valid_token_gives_principal(
    validator: AccessTokenValidator, make_token: MakeToken
) -> None:
    claims = default_claims(act={"sub": "order", "act": {"sub": "gateway"}})
    principal = await validator.validate(make_token(claims))
    assert principal == Principal(
        subject="alice",
        client_id="gateway",
        scopes=frozenset({"orders:read", "orders:write"}),
        audience=(AUDIENCE,),
        token_id=claims["jti"],
        session_id="session-1",
        actors=("order", "gateway"),
        issuer=ISSUER,
        issued_at=claims["iat"],
        expires_at=claims["exp"],
        confirmation=None,
    )


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_alg_none_refused_in_every_spelling(
    validator: AccessTokenValidator, alg: str
) -> None:
    token = f"{b64json({'alg': alg, 'typ': 'at+jwt', 'kid': KID})}.{b64json(default_claims())}."
    assert await reason_for(validator, token) == "algorithm not allowed"


async def test_hs256_signed_with_public_key_refused(
    signing_key: ec.EllipticCurvePrivateKey, static_keys: StaticKeySource
) -> None:
    pem = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{b64json({**HEADER, 'alg': 'HS256'})}.{b64json(default_claims())}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64url(mac)}"
    # Even with a second asymmetric algorithm allowed, HS256 never is.
    validator = AccessTokenValidator(
        issuer=ISSUER, audience=AUDIENCE, keys=static_keys, algorithms=("ES256", "RS256")
    )
    assert await reason_for(validator, token) == "algorithm not allowed"


async def test_key_must_fit_header_alg(static_keys: StaticKeySource) -> None:
    # RS256 is allowed, but the kid names an EC key: refused before verifying.
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signing_input = f"{b64json({**HEADER, 'alg': 'RS256'})}.{b64json(default_claims())}"
    signature = RSAAlgorithm(RSAAlgorithm.SHA256).sign(signing_input.encode(), rsa_key)
    validator = AccessTokenValidator(
        issuer=ISSUER, audience=AUDIENCE, keys=static_keys, algorithms=("ES256", "RS256")
    )
    token = f"{signing_input}.{b64url(signature)}"
    assert await reason_for(validator, token) == "key does not fit algorithm"


async def test_unknown_kid_refused(validator: AccessTokenValidator, make_token: MakeToken) -> None:
    token = make_token(header={**HEADER, "kid": "nope"})
    assert await reason_for(validator, token) == "unknown key"


async def test_missing_kid_refused(validator: AccessTokenValidator, make_token: MakeToken) -> None:
    token = make_token(header={"alg": "ES256", "typ": "at+jwt"})
    assert await reason_for(validator, token) == "missing kid"


async def test_bad_signature_refused(
    validator: AccessTokenValidator, make_token: MakeToken
) -> None:
    header, _, signature = make_token().split(".")
    forged_claims = b64json(default_claims(scope="orders:read admin"))
    assert await reason_for(validator, f"{header}.{forged_claims}.{signature}") == (
        "invalid signature"
    )


async def test_expired_beyond_leeway_refused(
    validator: AccessTokenValidator, make_token: MakeToken
) -> None:
    token = make_token(exp=int(time.time()) - 31, iat=int(time.time()) - 300)
    assert await reason_for(validator, token) == "token expired"


async def test_expired_within_leeway_accepted(
    validator: AccessTokenValidator, make_token: MakeToken
) -> None:
    token = make_token(exp=int(time.time()) - 10, iat=int(time.time()) - 300)
    assert (await validator.validate(token)).subject == "alice"


async def test_nbf_in_future_refused(
    validator: AccessTokenValidator, make_token: MakeToken
) -> None:
    token = make_token(nbf=int(time.time()) + 120)
    assert await reason_for(validator, token) == "token not yet valid"


async def test_iat_in_future_refused(
    validator: AccessTokenValidator, make_token: MakeToken
) -> None:
    token = make_token(iat=int(time.time()) + 120)
    assert await reason_for(validator, token) == "token issued in the future"


async def test_iat_slightly_ahead_within_leeway_accepted(
    validator: AccessTokenValidator, make_token: MakeToken
) -> None:
    token = make_token(iat=int(time.time()) + 10, nbf=int(time.time()) + 10)
    assert (await validator.validate(token)).client_id == "gateway"


@pytest.mark.parametrize(
    "issuer",
    [
        "http://127.0.0.1:800",  # a prefix of the real one
        ISSUER + "/evil",
        ISSUER + "/",
        "HTTP://127.0.0.1:8001",
        "https://evil.example",
    ],
)
async def test_wrong_issuer_refused(
    validator: AccessTokenValidator, make_token: MakeToken, issuer: str
) -> None:
    assert await reason_for(validator, make_token(iss=issuer)) == "wrong issuer"


@pytest.mark.parametrize("aud", ["inventory", ["inventory", "billing"], "orderx", []])
async def test_wrong_audience_refused(
    validator: AccessTokenValidator, make_token: MakeToken, aud: Any
) -> None:
    assert await reason_for(validator, make_token(aud=aud)) == "wrong audience"


async def test_audience_list_containing_ours_accepted(
    validator: AccessTokenValidator, make_token: MakeToken
) -> None:
    principal = await validator.validate(make_token(aud=["inventory", AUDIENCE]))
    assert principal.audience == ("inventory", AUDIENCE)


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "at+jwt+x", "application/jwt", ""])
async def test_non_access_token_typ_refused(
    validator: AccessTokenValidator, make_token: MakeToken, typ: str | None
) -> None:
    header: dict[str, Any] = {"alg": "ES256", "kid": KID}
    if typ is not None:
        header["typ"] = typ
    assert await reason_for(validator, make_token(header=header)) == "not an access token (typ)"


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
async def test_access_token_typ_accepted_case_insensitively(
    validator: AccessTokenValidator, make_token: MakeToken, typ: str
) -> None:
    token = make_token(header={**HEADER, "typ": typ})
    assert (await validator.validate(token)).subject == "alice"


@pytest.mark.parametrize("crit", [["exp"], ["b64"], [], "x"])
async def test_crit_header_refused(
    validator: AccessTokenValidator, make_token: MakeToken, crit: Any
) -> None:
    token = make_token(header={**HEADER, "crit": crit, "exp": 1})
    assert await reason_for(validator, token) == "unsupported critical header"


def _self_signed_cert_der(key: ec.EllipticCurvePrivateKey) -> bytes:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("kid", [KID, "attacker-key"])
@pytest.mark.parametrize("where", ["jwk", "jku", "x5u", "x5c"])
async def test_key_from_token_header_never_used(
    attacker_key: ec.EllipticCurvePrivateKey,
    fake_issuer: FakeIssuer,
    issuer_http: httpx.AsyncClient,
    where: str,
    kid: str,
) -> None:
    attacker_jwk = public_jwk(attacker_key, kid)
    pointers: dict[str, Any] = {
        "jwk": attacker_jwk,
        "jku": f"{ISSUER}/attacker/jwks.json",
        "x5u": f"{ISSUER}/attacker/cert.pem",
        "x5c": [b64url(_self_signed_cert_der(attacker_key))],
    }
    # The attacker's set is even served where jku points, same origin as the issuer.
    fake_issuer.extra["/attacker/jwks.json"] = {"keys": [attacker_jwk]}
    token = sign_es256(
        attacker_key, {**HEADER, "kid": kid, where: pointers[where]}, default_claims()
    )
    validator = AccessTokenValidator(
        issuer=ISSUER,
        audience=AUDIENCE,
        keys=JWKSCache(issuer=ISSUER, http=issuer_http),
    )
    reason = await reason_for(validator, token)
    assert reason == ("invalid signature" if kid == KID else "unknown key")
    assert all(not path.startswith("/attacker") for path in fake_issuer.hits)


async def test_oversize_token_refused_before_parsing(
    validator: AccessTokenValidator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(segment: str) -> dict[str, Any]:
        raise AssertionError("header parsed")

    monkeypatch.setattr(rfc9068_module, "_decode_header", explode)
    header = b64json(HEADER)
    token = header + "." + "a" * (8193 - len(header) - 2) + "."
    assert len(token) == 8193
    assert await reason_for(validator, token) == "token too large"
    # One byte less reaches the parser, proving the limit is exactly 8192.
    with pytest.raises(AssertionError, match="header parsed"):
        await validator.validate(token[1:])


@pytest.mark.parametrize("claim", ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"])
async def test_missing_required_claim_refused(
    validator: AccessTokenValidator, make_token: MakeToken, claim: str
) -> None:
    assert await reason_for(validator, make_token(drop=(claim,))) == f"missing claim: {claim}"


@pytest.mark.parametrize("claim", ["sub", "client_id", "jti"])
@pytest.mark.parametrize("value", ["", 7, None, ["alice"]])
async def test_identity_claims_must_be_non_empty_strings(
    validator: AccessTokenValidator, make_token: MakeToken, claim: str, value: Any
) -> None:
    reason = await reason_for(validator, make_token(**{claim: value}))
    assert reason == f"{claim} claim must be a non-empty string"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("abc", "malformed token: expected three parts"),
        ("a.b.c.d", "malformed token: expected three parts"),
        ("ey!!.eyJ9.c2ln", "malformed token: not base64url"),
        ("eyJh=.eyJ9.c2ln", "malformed token: not base64url"),
        ("e yJ.eyJ9.c2ln", "malformed token: not base64url"),
        ("a.eyJ9.c2ln", "malformed token: bad header encoding"),
        (b64url(b"not json") + ".eyJ9.c2ln", "malformed token: header is not a JSON object"),
        (b64json(["alg"]) + ".eyJ9.c2ln", "malformed token: header is not a JSON object"),
        ("." * 2, "malformed token: header is not a JSON object"),
        (b64url(b"{" * 5000)[:1025] + ".e.e", "malformed token: header too large"),
    ],
)
async def test_malformed_token_refused(
    validator: AccessTokenValidator, token: str, reason: str
) -> None:
    assert await reason_for(validator, token) == reason


async def test_duplicate_header_member_refused(validator: AccessTokenValidator) -> None:
    raw = b'{"alg":"ES256","typ":"at+jwt","kid":"key-1","alg":"none"}'
    token = f"{b64url(raw)}.{b64json(default_claims())}.c2ln"
    assert await reason_for(validator, token) == "malformed token: header is not a JSON object"


async def test_payload_not_json_object_refused(
    validator: AccessTokenValidator, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    token = sign_es256(signing_key, HEADER, ["not", "an", "object"])
    assert await reason_for(validator, token) == "malformed claims"


async def test_bad_claim_shapes_refused(
    validator: AccessTokenValidator, make_token: MakeToken
) -> None:
    assert await reason_for(validator, make_token(scope=["orders:read"])) == (
        "scope claim must be a space-delimited string"
    )
    assert await reason_for(validator, make_token(act="gateway")) == "act claim must be an object"
    assert await reason_for(validator, make_token(exp="tomorrow")) == "exp claim must be a number"
    assert await reason_for(validator, make_token(iat=True)) == "iat claim must be a number"


def _signed_with_raw_claim(key: ec.EllipticCurvePrivateKey, name: str, literal: str) -> str:
    """A token whose ``name`` claim is the JSON text ``literal``, which json.dumps cannot write."""
    claims = {k: v for k, v in default_claims().items() if k != name}
    payload = json.dumps(claims)[:-1] + f', "{name}": {literal}}}'
    signing_input = f"{b64json(HEADER)}.{b64url(payload.encode())}"
    signature = ECAlgorithm(ECAlgorithm.SHA256).sign(signing_input.encode(), key)
    return f"{signing_input}.{b64url(signature)}"


@pytest.mark.parametrize(
    ("name", "literal", "reason"),
    [
        # Python reads 1e400 as infinity: an exp that never comes, and int() of it raised
        # OverflowError, a 500 instead of a 401.
        ("exp", "1e400", "exp claim must be a number"),
        ("exp", "-1e400", "exp claim must be a number"),
        ("iat", "1e400", "iat claim must be a number"),
        # NaN and Infinity are not JSON (RFC 8259 §6); a NaN nbf compares false, so it was ignored.
        ("nbf", "NaN", "malformed claims"),
        ("exp", "Infinity", "malformed claims"),
    ],
)
async def test_non_finite_dates_refused(
    validator: AccessTokenValidator,
    signing_key: ec.EllipticCurvePrivateKey,
    name: str,
    literal: str,
    reason: str,
) -> None:
    token = _signed_with_raw_claim(signing_key, name, literal)
    assert await reason_for(validator, token) == reason


async def test_revoked_session_refused(static_keys: StaticKeySource, make_token: MakeToken) -> None:
    class RevokedSessions:
        def __init__(self, sids: set[str]) -> None:
            self.sids = sids

        async def is_revoked(self, principal: Principal) -> bool:
            return principal.session_id in self.sids

    validator = AccessTokenValidator(
        issuer=ISSUER, audience=AUDIENCE, keys=static_keys, revocation=RevokedSessions({"s-1"})
    )
    assert await reason_for(validator, make_token(sid="s-1")) == "session revoked"
    assert (await validator.validate(make_token(sid="s-2"))).session_id == "s-2"


@pytest.mark.parametrize(
    "algorithms",
    [
        ("none",),
        ("None",),
        ("NONE",),
        ("ES256", "nOnE"),
        ("HS256",),
        ("ES256", "HS256"),
        ("hs512",),
        ("ES257",),
        (),
    ],
)
def test_constructor_refuses_unsafe_algorithms(
    static_keys: StaticKeySource, algorithms: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError, match="algorithm"):
        AccessTokenValidator(
            issuer=ISSUER, audience=AUDIENCE, keys=static_keys, algorithms=algorithms
        )


def test_constructor_refuses_algorithms_as_a_string(static_keys: StaticKeySource) -> None:
    with pytest.raises(TypeError):
        AccessTokenValidator(issuer=ISSUER, audience=AUDIENCE, keys=static_keys, algorithms="ES256")


async def test_es384_and_eddsa_keys_verify(make_token: MakeToken) -> None:
    # A validator allowing several asymmetric algorithms picks the key by kid
    # and still checks the key fits.
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from jwt.algorithms import OKPAlgorithm

    ec384 = ec.generate_private_key(ec.SECP384R1())
    ed = ed25519.Ed25519PrivateKey.generate()
    jwk384 = {**ECAlgorithm.to_jwk(ec384.public_key(), as_dict=True), "kid": "p384"}
    jwk_ed = {**OKPAlgorithm.to_jwk(ed.public_key(), as_dict=True), "kid": "ed"}
    keys = StaticKeySource({"keys": [jwk384, jwk_ed]})
    validator = AccessTokenValidator(
        issuer=ISSUER, audience=AUDIENCE, keys=keys, algorithms=("ES384", "EdDSA")
    )
    claims = b64json(default_claims())
    for alg, kid, sign in [
        ("ES384", "p384", lambda m: ECAlgorithm(ECAlgorithm.SHA384).sign(m, ec384)),
        ("EdDSA", "ed", lambda m: OKPAlgorithm().sign(m, ed)),
    ]:
        signing_input = f"{b64json({'alg': alg, 'typ': 'at+jwt', 'kid': kid})}.{claims}"
        token = f"{signing_input}.{b64url(sign(signing_input.encode()))}"
        assert (await validator.validate(token)).subject == "alice"
    # ES384 header naming the Ed25519 key: wrong key type for the algorithm.
    signing_input = f"{b64json({'alg': 'ES384', 'typ': 'at+jwt', 'kid': 'ed'})}.{claims}"
    signature = ECAlgorithm(ECAlgorithm.SHA384).sign(signing_input.encode(), ec384)
    token = f"{signing_input}.{b64url(signature)}"
    assert await reason_for(validator, token) == "key does not fit algorithm"


@pytest.mark.parametrize("leeway", [-1, 31, 300])
def test_leeway_is_capped_at_thirty_seconds(static_keys: StaticKeySource, leeway: int) -> None:
    with pytest.raises(ValueError, match="leeway"):
        AccessTokenValidator(issuer=ISSUER, audience=AUDIENCE, keys=static_keys, leeway=leeway)
