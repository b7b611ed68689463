"""AccessTokenValidator's ``extra_audiences``: a resource server with several identifiers.

RFC 9068 §4: the ``aud`` claim must contain an identifier of this resource
server. Most have one; ``extra_audiences`` names the others, and nothing else
about the token may loosen with it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from hopauth import AccessTokenValidator, InvalidTokenError, StaticKeySource
from hopauth_support import AUDIENCE, ISSUER, MakeToken


@pytest.fixture
def validator(static_keys: StaticKeySource) -> AccessTokenValidator:
    return AccessTokenValidator(
        issuer=ISSUER, audience=AUDIENCE, keys=static_keys, extra_audiences=("gateway", "billing")
    )


async def reason_for(validator: AccessTokenValidator, token: str) -> str:
    with pytest.raises(InvalidTokenError) as caught:
        await validator.validate(token)
    return caught.value.reason


@pytest.mark.parametrize("aud", [AUDIENCE, "gateway", "billing", ["inventory", "billing"]])
async def test_any_of_our_identifiers_is_accepted(
    validator: AccessTokenValidator, make_token: MakeToken, aud: Any
) -> None:
    principal = await validator.validate(make_token(aud=aud))
    assert principal.audience == (tuple(aud) if isinstance(aud, list) else (aud,))


@pytest.mark.parametrize(
    "aud", ["inventory", ["inventory", "auth"], "gatewayx", "", [], [{"x": 1}], 7, None]
)
async def test_other_audiences_are_still_refused(
    validator: AccessTokenValidator, make_token: MakeToken, aud: Any
) -> None:
    assert await reason_for(validator, make_token(aud=aud)) == "wrong audience"


async def test_the_other_checks_stay_on(
    validator: AccessTokenValidator, make_token: MakeToken
) -> None:
    expired = make_token(aud="gateway", exp=int(time.time()) - 120)
    assert await reason_for(validator, expired) == "token expired"
    foreign = make_token(aud="gateway", iss="http://127.0.0.1:9999")
    assert await reason_for(validator, foreign) == "wrong issuer"


async def test_without_extra_audiences_only_the_primary_one_is_accepted(
    static_keys: StaticKeySource, make_token: MakeToken
) -> None:
    strict = AccessTokenValidator(issuer=ISSUER, audience=AUDIENCE, keys=static_keys)
    assert strict.audiences == frozenset({AUDIENCE})
    assert await reason_for(strict, make_token(aud="gateway")) == "wrong audience"


def test_the_primary_audience_stays_the_realm(validator: AccessTokenValidator) -> None:
    assert validator.audience == AUDIENCE
    assert validator.audiences == frozenset({AUDIENCE, "gateway", "billing"})
    assert "extra_audiences=['billing', 'gateway']" in repr(validator)


def test_extra_audiences_as_a_string_is_refused(static_keys: StaticKeySource) -> None:
    # "gateway" would otherwise become the audiences g, a, t, e, w, y.
    with pytest.raises(TypeError):
        AccessTokenValidator(
            issuer=ISSUER, audience=AUDIENCE, keys=static_keys, extra_audiences="gateway"
        )


@pytest.mark.parametrize("extra", [[""], ["gateway", ""]])
def test_empty_extra_audiences_are_refused(static_keys: StaticKeySource, extra: list[str]) -> None:
    with pytest.raises(ValueError, match="extra_audiences"):
        AccessTokenValidator(
            issuer=ISSUER, audience=AUDIENCE, keys=static_keys, extra_audiences=extra
        )
