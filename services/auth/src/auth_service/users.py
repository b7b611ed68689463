"""The user directory: password login."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from .db import transaction
from .models import User
from .passwords import verify_password
from .repository import user_by_username


def authenticate(factory: sessionmaker[Session], username: str, password: str) -> User | None:
    """The user if the password is right; unknown users cost the same argon2 check."""
    with transaction(factory) as session:
        user = user_by_username(session, username)
    ok = verify_password(user.password_hash if user else None, password)
    return user if ok else None
