"""Reading form bodies strictly, before any OAuth logic sees them."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import parse_qsl

from starlette.requests import Request

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 64


class BadForm(Exception):
    """The body is not an acceptable form; carries the HTTP status and a description."""

    def __init__(self, status_code: int, description: str) -> None:
        super().__init__(description)
        self.status_code = status_code
        self.description = description


async def read_form(
    request: Request, *, max_bytes: int, repeatable: Collection[str] = ()
) -> list[tuple[str, str]]:
    """Parse an ``application/x-www-form-urlencoded`` body (RFC 6749 Appendix B).

    Refuses a wrong content type (415), an oversized body (413), bad encoding
    and repeated parameters (400, RFC 6749 §3.1 and §3.2).
    """
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != FORM_TYPE:
        raise BadForm(415, f"Content-Type must be {FORM_TYPE}.")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        raise BadForm(413, f"Request body larger than {max_bytes} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise BadForm(413, f"Request body larger than {max_bytes} bytes.")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            max_num_fields=MAX_FIELDS,
            encoding="utf-8",
            errors="strict",  # a percent-encoded byte sequence must be UTF-8 too
        )
    except UnicodeDecodeError:
        raise BadForm(400, "Request body is not valid UTF-8.") from None
    except ValueError:
        raise BadForm(400, f"Too many parameters (at most {MAX_FIELDS}).") from None
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen and key not in repeatable:
            raise BadForm(400, f"Parameter '{key}' must not be repeated.")
        seen.add(key)
    return pairs
