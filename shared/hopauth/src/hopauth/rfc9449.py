"""DPoP: sender-constrained access tokens (RFC 9449).

A token bound to a key (``cnf.jkt``, RFC 9449 §6) is worthless without that
key: every request must carry a fresh proof (a JWT signed with the private
key) naming the request's method and URL, the token's hash and a one-time
``jti``. A token stolen in flight can then not be replayed, not even at its
own audience.

* :class:`DPoPKey` is the client's key pair; :meth:`DPoPKey.proof` builds a
  proof (§4.2).
* :class:`DPoPProofValidator` checks one (§4.3), remembering each ``jti`` in
  a :class:`ReplayCache` (§11.1): :class:`MemoryReplayCache` here,
  :class:`hopauth.redis_replay.RedisReplayCache` to share it between replicas.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import math
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from jwt.algorithms import Algorithm, get_default_algorithms
from jwt.exceptions import InvalidKeyError

from ._strict_json import json_object
from .errors import InvalidDPoPProofError

__all__ = [
    "DPOP_PROOF_TYPE",
    "DPoPKey",
    "DPoPProof",
    "DPoPProofValidator",
    "MemoryReplayCache",
    "ReplayCache",
    "access_token_hash",
    "authorize_dpop",
    "jwk_thumbprint",
    "normalize_htu",
    "resource_nonce",
    "token_endpoint_nonce",
]

logger = logging.getLogger(__name__)

#: RFC 9449 §4.2: the ``typ`` header of a DPoP proof.
DPOP_PROOF_TYPE: Final = "dpop+jwt"

#: JWS algorithms (RFC 7518 §3.1, RFC 8037 §3.1) a validator may allow, with
#: the ``kty`` (and, where it matters, ``crv``) the proof's ``jwk`` must have.
_KEY_FOR_ALG: Final[dict[str, tuple[str, str | None]]] = {
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "EdDSA": ("OKP", None),
}

#: RFC 7638 §3.2: the required members of each key type, in lexicographic order.
_THUMBPRINT_MEMBERS: Final[dict[str, tuple[str, ...]]] = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}

#: Members that only a private (or symmetric) JWK has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+")
_PERCENT: Final = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
#: RFC 9449 §8.1: ``nonce = 1*NQCHAR``; the length cap is ours.
_NONCE: Final = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,512}")
_USE_DPOP_NONCE: Final = re.compile(r'(?i)\bDPoP\b.*\berror\s*=\s*"?use_dpop_nonce\b')

_ECDSA_SHA256: Final = ec.ECDSA(hashes.SHA256())
_MAX_HEADER_CHARS: Final = 2048
_MAX_JTI_CHARS: Final = 256
_MIN_RSA_BITS: Final = 2048
_MAX_CACHED_HEADERS: Final = 1024


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(segment: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2): one encoding per value."""
    if not _BASE64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if _b64url(data) != segment:
        raise ValueError("not canonical base64url")
    return data


def _compact_json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 §3 JWK SHA-256 thumbprint, base64url without padding (the DPoP ``jkt``).

    Only the required members of the key type take part, in lexicographic
    order and without whitespace (§3.2, §3.3). Raises ``ValueError`` for an
    unsupported key type or a missing member.
    """
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None:
        raise ValueError("unsupported key type")
    required: dict[str, str] = {}
    for name in members:
        value = jwk.get(name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"JWK member {name} must be a non-empty string")
        required[name] = value
    return _b64url(hashlib.sha256(_compact_json(required)).digest())


def access_token_hash(access_token: str) -> str:
    """RFC 9449 §4.2 ``ath``: base64url(SHA-256(ASCII(access_token)))."""
    return _b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def _without_query(url: str) -> str:
    return url.split("#", 1)[0].split("?", 1)[0]


def normalize_htu(url: str) -> str:
    """The URL as compared for ``htu`` (RFC 9449 §4.3 point 9): query and fragment dropped.

    Syntax-based normalization (RFC 3986 §6.2.2: scheme and host lower-cased,
    percent-encodings upper-cased and unreserved ones decoded, dot segments
    removed) and scheme-based normalization (§6.2.3: default port dropped,
    empty path as ``/``). Raises ``ValueError`` for anything but an absolute
    http(s) URL.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname  # lower-cased by urlsplit
    if scheme not in _DEFAULT_PORTS or not host:
        raise ValueError("not an absolute http(s) URL")
    port = parts.port  # ValueError when out of range
    if ":" in host:
        host = f"[{host}]"
    authority = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at:
        authority = f"{userinfo}@{authority}"
    path = _remove_dot_segments(_PERCENT.sub(_normalize_percent, parts.path)) or "/"
    return f"{scheme}://{authority}{path}"


def _normalize_percent(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, for an absolute path."""
    segments = path.split("/")
    output: list[str] = []
    for segment in segments:
        if segment == "..":
            if len(output) > 1:
                output.pop()
        elif segment != ".":
            output.append(segment)
    if segments[-1] in (".", ".."):
        output.append("")
    return "/".join(output)


def _nonce(response: httpx.Response) -> str | None:
    nonce: str | None = response.headers.get("dpop-nonce")
    return nonce if nonce is not None and _NONCE.fullmatch(nonce) else None


def token_endpoint_nonce(response: httpx.Response) -> str | None:
    """The nonce an authorization server asks for (RFC 9449 §8), else None.

    It answers 400 ``{"error": "use_dpop_nonce"}`` with the nonce in
    ``DPoP-Nonce``; a value outside the §8.1 syntax is ignored. The response
    body must have been read.
    """
    if response.status_code != 400 or (nonce := _nonce(response)) is None:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return nonce if isinstance(body, dict) and body.get("error") == "use_dpop_nonce" else None


def resource_nonce(response: httpx.Response) -> str | None:
    """The nonce a resource server asks for (RFC 9449 §9), else None.

    It answers 401 with ``WWW-Authenticate: DPoP error="use_dpop_nonce"`` and
    the nonce in ``DPoP-Nonce``. Only headers are read.
    """
    if response.status_code != 401 or (nonce := _nonce(response)) is None:
        return None
    challenges = response.headers.get_list("www-authenticate")
    return nonce if any(_USE_DPOP_NONCE.search(c) for c in challenges) else None


class DPoPKey:
    """A client's DPoP key pair: ES256 on P-256 (RFC 9449 §4.2, RFC 7518 §3.4).

    Holds the private key; its ``repr`` shows only the thumbprint. The proof
    header (``typ``, ``alg``, public ``jwk``) is encoded once, so a proof
    costs one ECDSA signature and a little JSON.
    """

    __slots__ = ("_header_segment", "_private_key", "_public_jwk", "_thumbprint")

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
            private_key.curve, ec.SECP256R1
        ):
            raise ValueError("a DPoP key must be an EC P-256 private key (ES256)")
        self._private_key = private_key
        numbers = private_key.public_key().public_numbers()
        self._public_jwk: dict[str, str] = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")),
        }
        self._thumbprint = jwk_thumbprint(self._public_jwk)
        header = {"typ": DPOP_PROOF_TYPE, "alg": "ES256", "jwk": self._public_jwk}
        self._header_segment = _b64url(_compact_json(header))

    @classmethod
    def generate(cls) -> DPoPKey:
        """A new random key pair."""
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, pem: bytes, password: bytes | None = None) -> DPoPKey:
        """Load a PEM-encoded EC P-256 private key (PKCS#8 or SEC 1)."""
        key = serialization.load_pem_private_key(pem, password=password)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("a DPoP key must be an EC P-256 private key (ES256)")
        return cls(key)

    @property
    def thumbprint(self) -> str:
        """RFC 7638 thumbprint of the public key: the ``jkt`` a bound token carries."""
        return self._thumbprint

    @property
    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK (RFC 7517, RFC 7518 §6.2.1); a copy."""
        return dict(self._public_jwk)

    def __repr__(self) -> str:
        return f"DPoPKey(jkt={self._thumbprint!r})"

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
    ) -> str:
        """A DPoP proof JWT for one request (RFC 9449 §4.2).

        ``htu`` is ``url`` without query and fragment; ``jti`` is 128 random
        bits; ``ath`` is the hash of ``access_token`` when one is given (a
        request to a resource server, §7), ``nonce`` is included when the
        server asked for one (§8, §9).
        """
        claims: dict[str, str | int] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": _without_query(url),
            "iat": int(time.time()),
        }
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        signing_input = f"{self._header_segment}.{_b64url(_compact_json(claims))}"
        r, s = decode_dss_signature(
            self._private_key.sign(signing_input.encode("ascii"), _ECDSA_SHA256)
        )
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def authorize_dpop(
    request: httpx.Request, token: str, key: DPoPKey, *, nonce: str | None = None
) -> None:
    """``Authorization: DPoP <token>`` and a fresh proof for ``request`` (RFC 9449 §7.1)."""
    request.headers["Authorization"] = f"DPoP {token}"
    request.headers["DPoP"] = key.proof(
        request.method, str(request.url), access_token=token, nonce=nonce
    )


@dataclass(frozen=True, slots=True)
class DPoPProof:
    """A proof that passed every RFC 9449 §4.3 check; ``jkt`` is its key's thumbprint."""

    jkt: str
    jti: str
    htm: str
    htu: str
    iat: int


class ReplayCache(Protocol):
    """Remembers proof ``jti`` values so each proof is accepted once (RFC 9449 §11.1)."""

    async def first_use(self, jti: str, expires_in: float) -> bool:
        """True the first time ``jti`` is seen (and remember it ``expires_in`` seconds).

        False when it was seen before. Raise
        :class:`~hopauth.errors.InvalidDPoPProofError` when unsure (fail closed).
        """
        ...


class MemoryReplayCache:
    """A per-process :class:`ReplayCache`: bounded, entries expire.

    Enough for one process. Replicas must share one cache (Redis), or a proof
    refused by one is accepted by the next. When ``max_entries`` live entries
    are held, new proofs are refused (``replay cache full``) rather than
    forgetting a ``jti`` that could then be replayed: it fails closed. Size it
    above the proofs expected within one validity window. ``clock`` is
    monotonic seconds.
    """

    def __init__(
        self, max_entries: int = 100_000, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # jti -> expiry, oldest first

    def __repr__(self) -> str:
        return f"MemoryReplayCache(entries={len(self._seen)}, max_entries={self._max_entries})"

    def __len__(self) -> int:
        return len(self._seen)

    async def first_use(self, jti: str, expires_in: float) -> bool:
        now = self._clock()
        self._drop_expired(now)
        expiry = self._seen.get(jti)
        if expiry is not None and expiry > now:
            return False
        if len(self._seen) >= self._max_entries:
            # Lifetimes differ, so the oldest entry may not be the first to expire.
            self._seen = OrderedDict((k, v) for k, v in self._seen.items() if v > now)
            if len(self._seen) >= self._max_entries:
                logger.warning("DPoP replay cache full (%d entries)", len(self._seen))
                raise InvalidDPoPProofError("replay cache full")
        self._seen[jti] = now + expires_in
        self._seen.move_to_end(jti)
        return True

    def _drop_expired(self, now: float) -> None:
        while self._seen:
            jti, expiry = next(iter(self._seen.items()))
            if expiry > now:
                return
            del self._seen[jti]


class DPoPProofValidator:
    """Checks a DPoP proof (RFC 9449 §4.3) and records its ``jti`` (§11.1).

    ``algorithms`` is the allowlist; only asymmetric algorithms are accepted,
    so ``none`` and the HMAC family cannot sneak in. A proof is accepted when
    its ``iat`` lies in ``[now - max_age - leeway, now + leeway]`` (§11.1), and
    only once: its ``jti`` stays in ``replay_cache`` until it would be too old
    anyway. Server-issued nonces (§8, §9) are not required: a proof's
    ``nonce`` is ignored. Every refusal raises
    :class:`~hopauth.errors.InvalidDPoPProofError` with a short ``reason``.

    ``origins`` are where this server is reached, each ``scheme://host[:port]``
    (RFC 6454 §4; no path, query, fragment or userinfo): the only origins a
    proof's ``htu`` may name (§4.3 point 9). With them, :meth:`validate` takes
    just the path from ``url``, so a ``Host`` header chosen by the client
    cannot make a proof made for another server pass here (§11.1). The
    FastAPI adapter refuses a validator without them. Raises ``ValueError``
    for an origin that is not one.
    """

    def __init__(
        self,
        *,
        replay_cache: ReplayCache,
        algorithms: Sequence[str] = ("ES256",),
        max_age: float = 60.0,
        leeway: float = 5.0,
        clock: Callable[[], float] = time.time,
        max_proof_bytes: int = 4096,
        origins: Sequence[str] = (),
    ) -> None:
        if isinstance(algorithms, str) or isinstance(origins, str):
            raise TypeError("algorithms and origins must be sequences, not a string")
        if not algorithms:
            raise ValueError("algorithms must name at least one algorithm")
        available = get_default_algorithms()
        verifiers: dict[str, Algorithm] = {}
        for alg in algorithms:
            if alg.lower() == "none" or alg.upper().startswith("HS"):
                raise ValueError(f"{alg!r} is not an asymmetric algorithm (RFC 9449 §4.2)")
            if alg not in _KEY_FOR_ALG or alg not in available:
                raise ValueError(f"unsupported algorithm {alg!r}")
            verifiers[alg] = available[alg]
        if not 0 < max_age <= 3600:
            raise ValueError("max_age must be between 0 and 3600 seconds")
        if not 0 <= leeway <= 60:
            raise ValueError("leeway must be between 0 and 60 seconds")
        self._replay_cache = replay_cache
        self._verifiers = verifiers
        self._max_age = max_age
        self._leeway = leeway
        self._clock = clock
        self._max_proof_bytes = max_proof_bytes
        self._origins = tuple(dict.fromkeys(_origin(origin) for origin in origins))
        # header segment -> (verifier, thumbprint, public key) of headers that passed
        self._headers: dict[str, tuple[Algorithm, str, Any]] = {}

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The allowed ``alg`` values, for ``algs`` in a challenge (§7.1) and in metadata (§5.1)."""
        return tuple(self._verifiers)

    @property
    def origins(self) -> tuple[str, ...]:
        """Where this server is reached (normalized ``scheme://host[:port]``); may be empty."""
        return self._origins

    def __repr__(self) -> str:
        return (
            f"DPoPProofValidator(algorithms={list(self._verifiers)!r}, max_age={self._max_age}, "
            f"leeway={self._leeway}, origins={list(self._origins)!r}, "
            f"replay_cache={self._replay_cache!r})"
        )

    async def validate(
        self,
        proof: str,
        *,
        method: str,
        url: str,
        access_token: str | None = None,
        jkt: str | None = None,
        published_url: str | None = None,
    ) -> DPoPProof:
        """Check one proof for the request ``method url`` (RFC 9449 §4.3).

        ``proof`` is the single ``DPoP`` header value: more than one header is
        for the caller to refuse (point 1). ``url`` is the URI of the request,
        percent-encoding as sent (point 9). With :attr:`origins`, only its path
        counts: ``htu`` must be one of the origins followed by that path.
        Without them, ``url`` is compared as given, so build it from
        configuration: a scheme and host taken from the request (the ``Host``
        header) are whatever the client sent, and would let a proof made for
        another server pass (§11.1). ``published_url`` is the URL the server
        advertises for this endpoint (e.g. ``token_endpoint`` in RFC 8414
        metadata), which clients are told to call: an ``htu`` naming it is
        accepted too. With ``access_token`` (a request to a resource server, §7.1) the
        proof must carry its ``ath``; with ``jkt`` (the token's ``cnf.jkt``) it
        must be signed by that key. Cheap checks come first; the ``jti`` is
        recorded only for a proof that passed all the others.
        """
        # Point 2: one well-formed JWT, bounded before anything is parsed.
        if len(proof) > self._max_proof_bytes:
            raise InvalidDPoPProofError("proof too large")
        parts = proof.split(".")
        if len(parts) != 3:
            raise InvalidDPoPProofError("malformed proof: expected a compact JWS")
        # Points 4, 5, 7: typ, alg allowlist, a public jwk fitting alg. A client's
        # header is the same on every proof, so its verdict is remembered.
        checked = self._headers.get(parts[0])
        if checked is None:
            checked = self._check_header(parts[0])
            if len(self._headers) >= _MAX_CACHED_HEADERS:
                self._headers.clear()
            self._headers[parts[0]] = checked
        verifier, thumbprint, key = checked

        # Point 3 and 8-12 on the claims, before the (costlier) signature check.
        claims = _decoded_object(parts[1], "claims")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI_CHARS:
            raise InvalidDPoPProofError("missing or malformed jti")
        htm = claims.get("htm")
        if not isinstance(htm, str) or htm != method:
            raise InvalidDPoPProofError("htm does not match the request method")
        htu = claims.get("htu")
        if not isinstance(htu, str) or not (
            self._names_request(htu, url)
            or (published_url is not None and _same_url(htu, published_url))
        ):
            raise InvalidDPoPProofError("htu does not match the request URL")
        iat = claims.get("iat")
        if isinstance(iat, bool) or not isinstance(iat, int | float) or not math.isfinite(iat):
            raise InvalidDPoPProofError("missing or malformed iat")
        now = self._clock()
        if iat > now + self._leeway:
            raise InvalidDPoPProofError("proof issued in the future")
        if iat < now - self._max_age - self._leeway:
            raise InvalidDPoPProofError("proof too old")
        if access_token is not None:
            ath = claims.get("ath")
            if not isinstance(ath, str):
                raise InvalidDPoPProofError("missing ath")
            # Plain comparisons: both sides are hashes of values the sender holds anyway.
            if ath != access_token_hash(access_token):
                raise InvalidDPoPProofError("ath does not match the access token")
        if jkt is not None and thumbprint != jkt:
            raise InvalidDPoPProofError("proof key does not match the token's key")

        # Point 6: the signature, with the key the proof carries.
        try:
            signature = _b64url_decode(parts[2])
        except ValueError:
            raise InvalidDPoPProofError("malformed proof: signature not base64url") from None
        if not verifier.verify(f"{parts[0]}.{parts[1]}".encode("ascii"), key, signature):
            raise InvalidDPoPProofError("invalid signature")

        # §11.1: once per jti, for as long as the proof's iat would pass.
        remaining = iat + self._max_age + self._leeway - now
        if not await self._replay_cache.first_use(jti, max(remaining, 1.0)):
            raise InvalidDPoPProofError("proof replayed (jti already used)")
        return DPoPProof(jkt=thumbprint, jti=jti, htm=htm, htu=htu, iat=int(iat))

    def _names_request(self, htu: str, url: str) -> bool:
        """Point 9: ``htu`` is ``url``, or with origins, one of them plus ``url``'s path."""
        if not self._origins:
            return _same_url(htu, url)
        try:
            htu_origin, htu_path = _split_origin(_normalized(htu))
            path = _split_origin(_normalized(url))[1]
        except ValueError:
            return False
        return htu_path == path and htu_origin in self._origins

    def _check_header(self, segment: str) -> tuple[Algorithm, str, Any]:
        """The verifier, key thumbprint and key of an acceptable proof header (§4.3 points 4-7)."""
        if len(segment) > _MAX_HEADER_CHARS:
            raise InvalidDPoPProofError("malformed proof: header too large")
        header = _decoded_object(segment, "header")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() != DPOP_PROOF_TYPE:
            raise InvalidDPoPProofError("not a DPoP proof (typ)")
        alg = header.get("alg")
        verifier = self._verifiers.get(alg) if isinstance(alg, str) else None
        if verifier is None:
            raise InvalidDPoPProofError("algorithm not allowed")
        # RFC 7515 §4.1.11: a critical header we do not understand (we understand none).
        if "crit" in header:
            raise InvalidDPoPProofError("unsupported critical header")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict):
            raise InvalidDPoPProofError("missing jwk header")
        if _PRIVATE_MEMBERS & jwk.keys():
            raise InvalidDPoPProofError("jwk contains a private key")
        kty, crv = _KEY_FOR_ALG[str(alg)]
        if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
            raise InvalidDPoPProofError("jwk does not fit the algorithm")
        try:
            thumbprint = jwk_thumbprint(jwk)
            for name in _THUMBPRINT_MEMBERS[kty]:
                if name not in ("kty", "crv"):
                    _b64url_decode(jwk[name])  # one encoding per key, so one thumbprint
            key = verifier.from_jwk(jwk)
        except (InvalidKeyError, ValueError, TypeError, KeyError):
            raise InvalidDPoPProofError("malformed jwk") from None
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < _MIN_RSA_BITS:
            raise InvalidDPoPProofError("RSA key too small")
        return verifier, thumbprint, key


def _same_url(htu: str, url: str) -> bool:
    try:
        return _normalized(htu) == _normalized(url)
    except ValueError:
        return False


#: A service sees the same few URLs over and over.
_normalized = functools.lru_cache(maxsize=1024)(normalize_htu)


def _split_origin(normalized: str) -> tuple[str, str]:
    """``("scheme://authority", "/path")`` of a :func:`normalize_htu` result."""
    slash = normalized.index("/", normalized.index("://") + 3)
    return normalized[:slash], normalized[slash:]


def _origin(origin: str) -> str:
    """A configured origin (RFC 6454 §4), normalized as ``htu`` is; ``ValueError`` otherwise."""
    try:
        normalized = normalize_htu(origin)
        path = urlsplit(origin).path
    except ValueError:
        normalized, path = "", ""
    if not normalized or path not in ("", "/") or any(char in origin for char in "?#@"):
        raise ValueError(f"not an origin (http(s)://host[:port], nothing after it): {origin!r}")
    return normalized.removesuffix("/")


def _decoded_object(segment: str, what: str) -> dict[str, Any]:
    try:
        raw = _b64url_decode(segment)
    except ValueError:
        raise InvalidDPoPProofError(f"malformed proof: {what} not base64url") from None
    value = json_object(raw)
    if value is None:
        raise InvalidDPoPProofError(f"malformed proof: {what} is not a JSON object")
    return value
