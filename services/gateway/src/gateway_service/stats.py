"""``GET /stats``: the exchange-cache figures the order benchmark reports.

Counts only, nothing about any user or token. The hit rate is the share of
downstream user calls served without a round trip to the issuer; the
token-propagation ADR asks for more than 80% on repeated calls.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from .hops import HopTokens

router = APIRouter(include_in_schema=False)


@router.get("/stats")
async def stats(request: Request) -> dict[str, Any]:
    hops: HopTokens = request.app.state.gateway.hops
    cache = hops.exchanger.stats
    return {
        "propagation": hops.mode.value,
        # Whether DPoP (RFC 9449) is on: the benchmark reports it with its figures.
        "dpop": getattr(request.app.state, "hopauth_dpop", None) is not None,
        "token_exchange": {
            "hits": cache.hits,
            "misses": cache.misses,
            "hit_rate": round(cache.hit_rate, 4),
        },
    }
