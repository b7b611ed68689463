"""Forgery and confusion: tokens and events the issuer or the owning service never made.

Each forged token is alice's real token changed in one way, sent to the
gateway as the attacker would. Each forged event is written straight to
Kafka by an attacker with access to the broker.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from dpop_proofs import ProofKey
from forgery import (
    AttackerHost,
    es256,
    header_of,
    hs256,
    issuer_signing_key,
    public_pem,
    unsigned,
)
from kafka_events import ORDER_PLACED, PAYMENT_SUCCEEDED, forged, publish
from oauth_flows import Login, exchange
from recorder import Expect, Observed, Recorder, observed, refused
from shop import (
    PENDING_CARD,
    bearer,
    drain,
    invoices,
    notifications,
    order,
    place,
    unused_order_id,
)
from stacks import Target

CATEGORY = "forgery and confusion"


@dataclass(frozen=True)
class Material:
    """What a forger starts from: a real token, the public JWKS, their own key and host."""

    token: str
    header: dict[str, Any]
    claims: dict[str, Any]
    published: dict[str, Any]  # the issuer's public JWK of the real token's kid
    attacker: ProofKey
    host: AttackerHost
    issuer_key: tuple[str, ec.EllipticCurvePrivateKey] | None

    @property
    def signature(self) -> str:
        return self.token.split(".")[2]

    def signed_by_attacker(self, header: dict[str, Any], claims: dict[str, Any]) -> str:
        return es256(header, claims, self.attacker.private_key)

    def signed_by_issuer(
        self,
        changes: dict[str, Any],
        header: dict[str, Any] | None = None,
        literals: dict[str, str] | None = None,
    ) -> str:
        if self.issuer_key is None:
            pytest.skip(
                "this forgery is signed with the issuer's own key, read from a local stack's "
                "state dir: give --state-dir"
            )
        kid, key = self.issuer_key
        now = int(time.time())
        claims = {**self.claims, "jti": str(uuid.uuid4()), "iat": now, "exp": now + 600}
        header = header or {"alg": "ES256", "typ": "at+jwt", "kid": kid}
        return es256(header, {**claims, **changes}, key, literals=literals)


Forge = Callable[[Material], str]
HOUR_AGO = int(time.time()) - 3600


def _none(alg: str) -> Forge:
    return lambda m: unsigned({**m.header, "alg": alg}, m.claims)


def _attacker_header(m: Material, **extra: Any) -> dict[str, Any]:
    return {"alg": "ES256", "typ": "at+jwt", "kid": m.attacker.thumbprint, **extra}


NOT_ALLOWED = "algorithm not allowed"
UNKNOWN_KEY = "unknown key"
BAD_SIGNATURE = "invalid signature"

#: The error description each refusal carries -> the defence behind it.
DEFENCES = {
    NOT_ALLOWED: "alg allowlist, asymmetric only, compared exactly (hopauth/rfc9068.py)",
    UNKNOWN_KEY: "keys come from the issuer's JWKS only, never from the token (hopauth/jwks.py)",
    BAD_SIGNATURE: "ES256 signature checked with the issuer's key (hopauth/rfc9068.py)",
    "wrong issuer": "iss compared exactly with our issuer (hopauth/rfc9068.py)",
    "not an access token (typ)": "typ must be at+jwt, RFC 9068 §4 (hopauth/rfc9068.py)",
    "token expired": "exp checked, 30 s leeway at most (hopauth/rfc9068.py)",
    "token not yet valid": "nbf checked (hopauth/rfc9068.py)",
    "token issued in the future": "iat checked (hopauth/rfc9068.py)",
    "token too large": "size checked before any parsing (hopauth/rfc9068.py)",
    "exp claim must be a number": "dates must be finite numbers (hopauth/rfc9068.py)",
    "token bound by a confirmation method this service cannot check": (
        "a cnf binding hopauth cannot check is refused, never let lapse (hopauth/fastapi.py)"
    ),
}

FORGERIES: list[Any] = [
    *[
        pytest.param(_none(alg), NOT_ALLOWED, id=f"alg {alg}")
        for alg in ("none", "None", "NONE", "nOnE")
    ],
    pytest.param(
        lambda m: unsigned({**m.header, "alg": "none"}, m.claims, m.signature),
        NOT_ALLOWED,
        id="alg none with the original signature",
    ),
    pytest.param(lambda m: unsigned(m.header, m.claims), BAD_SIGNATURE, id="empty signature"),
    pytest.param(
        lambda m: unsigned(
            m.header, {**m.claims, "scope": m.claims["scope"] + " support:read"}, m.signature
        ),
        BAD_SIGNATURE,
        id="claims changed, signature kept",
    ),
    pytest.param(
        lambda m: hs256({**m.header, "alg": "HS256"}, m.claims, public_pem(m.published)),
        NOT_ALLOWED,
        id="HS256 keyed with the issuer's public key (PEM)",
    ),
    pytest.param(
        lambda m: hs256({**m.header, "alg": "HS256"}, m.claims, json.dumps(m.published).encode()),
        NOT_ALLOWED,
        id="HS256 keyed with the issuer's public key (JWK)",
    ),
    pytest.param(
        lambda m: m.signed_by_attacker(_attacker_header(m, jwk=m.attacker.public_jwk), m.claims),
        UNKNOWN_KEY,
        id="jwk header carrying the attacker's key",
    ),
    pytest.param(
        lambda m: m.signed_by_attacker({**m.header, "jwk": m.attacker.public_jwk}, m.claims),
        BAD_SIGNATURE,
        id="jwk header carrying the attacker's key under the real kid",
    ),
    pytest.param(
        lambda m: m.signed_by_attacker(
            _attacker_header(m, jku=f"{m.host.url}/jwks.json"), m.claims
        ),
        UNKNOWN_KEY,
        id="jku header pointing at the attacker's JWKS",
    ),
    pytest.param(
        lambda m: m.signed_by_attacker(_attacker_header(m, x5u=f"{m.host.url}/cert.pem"), m.claims),
        UNKNOWN_KEY,
        id="x5u header pointing at the attacker's certificate",
    ),
    pytest.param(
        lambda m: m.signed_by_attacker(
            {**_attacker_header(m), "kid": "../../../../../../dev/null"}, m.claims
        ),
        UNKNOWN_KEY,
        id="kid path traversal",
    ),
    pytest.param(
        lambda m: hs256(
            {"alg": "HS256", "typ": "at+jwt", "kid": "../../../../../../dev/null"}, m.claims, b""
        ),
        NOT_ALLOWED,
        id="kid /dev/null with HS256 and an empty key",
    ),
    pytest.param(
        lambda m: m.signed_by_attacker(
            {**_attacker_header(m), "kid": "x' UNION SELECT 'attacker-key' --"}, m.claims
        ),
        UNKNOWN_KEY,
        id="kid SQL injection",
    ),
    pytest.param(
        lambda m: m.signed_by_attacker(
            _attacker_header(m), {**m.claims, "iss": "https://issuer.attacker.example"}
        ),
        UNKNOWN_KEY,
        id="another issuer's token",
    ),
    pytest.param(
        lambda m: m.signed_by_issuer({"iss": "https://issuer.attacker.example"}),
        "wrong issuer",
        id="another issuer's name on our key",
    ),
    pytest.param(
        lambda m: m.signed_by_issuer(
            # An OpenID Connect ID token (Core §2) for the web client, not an access token.
            {"aud": "web", "nonce": "n-0S6_WzA2Mj", "auth_time": int(time.time())},
            header={"alg": "ES256", "typ": "JWT", "kid": header_of(m.token)["kid"]},
        ),
        "not an access token (typ)",
        id="ID token",
    ),
    pytest.param(
        lambda m: m.signed_by_issuer({"iat": HOUR_AGO - 900, "exp": HOUR_AGO}),
        "token expired",
        id="expired",
    ),
    pytest.param(
        lambda m: m.signed_by_issuer({"nbf": int(time.time()) + 3600}),
        "token not yet valid",
        id="not yet valid",
    ),
    pytest.param(
        lambda m: m.signed_by_issuer({"iat": int(time.time()) + 3600}),
        "token issued in the future",
        id="issued in the future",
    ),
    pytest.param(
        # JSON's 1e400 is a number; Python reads it as infinity: a token that never expires.
        lambda m: m.signed_by_issuer({}, literals={"exp": "1e400"}),
        "exp claim must be a number",
        id="exp 1e400 (never expires)",
    ),
    pytest.param(
        # Bound to a client certificate (RFC 8705 §3.1) that no service here checks.
        lambda m: m.signed_by_issuer(
            {"cnf": {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}
        ),
        "token bound by a confirmation method this service cannot check",
        id="bound to a client certificate, sent as a bearer token",
    ),
    pytest.param(
        lambda m: m.signed_by_attacker(m.header, {**m.claims, "pad": "A" * 9000}),
        "token too large",
        id="oversized (12 kB)",
    ),
]


def material(target: Target, alice: Login, attacker: ProofKey, host: AttackerHost) -> Material:
    kid = header_of(alice.access_token)["kid"]
    [published] = [key for key in target.issuer.get("/jwks").json()["keys"] if key["kid"] == kid]
    return Material(
        token=alice.access_token,
        header=header_of(alice.access_token),
        claims=alice.claims,
        published=published,
        attacker=attacker,
        host=host,
        issuer_key=issuer_signing_key(target.state_dir),
    )


def test_a_token_signed_with_the_issuers_key_is_otherwise_accepted(
    target: Target, alice: Login, attacker_key: ProofKey, attacker_host: AttackerHost
) -> None:
    """The control for the forgeries signed with the issuer's key: unchanged, such a token
    works, so each one that is refused is refused for the one thing it changed."""
    token = material(target, alice, attacker_key, attacker_host).signed_by_issuer({})
    response = target.gw.get("/api/orders", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("forge", "defence"), FORGERIES)
def test_forged_token_at_the_gateway(
    target: Target,
    attack: Recorder,
    alice: Login,
    attacker_key: ProofKey,
    attacker_host: AttackerHost,
    forge: Forge,
    defence: str,
) -> None:
    attack.expect(
        Expect.both(
            refused(
                401,
                "invalid_token",
                DEFENCES[defence],
                detail=defence,
            )
        )
    )
    token = forge(material(target, alice, attacker_key, attacker_host))
    fetched_before = len(attacker_host.requests)
    response = target.gw.get("/api/orders", headers={"Authorization": f"Bearer {token}"})
    fetched = len(attacker_host.requests) - fetched_before
    attack.observe(
        observed(
            response,
            effect=response.is_success or fetched > 0,
            seen=f"the attacker's host was asked for keys {fetched} times" if fetched else "",
        )
    )


def test_token_just_expired_exchanged_for_a_fresh_one(
    target: Target,
    attack: Recorder,
    alice: Login,
    attacker_key: ProofKey,
    attacker_host: AttackerHost,
) -> None:
    """A token captured as it expired, inside the validators' 30 s clock-skew leeway:
    the issuer must not turn it into a fresh one (signed with the issuer's key, as a
    stand-in for waiting out a real token's lifetime)."""
    attack.expect(
        Expect.both(
            refused(
                400,
                "invalid_request",
                "the exchange refuses an expired subject token, leeway or not (auth rfc8693.py)",
            )
        )
    )
    now = int(time.time())
    token = material(target, alice, attacker_key, attacker_host).signed_by_issuer(
        {"iat": now - 600, "exp": now - 5}
    )
    response = exchange(target, "gateway", token, "order", "orders:read")
    issued = response.status_code == 200 and "access_token" in response.json()
    attack.observe(observed(response, effect=issued))


@pytest.mark.parametrize(
    "which",
    [
        pytest.param("missing", id="for an order that does not exist"),
        pytest.param("paid", id="for an order already paid"),
    ],
)
def test_forged_order_placed_charges_nobody(
    target: Target,
    attack: Recorder,
    alice: Login,
    alice_paid_order: dict[str, Any],
    which: str,
) -> None:
    attack.expect(
        Expect.both(
            refused(
                None,
                "nobody charged",
                "billing trusts nothing in the event: it fetches the order from order with its "
                "own client-credentials token and charges only one awaiting payment "
                "(billing_service/worker.py)",
            )
        )
    )
    assert target.kafka, "this attack writes to Kafka: give --kafka or --state-dir"
    order_id = unused_order_id() if which == "missing" else alice_paid_order["id"]
    charged_before = len(invoices(target, alice, order_id))
    event = forged(ORDER_PLACED, "order", alice.sub, {"order_id": order_id})
    publish(target.kafka, [event])
    drain(target, alice)
    charged = len(invoices(target, alice, order_id)) - charged_before
    attack.observe(
        Observed(
            "succeeded" if charged else "refused",
            None,
            f"charged {charged} more time(s)" if charged else "nobody charged",
        )
    )


def test_forged_payment_succeeded_confirms_nothing(
    target: Target, attack: Recorder, alice: Login
) -> None:
    attack.expect(
        Expect.both(
            refused(
                None,
                "not confirmed",
                "order confirms a payment only once billing, which owns payments, vouches for "
                "it (client credentials, payments:verify)",
            )
        )
    )
    assert target.kafka, "this attack writes to Kafka: give --kafka or --state-dir"
    unpaid = place(target, alice, card=PENDING_CARD)  # no payment will ever come for it
    data = {
        "order_id": unpaid["id"],
        "invoice_id": str(uuid.uuid4()),
        "amount_cents": unpaid["total_cents"],
        "currency": unpaid["currency"],
    }
    publish(target.kafka, [forged(PAYMENT_SUCCEEDED, "billing", alice.sub, data)])
    drain(target, alice)
    status = order(target, alice, unpaid["id"])["status"]
    told = [
        n
        for n in notifications(target, alice, unpaid["id"])
        if n.get("kind") in ("payment.succeeded", "order.confirmed")
    ]
    if status == "PENDING_PAYMENT":  # leave no unpaid order holding stock
        target.gw.post(f"/api/orders/{unpaid['id']}/cancel", headers=bearer(alice))
    fooled = status == "CONFIRMED" or bool(told)
    attack.observe(
        Observed(
            "succeeded" if fooled else "refused",
            None,
            f"order {status}, customer told it was paid" if fooled else "not confirmed",
            f"order {status}; {len(told)} payment notification(s)",
        )
    )
