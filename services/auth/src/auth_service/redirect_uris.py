"""Redirect URIs a deployment registers on top of the policy's: ``AUTH_EXTRA_REDIRECT_URIS``.

The policy file names DESIGN.md's callback (the gateway on port 8000). A
deployment that runs the gateway elsewhere (``hopshop up --port-offset``, the
e2e stack) adds that gateway's callback here instead of editing the file.
Matching stays exact (RFC 9700 §4.1.1), and each entry is checked at start-up
as strictly as the policy's own: a bad one stops the service, named.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from .policy import Policy, PolicyError, validate_redirect_uri

SETTING = "AUTH_EXTRA_REDIRECT_URIS"


def add_redirect_uris(policy: Policy, extra: Mapping[str, Sequence[str]]) -> Policy:
    """``policy`` with ``extra[client_id]`` registered too (RFC 6749 §3.1.2.2).

    Raises :class:`PolicyError` naming the entry for an unknown client, a client
    that never redirects (no ``authorization_code`` grant) or a URI that is not
    an absolute http(s) URL (RFC 6749 §3.1.2). A URI already registered is kept
    once, in the policy's place.
    """
    clients = dict(policy.clients)
    for client_id, uris in extra.items():
        where = f"{SETTING}[{client_id!r}]"
        client = clients.get(client_id)
        if client is None:
            raise PolicyError(f"{where}: no client {client_id!r} in the policy")
        if "authorization_code" not in client.grants:
            raise PolicyError(
                f"{where}: client {client_id!r} has no authorization_code grant, "
                "so it has no redirect URIs"
            )
        for uri in uris:
            validate_redirect_uri(uri, where)
        merged = tuple(dict.fromkeys((*client.redirect_uris, *uris)))
        clients[client_id] = dataclasses.replace(client, redirect_uris=merged)
    return dataclasses.replace(policy, clients=clients)
