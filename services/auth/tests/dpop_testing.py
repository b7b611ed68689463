"""DPoP helpers for the auth service tests: proofs broken on purpose, token requests with proofs."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

import httpx
from auth_testing import ACCESS_TOKEN_TYPE, EXCHANGE, secret

# Re-exported: the DPoP tests redeem codes with a proof.
from auth_testing import redeem as redeem
from cryptography.hazmat.primitives.asymmetric import ec
from hopauth import DPoPKey
from jwt.algorithms import ECAlgorithm


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forged_proof(
    url: str, *, iat_offset: int = 0, typ: str = "dpop+jwt", private_jwk: bool = False
) -> str:
    """A proof for ``POST url`` signed correctly but wrong in the one way asked for."""
    key = ec.generate_private_key(ec.SECP256R1())
    jwk: dict[str, Any] = DPoPKey(key).public_jwk
    if private_jwk:
        jwk["d"] = _b64(key.private_numbers().private_value.to_bytes(32, "big"))
    header = {"typ": typ, "alg": "ES256", "jwk": jwk}
    claims = {
        "jti": secrets.token_urlsafe(16),
        "htm": "POST",
        "htu": url,
        "iat": int(time.time()) + iat_offset,
    }
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = ECAlgorithm(ECAlgorithm.SHA256).sign(signing_input.encode(), key)
    return f"{signing_input}.{_b64(signature)}"


def dpop_headers(proof: str | None) -> dict[str, str]:
    return {"DPoP": proof} if proof is not None else {}


def client_credentials(
    http: httpx.Client, client_id: str, audience: str, proof: str | None
) -> httpx.Response:
    return http.post(
        "/token",
        data={"grant_type": "client_credentials", "audience": audience},
        auth=secret(client_id),
        headers=dpop_headers(proof),
    )


def exchange(
    http: httpx.Client,
    client_id: str | None,
    subject_token: str,
    audience: str,
    scope: str,
    proof: str | None,
) -> httpx.Response:
    """Token exchange; ``client_id=None`` sends no client credentials at all."""
    return http.post(
        "/token",
        data={
            "grant_type": EXCHANGE,
            "subject_token": subject_token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "audience": audience,
            "scope": scope,
        },
        auth=secret(client_id) if client_id is not None else None,
        headers=dpop_headers(proof),
    )


def refresh(http: httpx.Client, refresh_token: str, proof: str | None) -> httpx.Response:
    return http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "web"},
        headers=dpop_headers(proof),
    )


def jwt_claims(jwt: str) -> dict[str, Any]:
    segment = jwt.split(".")[1]
    value: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return value


# -- for the services' DPoP tests: bound tokens from the real issuer, requests with proofs --


def bound_token(auth: httpx.Client, key: DPoPKey, client_id: str, form: dict[str, str]) -> str:
    """A token request by ``client_id`` with a proof of ``key``: the token comes back bound.

    RFC 9449 §5: ``token_type`` is ``DPoP`` and ``cnf.jkt`` is the key's thumbprint.
    """
    proof = key.proof("POST", str(auth.base_url.join("/token")))
    response = auth.post("/token", data=form, auth=secret(client_id), headers={"DPoP": proof})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP", body
    token: str = body["access_token"]
    assert jwt_claims(token)["cnf"] == {"jkt": key.thumbprint}
    return token


def bound_exchange(
    auth: httpx.Client,
    key: DPoPKey,
    client_id: str,
    subject_token: str,
    audience: str,
    scope: str,
) -> str:
    """Token exchange (RFC 8693) by ``client_id``, the new token bound to ``key``."""
    form = {
        "grant_type": EXCHANGE,
        "subject_token": subject_token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "audience": audience,
        "scope": scope,
    }
    return bound_token(auth, key, client_id, form)


def bound_client_credentials(
    auth: httpx.Client, key: DPoPKey, client_id: str, audience: str, scope: str
) -> str:
    """Client credentials (RFC 6749 §4.4) of ``client_id``, the token bound to ``key``."""
    form = {"grant_type": "client_credentials", "audience": audience, "scope": scope}
    return bound_token(auth, key, client_id, form)


def with_proof(key: DPoPKey, method: str, url: str, token: str) -> dict[str, str]:
    """``Authorization: DPoP`` and a fresh proof for ``method url`` (RFC 9449 §7.1)."""
    return {"Authorization": f"DPoP {token}", "DPoP": key.proof(method, url, access_token=token)}


def assert_dpop_refused(response: httpx.Response, problem: str, detail: str) -> None:
    """A 401 problem+json with a ``DPoP`` challenge (RFC 9449 §7.1) naming ``detail``."""
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"urn:hopauth:problem:{problem}", body
    assert detail in body["detail"], body
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("DPoP "), challenge
    error = "invalid_dpop_proof" if problem == "invalid-dpop-proof" else "invalid_token"
    assert f'error="{error}"' in challenge, challenge
