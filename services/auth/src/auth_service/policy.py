"""The declarative token policy: which client may get which tokens.

Loaded from a TOML file and validated completely at start-up; any bad entry
raises :class:`PolicyError` naming it, so a typo never becomes a silent grant.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

GRANTS = frozenset({"authorization_code", "refresh_token", "client_credentials", "token_exchange"})
PUBLIC_GRANTS = frozenset({"authorization_code", "refresh_token"})

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


class PolicyError(ValueError):
    """The policy file is invalid; the message names the bad entry."""


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """The user token a public client receives after login (audience and scopes)."""

    audience: str
    scopes: frozenset[str]
    role_scopes: Mapping[str, frozenset[str]]

    def scopes_for(self, roles: frozenset[str]) -> frozenset[str]:
        extra = (self.role_scopes.get(role, frozenset()) for role in roles)
        return self.scopes.union(*extra)


@dataclass(frozen=True, slots=True)
class DelegationPolicy:
    """Who may act for whom at one audience (RFC 8693 §1.1 delegation).

    The actor token must hold one of ``actor_scopes``; the issued token carries
    at most ``scopes``; a ``requested_subject`` must be a user holding one of
    ``subject_roles`` (so support staff can act for customers, not for each other).
    """

    actor_scopes: frozenset[str]
    scopes: frozenset[str]
    subject_roles: frozenset[str]


@dataclass(frozen=True, slots=True)
class ClientPolicy:
    client_id: str
    public: bool
    grants: frozenset[str]
    redirect_uris: tuple[str, ...] = ()
    login: LoginPolicy | None = None
    # target audience -> {scope it may get: subject scopes it needs}, for RFC 8693 exchanges
    exchange: Mapping[str, Mapping[str, frozenset[str]]] = field(default_factory=dict)
    # audience -> scopes for client-credentials tokens
    client_credentials: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # target audience -> what exchanges carrying an actor token may do there
    delegation: Mapping[str, DelegationPolicy] = field(default_factory=dict)

    def all_scopes(self) -> frozenset[str]:
        scopes: set[str] = set()
        if self.login is not None:
            scopes |= self.login.scopes_for(frozenset(self.login.role_scopes))
        for derivations in self.exchange.values():
            scopes |= derivations.keys()
        for values in self.client_credentials.values():
            scopes |= values
        return frozenset(scopes)

    def exchangeable(self, audience: str, subject_scopes: frozenset[str]) -> frozenset[str] | None:
        """Scopes an exchange for ``audience`` may issue given the subject's scopes.

        None if the audience is not a target of this client at all. A scope is
        grantable only when the subject holds every scope it derives from, so an
        exchange can narrow or translate authority but never create it.
        """
        derivations = self.exchange.get(audience)
        if derivations is None:
            return None
        return frozenset(scope for scope, needs in derivations.items() if needs <= subject_scopes)


@dataclass(frozen=True, slots=True)
class Policy:
    clients: Mapping[str, ClientPolicy]

    def client(self, client_id: str) -> ClientPolicy | None:
        return self.clients.get(client_id)

    def scopes_supported(self) -> list[str]:
        scopes: set[str] = set()
        for client in self.clients.values():
            scopes |= client.all_scopes()
        return sorted(scopes)


def load_policy(path: Path) -> Policy:
    """Read and validate the policy file at ``path``."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy file: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: not valid TOML: {exc}") from exc
    return parse_policy(raw, source=str(path))


def parse_policy(raw: Mapping[str, Any], *, source: str = "policy") -> Policy:
    _only_keys(raw, {"clients"}, source)
    clients_raw = raw.get("clients")
    if not isinstance(clients_raw, Mapping) or not clients_raw:
        raise PolicyError(f"{source}: 'clients' must be a non-empty table")
    clients = {
        client_id: _parse_client(client_id, entry, f"{source}: clients.{client_id}")
        for client_id, entry in clients_raw.items()
    }
    return Policy(clients=clients)


_CLIENT_KEYS = {
    "kind",
    "grants",
    "redirect_uris",
    "login",
    "exchange",
    "client_credentials",
    "delegation",
}


def _parse_client(client_id: str, entry: Any, where: str) -> ClientPolicy:
    if not _IDENTIFIER.match(client_id):
        raise PolicyError(f"{where}: client id must match {_IDENTIFIER.pattern}")
    if not isinstance(entry, Mapping):
        raise PolicyError(f"{where}: must be a table")
    _only_keys(entry, _CLIENT_KEYS, where)

    kind = entry.get("kind")
    if kind not in ("public", "confidential"):
        raise PolicyError(f"{where}.kind: must be 'public' or 'confidential', not {kind!r}")
    public = kind == "public"

    grants = frozenset(_string_list(entry.get("grants"), f"{where}.grants"))
    if unknown := grants - GRANTS:
        raise PolicyError(f"{where}.grants: unknown grant(s) {sorted(unknown)}")
    if public and (extra := grants - PUBLIC_GRANTS):
        raise PolicyError(f"{where}.grants: a public client cannot use {sorted(extra)}")

    redirect_uris = tuple(_string_list(entry.get("redirect_uris", []), f"{where}.redirect_uris"))
    for uri in redirect_uris:
        validate_redirect_uri(uri, f"{where}.redirect_uris")
    if ("authorization_code" in grants) != bool(redirect_uris):
        raise PolicyError(f"{where}: redirect_uris are required exactly when authorization_code is")

    login = None
    if "login" in entry:
        login = _parse_login(entry["login"], f"{where}.login")
    if ("authorization_code" in grants) != (login is not None):
        raise PolicyError(
            f"{where}: a 'login' table is required exactly when authorization_code is"
        )

    exchange = _exchange_table(entry.get("exchange", {}), f"{where}.exchange")
    if ("token_exchange" in grants) != bool(exchange):
        raise PolicyError(
            f"{where}: an 'exchange' table is required exactly when token_exchange is"
        )
    client_credentials = _scope_table(
        entry.get("client_credentials", {}), f"{where}.client_credentials"
    )
    if ("client_credentials" in grants) != bool(client_credentials):
        raise PolicyError(
            f"{where}: a 'client_credentials' table is required exactly when that grant is"
        )
    delegation = _delegation_table(entry.get("delegation", {}), exchange, f"{where}.delegation")

    return ClientPolicy(
        client_id=client_id,
        public=public,
        grants=grants,
        redirect_uris=redirect_uris,
        login=login,
        exchange=exchange,
        client_credentials=client_credentials,
        delegation=delegation,
    )


def validate_redirect_uri(uri: str, where: str) -> None:
    """A redirect URI must be absolute, http(s), without a fragment (RFC 6749 §3.1.2).

    Also refused: userinfo (``http://127.0.0.1:8000@evil.example/`` reads as loopback
    but is not), whitespace or other characters a URL never holds (RFC 3986 §2), and
    a port out of range. Matching is exact, so only a clean URI can ever match.
    """
    bad = PolicyError(f"{where}: {uri!r} must be an absolute http(s) URL")
    if "#" in uri or not uri.isascii() or not uri.isprintable() or " " in uri:
        raise bad
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError when out of range or not a number
    except ValueError:
        raise bad from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username is not None:
        raise bad


def _parse_login(entry: Any, where: str) -> LoginPolicy:
    if not isinstance(entry, Mapping):
        raise PolicyError(f"{where}: must be a table")
    _only_keys(entry, {"audience", "scopes", "role_scopes"}, where)
    audience = entry.get("audience")
    if not isinstance(audience, str) or not _IDENTIFIER.match(audience):
        raise PolicyError(f"{where}.audience: must be a service id matching {_IDENTIFIER.pattern}")
    scopes = _scopes(entry.get("scopes"), f"{where}.scopes")
    role_scopes = _scope_table(entry.get("role_scopes", {}), f"{where}.role_scopes")
    return LoginPolicy(audience=audience, scopes=scopes, role_scopes=role_scopes)


def _delegation_table(
    entry: Any, exchange: Mapping[str, Mapping[str, frozenset[str]]], where: str
) -> dict[str, DelegationPolicy]:
    """``[delegation.<audience>]`` tables of ``actor_scopes``, ``scopes``, ``subject_roles``.

    A delegated token can only carry scopes this client could get by a plain
    exchange for that audience: delegation narrows, it never adds authority.
    """
    if not isinstance(entry, Mapping):
        raise PolicyError(f"{where}: must be a table of audience = {{actor_scopes, scopes, ...}}")
    if stray := set(entry) - set(exchange):
        raise PolicyError(f"{where}: {sorted(stray)} not among the exchange audiences")
    table: dict[str, DelegationPolicy] = {}
    for audience, value in entry.items():
        at = f"{where}.{audience}"
        if not isinstance(value, Mapping):
            raise PolicyError(f"{at}: must be a table with actor_scopes, scopes, subject_roles")
        keys = {"actor_scopes", "scopes", "subject_roles"}
        _only_keys(value, keys, at)
        if missing := keys - set(value):
            raise PolicyError(f"{at}: missing key(s) {sorted(missing)}")
        scopes = _scopes(value["scopes"], f"{at}.scopes")
        if beyond := scopes - set(exchange[audience]):
            raise PolicyError(
                f"{at}.scopes: {sorted(beyond)} not among the exchange scopes for '{audience}'"
            )
        roles = frozenset(_string_list(value["subject_roles"], f"{at}.subject_roles"))
        if not roles:
            raise PolicyError(f"{at}.subject_roles: must list at least one role")
        for role in roles:
            if not _IDENTIFIER.match(role):
                raise PolicyError(f"{at}.subject_roles: {role!r} must match {_IDENTIFIER.pattern}")
        table[audience] = DelegationPolicy(
            actor_scopes=_scopes(value["actor_scopes"], f"{at}.actor_scopes"),
            scopes=scopes,
            subject_roles=roles,
        )
    return table


def _scope_table(entry: Any, where: str) -> dict[str, frozenset[str]]:
    if not isinstance(entry, Mapping):
        raise PolicyError(f"{where}: must be a table of audience = [scopes]")
    table: dict[str, frozenset[str]] = {}
    for audience, scopes in entry.items():
        if not _IDENTIFIER.match(audience):
            raise PolicyError(f"{where}.{audience}: must match {_IDENTIFIER.pattern}")
        table[audience] = _scopes(scopes, f"{where}.{audience}")
    return table


def _exchange_table(entry: Any, where: str) -> dict[str, dict[str, frozenset[str]]]:
    """``audience = [scopes]`` (each needs itself in the subject token) or
    ``audience = { "target:scope" = [subject scopes it derives from] }``."""
    if not isinstance(entry, Mapping):
        raise PolicyError(f"{where}: must be a table of audience = [scopes] or {{scope = [needs]}}")
    table: dict[str, dict[str, frozenset[str]]] = {}
    for audience, value in entry.items():
        at = f"{where}.{audience}"
        if not _IDENTIFIER.match(audience):
            raise PolicyError(f"{at}: must match {_IDENTIFIER.pattern}")
        if isinstance(value, Mapping):
            if not value:
                raise PolicyError(f"{at}: must list at least one scope")
            scopes = _scopes(list(value), at)
            table[audience] = {scope: _scopes(value[scope], f"{at}.{scope}") for scope in scopes}
        else:
            table[audience] = {scope: frozenset({scope}) for scope in _scopes(value, at)}
    return table


def _scopes(value: Any, where: str) -> frozenset[str]:
    scopes = _string_list(value, where)
    if not scopes:
        raise PolicyError(f"{where}: must list at least one scope")
    for scope in scopes:
        if not _SCOPE_TOKEN.match(scope):
            raise PolicyError(f"{where}: {scope!r} is not a valid scope token (RFC 6749 §3.3)")
    return frozenset(scopes)


def _string_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PolicyError(f"{where}: must be a list of strings")
    if len(set(value)) != len(value):
        raise PolicyError(f"{where}: has duplicates")
    return value


def _only_keys(entry: Mapping[str, Any], allowed: set[str], where: str) -> None:
    if unknown := set(entry) - allowed:
        raise PolicyError(f"{where}: unknown key(s) {sorted(unknown)}")
