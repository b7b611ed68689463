"""DPoP at the token endpoint (RFC 9449 §5): proofs checked, tokens bound.

A token request may carry one ``DPoP`` header. The web layer checks it with
hopauth's :class:`~hopauth.DPoPProofValidator` before the grant runs and puts
the key's thumbprint on the request; every grant then binds the access token
it issues to that key (``cnf.jkt``) and answers ``token_type: DPoP``.

The proof's ``jti`` goes to the replay cache (§11.1) only once the client is
authenticated (:func:`record`): the validator used here records nothing
(:class:`RecordedLater`), so a caller without client credentials can send
any number of proofs without filling the cache, which, in memory, refuses
every new proof once full. Without the
header, tokens are bearer tokens as before: DPoP is the client's choice, and
each resource server decides whether it insists (hopauth's
``hopauth_require_dpop``).

We issue no nonces (§8): proofs are limited by their ``iat`` window and a
once-only ``jti`` instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from hopauth import DPoPProof, DPoPProofValidator, InvalidDPoPProofError, ReplayCache

__all__ = [
    "ALGORITHMS",
    "BEARER",
    "DPOP",
    "LEEWAY",
    "MAX_AGE",
    "RecordedLater",
    "checked_proof",
    "confirmation",
    "record",
    "token_type",
]

#: ``dpop_signing_alg_values_supported`` (§5.1): what the validator accepts.
ALGORITHMS: Final = ("ES256",)
#: How old a proof's ``iat`` may be, and the clock skew allowed (§11.1): seconds.
MAX_AGE: Final = 60.0
LEEWAY: Final = 5.0
BEARER: Final = "Bearer"
DPOP: Final = "DPoP"


class RecordedLater:
    """The token endpoint validator's :class:`~hopauth.ReplayCache`: it records nothing.

    Every other check of the proof still runs; :func:`record` then puts the
    ``jti`` in the real cache once the client is authenticated.
    """

    async def first_use(self, jti: str, expires_in: float) -> bool:
        return True


async def record(proof: DPoPProof, cache: ReplayCache, now: float) -> None:
    """Record a checked proof's ``jti`` once (§11.1); a second use raises.

    Kept for as long as the validator would accept the proof's ``iat``
    (``MAX_AGE`` + ``LEEWAY``), plus a second because :class:`~hopauth.DPoPProof`
    holds ``iat`` rounded down. Raises :class:`~hopauth.InvalidDPoPProofError`.
    """
    remaining = proof.iat + 1 + MAX_AGE + LEEWAY - now
    if not await cache.first_use(proof.jti, max(remaining, 1.0)):
        raise InvalidDPoPProofError("proof replayed (jti already used)")


def token_type(jkt: str | None) -> str:
    """The ``token_type`` of a token response (RFC 9449 §5, RFC 6750 §4)."""
    return DPOP if jkt is not None else BEARER


async def checked_proof(
    proofs: Sequence[str], validator: DPoPProofValidator, request_url: str, token_endpoint: str
) -> DPoPProof | None:
    """The request's DPoP proof, checked but not yet recorded (:func:`record`); None without one.

    ``proofs`` are the request's ``DPoP`` header values. ``htu`` must name
    ``request_url``, the URL the request was received at (§4.3 point 9: a
    deployment reached under another name than its issuer, e.g. through
    ``HOPSHOP_AUTH_URL``), or ``token_endpoint``, the URL published in
    discovery: clients are told to call it, and a proxy may change the URL
    we see. Both name this endpoint of this server, so neither lets a proof
    made for another server or endpoint through. No ``ath`` is expected:
    there is no access token yet. Raises
    :class:`~hopauth.InvalidDPoPProofError`, which the caller answers with
    400 ``invalid_dpop_proof`` (§5).
    """
    if not proofs:
        return None
    if len(proofs) > 1:
        # §4.3 point 1: not more than one DPoP header.
        raise InvalidDPoPProofError("more than one DPoP header")
    return await validator.validate(
        proofs[0], method="POST", url=request_url, published_url=token_endpoint
    )


def confirmation(claims: Mapping[str, object]) -> str | None:
    """``cnf.jkt`` of verified claims, if the token is DPoP-bound (RFC 9449 §6.1)."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, Mapping) else None
    return jkt if isinstance(jkt, str) else None
