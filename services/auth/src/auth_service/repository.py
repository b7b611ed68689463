"""All SQL of the auth service. Functions take a Session; callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from .models import AuthorizationCode, Client, LoginSession, RefreshToken, SigningKey, User

# Users


def user_by_id(session: Session, user_id: str) -> User | None:
    return session.get(User, user_id)


def user_by_username(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).first()


def add(session: Session, row: object) -> None:
    session.add(row)


# Clients


def all_clients(session: Session) -> Sequence[Client]:
    return session.scalars(select(Client)).all()


# Signing keys


def signing_keys_since(session: Session, retired_after: int) -> Sequence[SigningKey]:
    """Keys still published: active ones and those retired after ``retired_after``."""
    query = select(SigningKey).where(
        or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > retired_after)
    )
    return session.scalars(query.order_by(SigningKey.created_at)).all()


def retire_active_keys(session: Session, now: int) -> None:
    session.execute(
        update(SigningKey)
        .where(SigningKey.activated_at.is_not(None), SigningKey.retired_at.is_(None))
        .values(retired_at=now)
    )


def activate_key(session: Session, kid: str, now: int) -> None:
    session.execute(update(SigningKey).where(SigningKey.kid == kid).values(activated_at=now))


# Sessions


def login_session(session: Session, sid: str) -> LoginSession | None:
    return session.get(LoginSession, sid)


def session_is_active(session: Session, sid: str, now: int) -> bool:
    query = select(LoginSession.sid).where(
        LoginSession.sid == sid,
        LoginSession.revoked_at.is_(None),
        LoginSession.expires_at > now,
    )
    return session.execute(query).first() is not None


def revoke_login_session(session: Session, sid: str, now: int, reason: str) -> bool:
    """Mark a session revoked; True if this call revoked it."""
    result = session.execute(
        update(LoginSession)
        .where(LoginSession.sid == sid, LoginSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def sessions_revoked_since(session: Session, since: int) -> Sequence[str]:
    query = select(LoginSession.sid).where(LoginSession.revoked_at > since)
    return session.scalars(query).all()


# Authorization codes


def authorization_code(session: Session, code_sha256: str) -> AuthorizationCode | None:
    return session.get(AuthorizationCode, code_sha256)


def claim_authorization_code(session: Session, code_sha256: str, now: int) -> bool:
    """Atomically mark a code used; False if it was already used (a replay)."""
    result = session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.code_sha256 == code_sha256, AuthorizationCode.used_at.is_(None))
        .values(used_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# Refresh tokens


def refresh_token(session: Session, token_sha256: str) -> RefreshToken | None:
    return session.get(RefreshToken, token_sha256)


def claim_refresh_token(session: Session, token_sha256: str, now: int) -> bool:
    """Atomically mark a refresh token spent; False if it was spent already (reuse)."""
    result = session.execute(
        update(RefreshToken)
        .where(RefreshToken.token_sha256 == token_sha256, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
