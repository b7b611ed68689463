"""DPoP at the token endpoint (RFC 9449 §5): proofs checked, tokens bound.

A token request may carry one ``DPoP`` header. The web layer checks it with
hopauth's :class:`~hopauth.DPoPProofValidator` before the grant runs and puts
the key's thumbprint on the request; every grant then binds the access token
it issues to that key (``cnf.jkt``) and answers ``token_type: DPoP``.

The proof's ``jti`` goes to the replay cache (§11.1) once the grant is
validated and before any token is issued: the token endpoint calls
:func:`record` between ``HopAuthorizationServer.validated_token_grant`` and
``issue_token_response``; the validator used here records nothing
(:class:`RecordedLater`). Validated means the client authenticated and the
code, refresh token, client credentials request or subject token checked.
So a failed grant records nothing, even for the public client ``web``, which
has no secret: made-up codes with throw-away keys cannot fill the cache
(which, in memory, refuses every new proof once full). A jti is recorded
only for a grant that succeeds: a client secret, or a real code or refresh
token. Those are spent only after the jti is recorded, so a refused proof
spends neither, and the cache's atomic first use gives one proof tokens
once.

Without the header, tokens are bearer tokens as before: DPoP is the
client's choice, and each resource server decides whether it insists
(hopauth's ``hopauth_require_dpop``).

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
    ``jti`` in the real cache once the grant is validated.
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
    proofs: Sequence[str], validator: DPoPProofValidator, token_endpoint: str, path: str
) -> DPoPProof | None:
    """The request's DPoP proof, checked but not yet recorded (:func:`record`); None without one.

    ``proofs`` are the request's ``DPoP`` header values. ``htu`` must name
    ``token_endpoint``, the URL published in discovery, or one of the
    validator's origins (the issuer's, ``HOPSHOP_AUTH_URL``'s,
    ``AUTH_PUBLIC_URL``'s: :attr:`Settings.origins`) followed by ``path``,
    the path this request came to (§4.3 point 9). All of them name this
    endpoint of this server. The request's ``Host`` header is not one of
    them: the client chooses it, so a proof made for another server would
    pass (§11.1). No ``ath`` is expected: there is no access token yet.
    Raises :class:`~hopauth.InvalidDPoPProofError`, which the caller answers
    with 400 ``invalid_dpop_proof`` (§5).
    """
    if not proofs:
        return None
    if len(proofs) > 1:
        # §4.3 point 1: not more than one DPoP header.
        raise InvalidDPoPProofError("more than one DPoP header")
    if not validator.origins:
        # Without them there is no URL of ours to compare with but the published one.
        raise RuntimeError("the token endpoint's DPoPProofValidator needs this server's origins")
    # The validator compares htu with each of its origins followed by this path.
    return await validator.validate(
        proofs[0], method="POST", url=validator.origins[0] + path, published_url=token_endpoint
    )


def confirmation(claims: Mapping[str, object]) -> str | None:
    """``cnf.jkt`` of verified claims, if the token is DPoP-bound (RFC 9449 §6.1)."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, Mapping) else None
    return jkt if isinstance(jkt, str) else None
