"""JSON objects as JOSE headers and claims must be: one reading only.

Used for JWT headers and claims (RFC 7519) and DPoP proofs (RFC 9449) alike.
"""

from __future__ import annotations

import json
from typing import Any


def json_object(raw: bytes) -> dict[str, Any] | None:
    """A JSON object, or None: duplicate member names are refused (RFC 7515 §5.2 step 4),
    and so are ``NaN``/``Infinity``, which are not JSON (RFC 8259 §6).

    Parsers disagree on which duplicate wins; refusing them closes that gap.
    """
    try:
        value = json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member name")
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
