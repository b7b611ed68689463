"""What DPoP (RFC 9449) costs: requests/s with and without it (``make bench-dpop``).

Starts a real valkey-server, the auth service (its DPoP replay cache in that valkey) and
``dpop_app.py`` (a FastAPI endpoint guarded by hopauth's ``Requires``, DPoP switch on, replay
cache in the same valkey), each server one uvicorn worker process on one core, and drives them
from this process on another core with ``loadgen.run_load``:

* ``resource bearer``  ``GET /orders/1`` with an unbound client-credentials token;
* ``resource dpop``    the same with a DPoP-bound token and a fresh proof per request (made
  here, by the load generator: ES256 signature, ``ath``, a new ``jti``);
* ``token bearer``     ``POST /token``, client credentials, no proof;
* ``token dpop``       the same with a fresh proof per request: the issued token is bound.

Then, in-process on one core: µs to make a proof (``DPoPKey.proof``), to check one
(``DPoPProofValidator.validate``, replay cache in memory, i.e. CPU only, and in valkey, i.e.
including the round trip), and to validate the access token itself, for scale.

    uv run python bench/bench_dpop.py --duration 5 --concurrency 8 --json var/bench-dpop.json

Not a pass/fail benchmark: the exit code is non-zero only when something broke.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
import redis.asyncio as aioredis
from hopauth import (
    AccessTokenValidator,
    DPoPKey,
    DPoPProofValidator,
    MemoryReplayCache,
    StaticKeySource,
    TokenEndpoint,
)
from hopauth.redis_replay import RedisReplayCache
from hopkit.testing import ValkeyServer

if TYPE_CHECKING:
    # mypy (run from the repo root, explicit_package_bases) sees this directory as "bench";
    # at run time the script's own directory is on sys.path.
    from bench import bench_auth
    from bench.loadgen import RequestSource, build_request, run_load
else:
    import bench_auth
    from loadgen import RequestSource, build_request, run_load

BENCH_DIR = Path(__file__).resolve().parent
BILLING_WORKER = ("billing-worker", "billing-worker-dev-secret")
FORM = "application/x-www-form-urlencoded"
RESOURCE_PATH = "/orders/1"


@dataclass
class Scenario:
    name: str
    server: bench_auth.Server
    requests: RequestSource
    check: Callable[[int, dict[str, Any]], Awaitable[None]]


def sample(source: RequestSource) -> bytes:
    return source(0) if callable(source) else source[0]


async def sanity_check(scenario: Scenario) -> None:
    """One request exactly as the load generator builds it; a wrong answer stops the bench."""
    status, body = await bench_auth.send_raw(scenario.server.port, sample(scenario.requests))
    try:
        payload = json.loads(body) if body else {}
    except ValueError:
        raise bench_auth.BenchError(
            f"{scenario.name}: response is not JSON: {body[:300]!r}"
        ) from None
    await scenario.check(status, payload if isinstance(payload, dict) else {})


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/<pid>/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(scenario: Scenario, args: argparse.Namespace) -> tuple[bench_auth.Row, float]:
    """Run the load; also the server's CPU µs per successful request over the measured window.

    CPU time per request is what the server itself spent, whoever else shares the machine;
    requests/s depends on how much of its core the server got.
    """
    pid = scenario.server.proc.pid
    window: list[float] = []

    async def sample_at_start() -> None:
        await asyncio.sleep(args.warmup)
        window.append(cpu_seconds(pid))

    sampler = asyncio.create_task(sample_at_start())
    result = await run_load(
        host="127.0.0.1",
        port=scenario.server.port,
        requests=scenario.requests,
        concurrency=args.concurrency,
        duration=args.duration,
        warmup=args.warmup,
    )
    await sampler
    used = cpu_seconds(pid) - window[0]
    cpu_us = used / result.requests * 1e6 if result.requests else float("nan")
    print(
        f"{result.summary_line(f'{scenario.name} c={args.concurrency}')}  cpu {cpu_us:.0f} µs/req"
    )
    return bench_auth.Row.from_result(scenario.name, args.concurrency, result), cpu_us


def expect(scenario: str, ok: bool, status: int, payload: dict[str, Any]) -> None:
    if not ok:
        raise bench_auth.BenchError(f"{scenario}: unexpected answer HTTP {status}: {payload}")


# --------------------------------------------------------------------------- micro-benchmarks


def per_call(fn: Callable[[], object], seconds: float) -> float:
    """µs per call of ``fn``, the best of five rounds (the machine is shared)."""
    best = float("inf")
    for _ in range(5):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 5:
            for _ in range(50):
                fn()
            n += 50
        best = min(best, elapsed / n * 1e6)
    return best


async def per_validation(
    validator: DPoPProofValidator, key: DPoPKey, url: str, token: str, seconds: float
) -> float:
    """µs per ``validate`` of proofs made beforehand (signing is not counted), best of five."""
    best = float("inf")
    for _ in range(5):
        proofs = [key.proof("GET", url, access_token=token) for _ in range(400)]
        n, start = 0, time.perf_counter()
        for proof in proofs:
            await validator.validate(
                proof, method="GET", url=url, access_token=token, jkt=key.thumbprint
            )
            n += 1
            if time.perf_counter() - start > seconds / 5:
                break
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    return best


async def per_token_validation(
    validator: AccessTokenValidator, token: str, seconds: float
) -> float:
    best = float("inf")
    for _ in range(5):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 5:
            for _ in range(50):
                await validator.validate(token)
            n += 50
        best = min(best, elapsed / n * 1e6)
    return best


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="hopshop DPoP cost benchmark")
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=2.0, help="discarded seconds per run")
    ap.add_argument("--concurrency", type=int, default=8, help="keep-alive connections")
    ap.add_argument("--micro-seconds", type=float, default=2.0, help="per micro-benchmark")
    ap.add_argument("--json", type=Path, default=None, metavar="PATH", help="write figures here")
    ap.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
    args = ap.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or args.micro_seconds <= 0 or args.concurrency < 1:
        ap.error("--duration, --micro-seconds and --concurrency must be positive")
    return args


async def run(
    args: argparse.Namespace,
    workdir: Path,
    servers: list[bench_auth.Server],
    valkeys: list[ValkeyServer],
) -> int:
    server_cpu, load_cpu = bench_auth.choose_cpus()
    if server_cpu is not None and load_cpu is not None:
        print(f"pinning: servers -> CPU {server_cpu}; load generator + valkey -> CPU {load_cpu}")
    else:
        print("pinning: none (fewer than 2 usable CPUs)")
    # valkey beside the load generator: the servers' core measures only the services' work.
    with bench_auth.affinity({load_cpu} if load_cpu is not None else None):
        valkey = ValkeyServer(workdir)
    valkeys.append(valkey)

    auth_port = bench_auth.free_port()
    issuer = f"http://127.0.0.1:{auth_port}"
    auth = bench_auth.start_uvicorn(
        "auth",
        "auth_service.app:create_app",
        env_extra={
            "HOPSHOP_ENV": "development",
            "HOPSHOP_ISSUER": issuer,
            "HOPSHOP_REDIS_URL": valkey.url,
            "AUTH_DATABASE_URL": f"sqlite:///{workdir / 'auth.db'}",
        },
        workdir=workdir,
        port=auth_port,
        cpu=server_cpu,
    )
    servers.append(auth)
    async with httpx.AsyncClient(timeout=30.0) as client:
        await bench_auth.wait_ready(client, auth, "/healthz")
        resource_port = bench_auth.free_port()
        resource = bench_auth.start_uvicorn(
            "resource",
            "dpop_app:create_app",
            env_extra={
                "DPOP_BENCH_ISSUER": issuer,
                "DPOP_BENCH_REDIS_URL": valkey.url,
                "DPOP_BENCH_DPOP": "on",
                "DPOP_BENCH_ORIGIN": f"http://127.0.0.1:{resource_port}",
            },
            workdir=workdir,
            port=resource_port,
            cpu=server_cpu,
            app_dir=BENCH_DIR,
        )
        servers.append(resource)
        await bench_auth.wait_ready(client, resource, "/ping")
        jwks = (await client.get(f"{issuer}/jwks")).json()
    if load_cpu is not None:
        os.sched_setaffinity(0, {load_cpu})

    key = DPoPKey.generate()
    token_url = f"{issuer}/token"
    resource_url = f"{resource.base_url}{RESOURCE_PATH}"

    async def get_token(dpop_key: DPoPKey | None) -> str:
        async with httpx.AsyncClient(timeout=30.0) as http:
            endpoint = TokenEndpoint(
                token_url=token_url,
                client_id=BILLING_WORKER[0],
                client_secret=BILLING_WORKER[1],
                http=http,
                dpop_key=dpop_key,
            )
            response = await endpoint.client_credentials(audience="order", scopes=["orders:read"])
        return response.access_token

    def resource_bearer(token: str) -> Scenario:
        request = build_request(
            "GET", RESOURCE_PATH, resource.host_header, {"Authorization": f"Bearer {token}"}
        )

        async def check(status: int, payload: dict[str, Any]) -> None:
            expect("resource bearer", status == 200 and payload.get("jkt") is None, status, payload)

        return Scenario("resource bearer", resource, [request], check)

    def resource_dpop(token: str) -> Scenario:
        def make(_: int) -> bytes:
            proof = key.proof("GET", resource_url, access_token=token)
            headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
            return build_request("GET", RESOURCE_PATH, resource.host_header, headers)

        async def check(status: int, payload: dict[str, Any]) -> None:
            ok = status == 200 and payload.get("jkt") == key.thumbprint
            expect("resource dpop", ok, status, payload)

        return Scenario("resource dpop", resource, make, check)

    form = urlencode({"grant_type": "client_credentials", "audience": "order"}).encode()
    token_headers = {"Content-Type": FORM, "Authorization": bench_auth.basic(*BILLING_WORKER)}

    def token_bearer() -> Scenario:
        request = build_request("POST", "/token", auth.host_header, token_headers, form)

        async def check(status: int, payload: dict[str, Any]) -> None:
            ok = status == 200 and payload.get("token_type") == "Bearer"
            expect("token bearer", ok, status, payload)

        return Scenario("token bearer", auth, [request], check)

    def token_dpop() -> Scenario:
        def make(_: int) -> bytes:
            headers = {**token_headers, "DPoP": key.proof("POST", token_url)}
            return build_request("POST", "/token", auth.host_header, headers, form)

        async def check(status: int, payload: dict[str, Any]) -> None:
            ok = status == 200 and payload.get("token_type") == "DPoP"
            expect("token dpop", ok, status, payload)

        return Scenario("token dpop", auth, make, check)

    rows: list[bench_auth.Row] = []
    cpu_per_request: dict[str, float] = {}
    for build in ("resource bearer", "resource dpop", "token bearer", "token dpop"):
        # Fresh tokens per run: client-credentials tokens live 5 minutes.
        if build == "resource bearer":
            scenario = resource_bearer(await get_token(None))
        elif build == "resource dpop":
            scenario = resource_dpop(await get_token(key))
            # The switch is really on: the very same proof a second time is refused.
            replay = sample(scenario.requests)
            first, _ = await bench_auth.send_raw(resource.port, replay)
            again, _ = await bench_auth.send_raw(resource.port, replay)
            if (first, again) != (200, 401):
                raise bench_auth.BenchError(
                    f"resource dpop: replayed proof got {first} then {again}"
                )
        elif build == "token bearer":
            scenario = token_bearer()
        else:
            scenario = token_dpop()
        await sanity_check(scenario)
        row, cpu_per_request[scenario.name] = await measured(scenario, args)
        rows.append(row)
        for s in servers:
            if s.proc.poll() is not None:
                raise bench_auth.BenchError(
                    f"{s.name} died (code {s.proc.returncode}):\n{s.log_tail()}"
                )

    # In-process costs, on this (the load generator's) core.
    bound = await get_token(key)
    seconds = args.micro_seconds
    sign_us = per_call(lambda: key.proof("GET", resource_url, access_token=bound), seconds)
    memory = DPoPProofValidator(replay_cache=MemoryReplayCache(max_entries=10_000_000))
    verify_us = await per_validation(memory, key, resource_url, bound, seconds)
    async with aioredis.Redis.from_url(valkey.url) as store:
        shared = DPoPProofValidator(replay_cache=RedisReplayCache(store))
        verify_redis_us = await per_validation(shared, key, resource_url, bound, seconds)
    token_validator = AccessTokenValidator(
        issuer=issuer, audience="order", keys=StaticKeySource(jwks)
    )
    token_us = await per_token_validation(token_validator, bound, seconds)

    bench_auth.print_table(rows)
    by_name = {r.scenario: r for r in rows}
    summary: dict[str, Any] = {}
    for what in ("resource", "token"):
        plain, dpop = by_name[f"{what} bearer"], by_name[f"{what} dpop"]
        if plain.rps > 0 and dpop.rps > 0:
            change = (dpop.rps / plain.rps - 1) * 100
            cpu_plain = cpu_per_request[f"{what} bearer"]
            cpu_dpop = cpu_per_request[f"{what} dpop"]
            summary[what] = {
                "req_per_s_change_percent": round(change, 1),
                "server_cpu_us_per_request": {
                    "bearer": round(cpu_plain, 1),
                    "dpop": round(cpu_dpop, 1),
                },
            }
            print(
                f"{what:<8} DPoP {dpop.rps:.0f}/s vs bearer {plain.rps:.0f}/s ({change:+.1f}%); "
                f"server CPU {cpu_dpop:.0f} vs {cpu_plain:.0f} µs per request "
                f"(+{cpu_dpop - cpu_plain:.0f} µs)"
            )
    print(
        f"per proof (one core, best of 5): make {sign_us:.0f} µs; check {verify_us:.0f} µs "
        f"(replay cache in memory), {verify_redis_us:.0f} µs (in valkey, with the round trip); "
        f"access token validation {token_us:.0f} µs"
    )
    load = os.getloadavg()[0]
    print(f"cpu: {bench_auth.cpu_model()}, {os.cpu_count()} cores; load average {load:.2f}")
    failed = [r for r in rows if r.error_count]
    if failed:
        print(
            "errors during measurement: " + "; ".join(f"{r.scenario}: {r.errors}" for r in failed)
        )

    if args.json is not None:
        report = {
            "results": [r.as_json() for r in rows],
            "dpop_vs_bearer": summary,
            "per_proof_us": {
                "make": round(sign_us, 1),
                "check_memory_replay_cache": round(verify_us, 1),
                "check_valkey_replay_cache": round(verify_redis_us, 1),
                "access_token_validation": round(token_us, 1),
            },
            "settings": {
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "concurrency": args.concurrency,
                "uvicorn": "1 worker, --loop uvloop --http httptools, --no-access-log",
            },
        }
        bench_auth.write_report(args.json, report, server_cpu, load_cpu)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    valkeys: list[ValkeyServer] = []

    def stop_valkeys() -> None:
        for valkey in valkeys:
            with contextlib.suppress(Exception):
                valkey.stop()

    return bench_auth.run_bench(
        "bench-dpop",
        args.keep_logs,
        lambda workdir, servers: run(args, workdir, servers, valkeys),
        cleanup=stop_valkeys,
    )


if __name__ == "__main__":
    sys.exit(main())
