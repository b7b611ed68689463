"""The demo realm (DESIGN.md): users, client credentials, and the production guard."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from . import repository
from .db import transaction
from .models import Client, User
from .oauth.clients import RegisteredClient, hash_secret
from .passwords import hash_password, verify_password
from .policy import Policy

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DemoUser:
    username: str
    roles: str
    display_name: str

    @property
    def password(self) -> str:
        return f"{self.username}-dev-password"


DEMO_USERS = (
    DemoUser("alice", "customer", "Alice Example"),
    DemoUser("bob", "customer", "Bob Example"),
    DemoUser("carol", "support", "Carol Support"),
)


def dev_secret(client_id: str) -> str:
    return f"{client_id}-dev-secret"


class RealmError(RuntimeError):
    """The stored realm cannot be served (missing credentials, demo secrets in production)."""


def seed_demo_realm(factory: sessionmaker[Session], policy: Policy, now: int) -> None:
    """Create the demo users and client credentials that are not there yet."""
    with transaction(factory) as session:
        for demo in DEMO_USERS:
            if repository.user_by_username(session, demo.username) is None:
                session.add(
                    User(
                        id=str(uuid.uuid4()),
                        username=demo.username,
                        password_hash=hash_password(demo.password),
                        roles=demo.roles,
                        email=f"{demo.username}@example.com",
                        display_name=demo.display_name,
                        created_at=now,
                    )
                )
        known = {client.client_id for client in repository.all_clients(session)}
        for client_id, client_policy in policy.clients.items():
            if client_id not in known:
                secret = None if client_policy.public else hash_secret(dev_secret(client_id))
                session.add(Client(client_id=client_id, secret_sha256=secret, created_at=now))


def load_clients(factory: sessionmaker[Session], policy: Policy) -> dict[str, RegisteredClient]:
    """Join stored credentials with the policy; every confidential client needs a secret."""
    with transaction(factory) as session:
        secrets = {row.client_id: row.secret_sha256 for row in repository.all_clients(session)}
    clients: dict[str, RegisteredClient] = {}
    for client_id, client_policy in policy.clients.items():
        secret = secrets.get(client_id)
        if not client_policy.public and secret is None:
            raise RealmError(f"client {client_id!r} is in the policy but has no stored secret")
        clients[client_id] = RegisteredClient(policy=client_policy, secret_sha256=secret)
    for client_id in secrets.keys() - clients.keys():
        log.warning("stored client %s is not in the policy and cannot do anything", client_id)
    return clients


def refuse_demo_credentials(
    factory: sessionmaker[Session], clients: dict[str, RegisteredClient]
) -> None:
    """Production guard: the demo passwords and secrets are public knowledge."""
    for client in clients.values():
        if client.secret_sha256 == hash_secret(dev_secret(client.client_id)):
            raise RealmError(f"client {client.client_id!r} still has its public demo secret")
    with transaction(factory) as session:
        for demo in DEMO_USERS:
            user = repository.user_by_username(session, demo.username)
            if user is not None and verify_password(user.password_hash, demo.password):
                raise RealmError(f"user {demo.username!r} still has its public demo password")
