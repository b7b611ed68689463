"""``hopshop-auth``: serve, migrate, rotate the signing key, check a policy file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import Settings
from .db import create_db_engine, create_session_factory
from .keys import KeyStore
from .migrations import upgrade
from .policy import PolicyError, load_policy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hopshop-auth", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the auth service (uvicorn, one process)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8001)
    sub.add_parser("migrate", help="upgrade the database schema to head")
    sub.add_parser("rotate-key", help="start signing with a new key; the old one stays published")
    check = sub.add_parser("check-policy", help="validate a policy file")
    check.add_argument("path", type=Path)
    args = parser.parse_args(argv)

    if args.command == "check-policy":
        try:
            policy = load_policy(args.path)
        except PolicyError as exc:
            print(f"invalid policy: {exc}", file=sys.stderr)
            return 1
        print(f"ok: {len(policy.clients)} clients")
        return 0

    settings = Settings()
    if args.command == "serve":
        import uvicorn  # the server is only needed by this command

        uvicorn.run(
            "auth_service.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            access_log=False,  # the service writes its own access log, with request ids
            log_config=None,
            # X-Forwarded-* headers are not trusted at all: URLs come from the issuer
            # setting, and the login throttle counts per client address, which a
            # client must not choose (api.client_ip).
            proxy_headers=False,
        )
        return 0

    engine = create_db_engine(settings.database_url)
    try:
        upgrade(engine)
        if args.command == "rotate-key":
            keys = KeyStore(
                create_session_factory(engine),
                retention=settings.key_retention,
                reload_interval=settings.key_reload_interval,
            )
            keys.load()
            print(f"new signing key: {keys.rotate()}")
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
