"""Authlib request objects built from an already-parsed HTTP request.

The web layer reads and checks the body (size, content type, repeated
parameters) asynchronously; Authlib's synchronous core then works on plain data.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request


class ParsedPayload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._data: dict[str, str] = {}
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            self._data.setdefault(key, value)
            self._datalist[key].append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class ParsedRequest(OAuth2Request):  # type: ignore[misc]
    """An OAuth2Request over query and form pairs parsed by the web layer."""

    def __init__(
        self,
        *,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        query: Sequence[tuple[str, str]] = (),
        form: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self._args = dict(query)
        self._form = ParsedPayload(form).data
        self.payload = ParsedPayload([*query, *form])
        # Filled in by our grants for the token generator and save_token.
        self.sid: str | None = None
        self.extra: dict[str, Any] = {}
        # RFC 9449 §5: thumbprint of the key of a valid DPoP proof sent with a
        # token request (set by the web layer); tokens issued are bound to it.
        self.dpop_jkt: str | None = None

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form
