"""Token-exchange benchmark for the hopshop auth service (``make bench-auth``).

Starts the auth service (one uvicorn worker process, uvloop + httptools, JSON logs on) and a
bare FastAPI reference app as subprocesses on one core, drives them from this process on another
core with ``loadgen.run_load``, and measures:

* ``reference``          bare FastAPI ``POST /token`` with a urlencoded form (the floor);
* ``client_credentials`` ``billing-worker`` asking for its own token;
* ``token_exchange``     ``gateway`` exchanging alice's user token for an ``order`` token;
* ``validator``          hopauth ``AccessTokenValidator`` alone, in-process, on one core.

Target: token exchange >= 2000/s with p95 < 10 ms on one worker process. Not meeting it is a
result, not a failure: the exit code is non-zero only when something broke.

    uv run python bench/bench_auth.py --duration 5 --concurrency 8,32 --json var/bench.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import uvloop
from hopauth import (
    ACCESS_TOKEN_TYPE,
    TOKEN_EXCHANGE_GRANT,
    AccessTokenValidator,
    StaticKeySource,
)

if TYPE_CHECKING:
    # mypy (run from the repo root, explicit_package_bases) sees this directory as "bench";
    # at run time the script's own directory is on sys.path.
    from bench.loadgen import LoadResult, build_request, run_load
else:
    from loadgen import LoadResult, build_request, run_load

BENCH_DIR = Path(__file__).resolve().parent

TARGET_RPS = 2000.0
TARGET_P95_MS = 10.0
TARGET_TEXT = (
    f"token exchange >= {TARGET_RPS:.0f}/s with p95 < {TARGET_P95_MS:.0f} ms on one worker process"
)

# The demo realm seeded in development (services/auth/src/auth_service/realm.py, policy.toml).
WEB_CLIENT = "web"
REDIRECT_URI = "http://127.0.0.1:8000/callback"
USER_SCOPES = "orders:read orders:write billing:read notifications:read"
ALICE = ("alice", "alice-dev-password")
GATEWAY = ("gateway", "gateway-dev-secret")
BILLING_WORKER = ("billing-worker", "billing-worker-dev-secret")


FORM = "application/x-www-form-urlencoded"
STARTUP_TIMEOUT = 60.0
VALIDATOR_SECONDS = 3.0


class BenchError(Exception):
    """Something broke (as opposed to: the target was not met)."""


# --------------------------------------------------------------------------- subprocesses


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def host_header(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def affinity(cpus: set[int] | None) -> Iterator[None]:
    """Temporarily pin this process, so that a child started inside inherits the pinning."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def start_uvicorn(
    name: str,
    factory: str,
    *,
    env_extra: dict[str, str],
    workdir: Path,
    port: int,
    cpu: int | None,
    app_dir: Path | None = None,
) -> Server:
    cmd = [sys.executable, "-m", "uvicorn", "--factory", factory]
    if app_dir is not None:
        cmd += ["--app-dir", str(app_dir)]
    cmd += [
        "--host", "127.0.0.1",
        "--port", str(port),
        "--loop", "uvloop",
        "--http", "httptools",
        "--no-proxy-headers",
        "--no-access-log",
        "--log-level", "warning",
    ]  # fmt: skip
    # A defined configuration: inherited AUTH_*/HOPSHOP_* settings (a Redis URL, say) would
    # change what is measured.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "HOPSHOP_"))}
    env.update(env_extra)
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log, affinity({cpu} if cpu is not None else None):
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
            cmd,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only us; we stop the servers in order
        )
    return Server(name=name, port=port, proc=proc, log_path=log_path)


def stop(server: Server) -> None:
    proc = server.proc
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def thread_affinities(pid: int) -> set[int]:
    """Union of the CPU sets of every thread of ``pid`` (threads can be pinned separately)."""
    cpus: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            cpus |= os.sched_getaffinity(int(task.name))
    return cpus


async def wait_ready(client: httpx.AsyncClient, server: Server, path: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise BenchError(
                f"{server.name} exited with code {server.proc.returncode} during start-up; "
                f"log {server.log_path}:\n{server.log_tail()}"
            )
        with contextlib.suppress(httpx.TransportError):
            response = await client.get(server.base_url + path, timeout=2.0)
            if response.status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise BenchError(
        f"{server.name} not ready on {path} after {STARTUP_TIMEOUT:.0f} s; "
        f"log {server.log_path}:\n{server.log_tail()}"
    )


# --------------------------------------------------------------------------- OAuth set-up


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _expect(cond: bool, what: str, response: httpx.Response) -> None:
    if not cond:
        raise BenchError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")


async def user_token(client: httpx.AsyncClient, auth: Server) -> str:
    """alice's access token via the real authorization code + PKCE flow (RFC 6749 §4.1, 7636)."""
    verifier = secrets.token_urlsafe(48)
    challenge = b64url(hashlib.sha256(verifier.encode("ascii")).digest())
    state = secrets.token_urlsafe(16)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": WEB_CLIENT,
            "redirect_uri": REDIRECT_URI,
            "scope": USER_SCOPES,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    url = f"{auth.base_url}/authorize?{query}"
    page = await client.get(url)
    _expect(page.status_code == 200, "GET /authorize (login page)", page)
    login = await client.post(
        url, data={"username": ALICE[0], "password": ALICE[1]}, follow_redirects=False
    )
    _expect(login.status_code == 302, "POST /authorize (login)", login)
    location = urlsplit(login.headers.get("location", ""))
    params = parse_qs(location.query)
    _expect(
        f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
        and params.get("state") == [state]
        and len(params.get("code", [])) == 1,
        f"login redirect {login.headers.get('location')!r}",
        login,
    )
    token = await client.post(
        f"{auth.base_url}/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"][0],
            "redirect_uri": REDIRECT_URI,
            "client_id": WEB_CLIENT,
            "code_verifier": verifier,
        },
    )
    _expect(token.status_code == 200, "POST /token (authorization_code)", token)
    access_token = token.json().get("access_token")
    _expect(isinstance(access_token, str) and bool(access_token), "no access_token", token)
    assert isinstance(access_token, str)
    return access_token


# --------------------------------------------------------------------------- scenarios


@dataclass
class Scenario:
    name: str
    server: Server
    request: bytes
    check: Callable[[dict[str, Any]], Awaitable[None]]


def form_request(server: Server, body: dict[str, str], authorization: str) -> bytes:
    headers = {"Content-Type": FORM, "Authorization": authorization, "Accept": "application/json"}
    return build_request("POST", "/token", server.host_header, headers, urlencode(body).encode())


def exchange_body(subject_token: str) -> dict[str, str]:
    return {
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token": subject_token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "audience": "order",
        "scope": "orders:read",
    }


async def send_raw(port: int, request: bytes) -> tuple[int, bytes]:
    """Send the exact bytes the load generator will send; return (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await asyncio.wait_for(reader.readexactly(length), 30) if length else b""
        return status, body
    finally:
        writer.close()


async def sanity_check(scenario: Scenario) -> None:
    status, body = await send_raw(scenario.server.port, scenario.request)
    if status != 200:
        raise BenchError(f"{scenario.name}: expected 200, got {status}: {body[:500]!r}")
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise BenchError(f"{scenario.name}: response is not JSON: {body[:500]!r}") from exc
    if not isinstance(payload, dict):
        raise BenchError(f"{scenario.name}: expected a JSON object, got {payload!r}")
    await scenario.check(payload)


def require(scenario: str, payload: dict[str, Any], expected: dict[str, Any]) -> None:
    wrong = {k: payload.get(k) for k, v in expected.items() if payload.get(k) != v}
    if wrong:
        raise BenchError(f"{scenario}: unexpected response fields {wrong}, expected {expected}")


@dataclass
class Row:
    scenario: str
    concurrency: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests: int
    errors: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_result(cls, scenario: str, concurrency: int, r: LoadResult) -> Row:
        return cls(
            scenario=scenario,
            concurrency=concurrency,
            rps=r.throughput,
            p50_ms=r.percentile(50) * 1000,
            p95_ms=r.percentile(95) * 1000,
            p99_ms=r.percentile(99) * 1000,
            requests=r.requests,
            errors={str(k): v for k, v in sorted(r.errors.items(), key=str)},
        )

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def meets_target(self) -> bool:
        return self.error_count == 0 and self.rps >= TARGET_RPS and self.p95_ms < TARGET_P95_MS

    def as_json(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 3)

        return {
            "scenario": self.scenario,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "req_per_s": num(self.rps),
            "p50_ms": num(self.p50_ms),
            "p95_ms": num(self.p95_ms),
            "p99_ms": num(self.p99_ms),
            "errors": self.errors,
        }


# --------------------------------------------------------------------------- validator


async def bench_validator(
    issuer: str, jwks: dict[str, Any], token: str, seconds: float
) -> dict[str, float]:
    validator = AccessTokenValidator(issuer=issuer, audience="gateway", keys=StaticKeySource(jwks))
    principal = await validator.validate(token)  # raises if the set-up is wrong
    if principal.subject == "" or principal.client_id != WEB_CLIENT:
        raise BenchError(f"validator: unexpected principal {principal!r}")
    for _ in range(200):  # warm-up
        await validator.validate(token)
    clock = time.perf_counter
    n = 0
    start = clock()
    end = start + seconds
    while clock() < end:
        for _ in range(100):
            await validator.validate(token)
        n += 100
    elapsed = clock() - start
    return {
        "verifications": n,
        "seconds": elapsed,
        "per_s": n / elapsed,
        "us_each": elapsed / n * 1e6,
    }


# --------------------------------------------------------------------------- reporting


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def write_report(
    path: Path, report: dict[str, Any], server_cpu: int | None, load_cpu: int | None
) -> None:
    """``report`` as JSON at ``path``, with the machine it was measured on and when."""
    report["machine"] = {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "server_cpu": server_cpu,
        "loadgen_cpu": load_cpu,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }
    report["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


def fmt_ms(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.2f}"


def print_table(rows: Sequence[Row]) -> None:
    header = ("scenario", "concurrency", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors")
    lines = [
        (
            r.scenario,
            str(r.concurrency),
            f"{r.rps:.1f}",
            fmt_ms(r.p50_ms),
            fmt_ms(r.p95_ms),
            fmt_ms(r.p99_ms),
            str(r.error_count)
            + (
                " (" + ", ".join(f"{k}: {v}" for k, v in r.errors.items()) + ")" if r.errors else ""
            ),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]

    def render(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:-1], widths[1:-1], strict=True))
        return "  ".join([first, *rest, cells[-1]])

    print()
    print(render(header))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(render(line))
    print()


def target_lines(rows: Sequence[Row]) -> tuple[bool, list[str]]:
    exchange = [r for r in rows if r.scenario == "token_exchange"]
    met = any(r.meets_target() for r in exchange)
    lines = []
    for r in exchange:
        if r.meets_target():
            verdict = "MET"
        else:
            verdict = f"NOT MET ({r.rps:.0f}/s, p95 {fmt_ms(r.p95_ms)} ms"
            verdict += f", {r.error_count} errors)" if r.error_count else ")"
        suffix = f"  [concurrency {r.concurrency}]" if len(exchange) > 1 else ""
        lines.append(f"target: {TARGET_TEXT}: {verdict}{suffix}")
    return met, lines


# --------------------------------------------------------------------------- main


def parse_concurrency(raw: str) -> list[int]:
    try:
        values = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or N,M,...: {raw!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"concurrency values must be >= 1: {raw!r}")
    return values


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="hopshop auth token-exchange benchmark")
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=2.0, help="discarded seconds per run")
    ap.add_argument(
        "--concurrency",
        type=parse_concurrency,
        default=[8],
        help="keep-alive connections; a list such as 8,32 runs each (default 8)",
    )
    ap.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="set AUTH_ACCESS_LOG=true/false (default: the service default, on)",
    )
    ap.add_argument(
        "--validator-seconds", type=float, default=VALIDATOR_SECONDS, help="validator loop length"
    )
    ap.add_argument("--json", type=Path, default=None, metavar="PATH", help="write figures here")
    ap.add_argument(
        "--keep-logs", action="store_true", help="keep the servers' log directory and print it"
    )
    args = ap.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or args.validator_seconds <= 0:
        ap.error("--duration and --validator-seconds must be > 0, --warmup >= 0")
    return args


def choose_cpus() -> tuple[int | None, int | None]:
    """(server CPU, load generator CPU): 1 and 0 when allowed, else the first two we may use."""
    if not hasattr(os, "sched_setaffinity"):
        return None, None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None, None
    if {0, 1} <= set(allowed):
        return 1, 0
    return allowed[1], allowed[0]


async def run(args: argparse.Namespace, workdir: Path, servers: list[Server]) -> int:
    server_cpu, load_cpu = choose_cpus()
    cores = os.cpu_count() or 1
    if server_cpu is not None and load_cpu is not None:
        print(f"pinning: servers -> CPU {server_cpu}, load generator + validator -> CPU {load_cpu}")
    else:
        print("pinning: none (fewer than 2 usable CPUs); server and load generator share a core")

    auth_port = free_port()
    issuer = f"http://127.0.0.1:{auth_port}"
    auth_env = {
        "HOPSHOP_ENV": "development",
        "HOPSHOP_ISSUER": issuer,
        "AUTH_DATABASE_URL": f"sqlite:///{workdir / 'auth.db'}",
    }
    if args.access_log is not None:
        auth_env["AUTH_ACCESS_LOG"] = "true" if args.access_log else "false"
    auth = start_uvicorn(
        "auth",
        "auth_service.app:create_app",
        env_extra=auth_env,
        workdir=workdir,
        port=auth_port,
        cpu=server_cpu,
    )
    servers.append(auth)
    reference = start_uvicorn(
        "reference",
        "reference_app:create_app",
        env_extra={},
        workdir=workdir,
        port=free_port(),
        cpu=server_cpu,
        app_dir=BENCH_DIR,
    )
    servers.append(reference)
    if load_cpu is not None:
        os.sched_setaffinity(0, {load_cpu})

    async with httpx.AsyncClient(timeout=30.0) as client:
        await asyncio.gather(
            wait_ready(client, auth, "/healthz"), wait_ready(client, reference, "/ping")
        )
        if server_cpu is not None:
            for s in servers:
                got = thread_affinities(s.proc.pid)
                if got != {server_cpu}:
                    raise BenchError(f"{s.name} runs on CPUs {sorted(got)}, not {server_cpu}")
        access_log = "service default" if args.access_log is None else str(args.access_log)
        print(
            f"auth service pid {auth.proc.pid} on {auth.base_url} (access log: {access_log}), "
            f"reference pid {reference.proc.pid} on {reference.base_url}"
        )

        alice_token = await user_token(client, auth)
        jwks_response = await client.get(f"{auth.base_url}/jwks")
        _expect(jwks_response.status_code == 200, "GET /jwks", jwks_response)
        jwks: dict[str, Any] = jwks_response.json()

    check_validator = AccessTokenValidator(
        issuer=issuer, audience="order", keys=StaticKeySource(jwks)
    )
    alice = await AccessTokenValidator(
        issuer=issuer, audience="gateway", keys=StaticKeySource(jwks)
    ).validate(alice_token)

    async def check_reference(payload: dict[str, Any]) -> None:
        require("reference", payload, {"token_type": "Bearer", "grant_type": TOKEN_EXCHANGE_GRANT})

    async def check_client_credentials(payload: dict[str, Any]) -> None:
        require("client_credentials", payload, {"token_type": "Bearer", "scope": "orders:read"})
        p = await check_validator.validate(str(payload.get("access_token")))
        if (p.subject, p.client_id, p.actors) != (BILLING_WORKER[0], BILLING_WORKER[0], ()):
            raise BenchError(f"client_credentials: unexpected token {p!r}")

    async def check_exchange(payload: dict[str, Any]) -> None:
        require(
            "token_exchange",
            payload,
            {
                "token_type": "Bearer",
                "issued_token_type": ACCESS_TOKEN_TYPE,
                "scope": "orders:read",
            },
        )
        p = await check_validator.validate(str(payload.get("access_token")))
        if (p.subject, p.client_id, p.current_actor) != (alice.subject, GATEWAY[0], GATEWAY[0]):
            raise BenchError(f"token_exchange: unexpected token {p!r}")

    async def exchange_scenario() -> Scenario:
        # A fresh subject token per run: exchanged tokens never outlive it (15 min).
        async with httpx.AsyncClient(timeout=30.0) as client:
            subject = await user_token(client, auth)
        return Scenario(
            "token_exchange",
            auth,
            form_request(auth, exchange_body(subject), basic(*GATEWAY)),
            check_exchange,
        )

    rows: list[Row] = []
    for name in ("reference", "client_credentials", "token_exchange"):
        for concurrency in args.concurrency:
            if name == "reference":
                # The same form the exchange sends, so form parsing costs the same.
                body = exchange_body(alice_token)
                request = form_request(reference, body, basic(*GATEWAY))
                scenario = Scenario(name, reference, request, check_reference)
            elif name == "client_credentials":
                body = {"grant_type": "client_credentials"}
                request = form_request(auth, body, basic(*BILLING_WORKER))
                scenario = Scenario(name, auth, request, check_client_credentials)
            else:
                scenario = await exchange_scenario()
            await sanity_check(scenario)
            result = await run_load(
                host="127.0.0.1",
                port=scenario.server.port,
                requests=[scenario.request],
                concurrency=concurrency,
                duration=args.duration,
                warmup=args.warmup,
            )
            print(result.summary_line(f"{name} c={concurrency}"), flush=True)
            rows.append(Row.from_result(name, concurrency, result))
            for s in servers:
                if s.proc.poll() is not None:
                    raise BenchError(
                        f"{s.name} died during the run (code {s.proc.returncode}); "
                        f"log {s.log_path}:\n{s.log_tail()}"
                    )

    validator = await bench_validator(issuer, jwks, alice_token, args.validator_seconds)

    print_table(rows)
    print(
        f"validator (hopauth AccessTokenValidator, in-process, one core): "
        f"{validator['per_s']:.0f} verifications/s per core, "
        f"{validator['us_each']:.1f} µs per verification"
    )
    met, lines = target_lines(rows)
    for line in lines:
        print(line)
    print(f"cpu: {cpu_model()}, {cores} cores")
    failed = [r for r in rows if r.error_count]
    if failed:
        print(
            "errors during measurement: "
            + "; ".join(f"{r.scenario} c={r.concurrency}: {r.errors}" for r in failed)
            + f" (auth log: {auth.log_path})"
        )

    if args.json is not None:
        report = {
            "target": {
                "text": TARGET_TEXT,
                "req_per_s": TARGET_RPS,
                "p95_ms": TARGET_P95_MS,
                "met": met,
            },
            "results": [r.as_json() for r in rows],
            "validator": {
                "verifications_per_s_per_core": round(validator["per_s"], 1),
                "us_per_verification": round(validator["us_each"], 3),
                "verifications": int(validator["verifications"]),
                "seconds": round(validator["seconds"], 3),
            },
            "settings": {
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "concurrency": args.concurrency,
                "access_log": args.access_log,
                "uvicorn": "1 worker, --loop uvloop --http httptools, --no-access-log",
            },
        }
        write_report(args.json, report, server_cpu, load_cpu)
    return 0


def _raise_interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def run_bench(
    prog: str,
    keep_logs: bool,
    run: Callable[[Path, list[Server]], Coroutine[Any, Any, int]],
    *,
    cleanup: Callable[[], None] | None = None,
) -> int:
    """Run ``run(workdir, servers)`` on uvloop; stop every server it started, however it ends.

    ``run`` appends each server it starts to ``servers``; ``cleanup`` stops anything else
    (after the servers). Returns ``run``'s code, 1 when something broke, 130 when
    interrupted. The work dir (the servers' logs) is kept after a failure or when asked.
    """
    # So that `finally` stops the servers: SIGTERM, and SIGINT even when the shell started us
    # with it ignored (a background job).
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    servers: list[Server] = []
    workdir = Path(tempfile.mkdtemp(prefix=f"{prog}-"))
    ok = False
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            code = runner.run(run(workdir, servers))
        ok = True
        return code
    except BenchError as exc:
        print(f"{prog}: FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    finally:
        for s in servers:
            try:
                stop(s)
            except BaseException as exc:  # keep stopping the others
                print(f"{prog}: could not stop {s.name}: {exc!r}", file=sys.stderr)
                with contextlib.suppress(OSError):
                    s.proc.kill()
        if cleanup is not None:
            cleanup()
        if ok and not keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"server logs kept in {workdir}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench(
        "bench-auth", args.keep_logs, lambda workdir, servers: run(args, workdir, servers)
    )


if __name__ == "__main__":
    sys.exit(main())
