"""``hopshop``: run the whole shop on one machine, without Docker.

    hopshop up [-d] [--vulnerable] [--port-offset N] [--only NAME,...]
    hopshop down
    hopshop status [--json]
    hopshop logs [component] [-f] [-n LINES] [--trace TRACE_ID]
    hopshop demo
    hopshop attack [-k EXPRESSION]
    hopshop token [alice|bob|carol] [--scope SCOPES]
    hopshop dlq [--topic TOPIC] [-n N]

Every command takes ``--state-dir`` (default ``./var/stack``, or ``HOPSHOP_STATE_DIR``).
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from . import attack, deadletters, demo, lifecycle, observe, output, token
from .components import Options


def _state_dir(value: str | None) -> Path:
    if value:
        return Path(value)
    return Path(os.environ.get("HOPSHOP_STATE_DIR") or lifecycle.DEFAULT_STATE_DIR)


def _at_least(minimum: float, kind: type[int] | type[float]) -> Callable[[str], float]:
    """An argparse type: a number of ``kind``, refused below ``minimum`` (as a usage error)."""

    def parse(value: str) -> float:
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid number: {value!r}") from None
        if not math.isfinite(number) or number < minimum:  # nan < minimum is False
            raise argparse.ArgumentTypeError(f"must be at least {minimum:g}, not {value}")
        return number

    return parse


_COUNT = _at_least(0, int)  # --port-offset, --lines: a port offset below 0 lands on others' ports
_LETTERS = _at_least(1, int)  # dlq -n: "the last 0 of N" says nothing
_SECONDS = _at_least(0.1, float)

# Exit code of a command whose output pipe was closed (`hopshop logs | head`), as a
# shell reports a program that SIGPIPE stopped.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


def _names(value: str) -> frozenset[str]:
    return frozenset(name.strip() for name in value.split(",") if name.strip())


def _scopes(value: str) -> str:
    """An argparse type: scopes apart by spaces or commas, as one space-separated string."""
    scopes = value.replace(",", " ").split()
    if not scopes:
        raise argparse.ArgumentTypeError("no scope given")
    return " ".join(scopes)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir",
        metavar="DIR",
        help="logs, databases and the state file (default: $HOPSHOP_STATE_DIR or ./var/stack)",
    )

    parser = argparse.ArgumentParser(
        prog="hopshop",
        description="Run the hopshop system on this machine: real valkey, a Kafka-protocol "
        "broker and every service, no Docker.",
        epilog="Every command takes --state-dir DIR (default: $HOPSHOP_STATE_DIR or "
        "./var/stack). Stop a stack with Ctrl-C, or `hopshop down` if started with -d. "
        "`hopshop COMMAND --help` for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser(
        "up",
        parents=[common],
        help="start everything (foreground until Ctrl-C; -d to detach)",
        description="Start valkey, kafka, the topics and every installed service, in order, "
        "waiting for each to be ready.",
    )
    up.add_argument(
        "-d", "--detach", action="store_true", help="run in the background; return when ready"
    )
    up.add_argument(
        "--vulnerable",
        action="store_true",
        help="HOPSHOP_PROPAGATION=forward: the insecure teaching mode",
    )
    up.add_argument(
        "--port-offset",
        type=_COUNT,
        default=0,
        metavar="N",
        help="add N to every default port (HOPSHOP_PORT_<NAME>=PORT sets one exactly)",
    )
    up.add_argument(
        "--only",
        type=_names,
        metavar="NAME,...",
        help="start only these services (valkey and kafka always start)",
    )
    up.add_argument(
        "--timeout",
        type=_SECONDS,
        default=60.0,
        metavar="SECONDS",
        help="how long each component may take to become ready (default 60)",
    )
    up.add_argument(
        "--stop-timeout",
        type=_SECONDS,
        default=10.0,
        metavar="SECONDS",
        help="grace period before SIGKILL when stopping (default 10)",
    )

    down = sub.add_parser("down", parents=[common], help="stop everything `up` started")
    down.add_argument(
        "--timeout",
        type=_SECONDS,
        default=10.0,
        metavar="SECONDS",
        help="grace period per component before SIGKILL (default 10)",
    )

    status = sub.add_parser(
        "status",
        parents=[common],
        help="pid, port and health of each component",
        description="Exit code: 0 all healthy, 1 something unhealthy or gone, 3 not running.",
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")

    logs = sub.add_parser("logs", parents=[common], help="show the logs (all, or one component)")
    logs.add_argument("component", nargs="?", help="e.g. auth, valkey, kafka (default: all)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument(
        "-n", "--lines", type=_COUNT, default=50, metavar="N", help="lines per log (default 50)"
    )
    logs.add_argument(
        "--trace",
        metavar="TRACE_ID",
        help="every line of one trace (as the demo prints it), all services, in time order",
    )

    sub.add_parser(
        "demo",
        parents=[common],
        help="a scripted purchase as alice, with the token each service received, hop by hop",
        description="Needs a running stack (hopshop up -d). Exit code: 0 the order was "
        "confirmed, 1 it was not (or a step failed), 2 no stack is running.",
    )
    attacks = sub.add_parser(
        "attack",
        parents=[common],
        help="the attack suite against the running stack: a table of expected vs observed",
        description="Runs e2e-tests/attacks against the running stack (in the mode it runs "
        "in) and prints each attack: category, mode, expected, observed, and why. Exit code: "
        "0 every attack went as expected, 1 one did not, 2 no stack is running or -k "
        "matches no attack.",
    )
    attacks.add_argument(
        "-k",
        dest="select",
        metavar="EXPRESSION",
        help="only the attacks whose names match (pytest -k), e.g. 'replay and not kafka'",
    )
    tokens = sub.add_parser(
        "token",
        parents=[common],
        help="a demo user's access token (aud gateway), alone on stdout, for the replay exercise",
        description="Logs a demo user in as the web UI does (authorization code + PKCE, "
        "client web) and prints the access token, and nothing else, on stdout; what it is "
        "goes to stderr. For the replay exercise: a dev-realm token. Exit code: 0 printed, "
        "1 the login failed, 2 no stack is running.",
    )
    tokens.add_argument(
        "user",
        nargs="?",
        choices=token.USERS,
        default=demo.USER,
        help="the demo user (default alice)",
    )
    tokens.add_argument(
        "--scope",
        type=_scopes,
        default=None,
        metavar="SCOPES",
        help=f"the scopes to ask for, space-separated (default, as the demo: {demo.SCOPE}; "
        f"for carol, support staff, also {token.STAFF_SCOPES})",
    )
    dead = sub.add_parser(
        "dlq",
        parents=[common],
        help="what the consumers dead-lettered (the .dlq topics), one line each",
        description="Reads every <topic>.dlq from its beginning, without a consumer group "
        "(nothing committed: reading changes nothing), and prints one line per dead letter: "
        "when, consumer group, the original topic[partition]@offset, the event's id (and "
        "type, if not the topic's) if its value is a valid envelope (never the value "
        "itself), and the reason. "
        'Exit code: 0 printed ("No dead letters." included), 1 kafka could not be read, '
        "2 no stack is running.",
    )
    dead.add_argument(
        "--topic",
        metavar="TOPIC",
        help="one topic's dead letters only, e.g. order.placed (default: every topic)",
    )
    dead.add_argument(
        "-n",
        "--lines",
        type=_LETTERS,
        default=50,
        metavar="N",
        help="the last N dead letters (default 50)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except BrokenPipeError:
        # The reader went away (`hopshop logs | head`): stop quietly, without a traceback.
        output.silence(sys.stdout)
        return EXIT_BROKEN_PIPE


def _run(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args.state_dir)

    if args.command == "up":
        options = Options(
            state_dir=state_dir,
            port_offset=args.port_offset,
            vulnerable=args.vulnerable,
            only=args.only,
        )
        return lifecycle.up(
            options,
            detach=args.detach,
            wait_timeout=args.timeout,
            stop_timeout=args.stop_timeout,
        )
    if args.command == "down":
        return lifecycle.down(state_dir, timeout=args.timeout)
    if args.command == "status":
        return observe.status(state_dir, as_json=args.json)
    if args.command == "logs":
        return observe.logs(
            state_dir, args.component, follow=args.follow, lines=args.lines, trace=args.trace
        )
    if args.command == "demo":
        return demo.demo(state_dir)
    if args.command == "dlq":
        return deadletters.dead_letters(state_dir, args.topic, args.lines)
    if args.command == "token":
        return token.token(state_dir, args.user, args.scope or token.default_scope(args.user))
    return attack.attack(state_dir, select=args.select)


if __name__ == "__main__":
    raise SystemExit(main())
