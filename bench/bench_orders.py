"""Order-placement benchmark through the gateway (``make bench-orders``).

Places orders with ``POST /api/orders`` at a fixed target rate (open loop: sends are scheduled
at ``i / rate`` whatever the responses do, with at most ``--concurrency`` in flight) for the
demo customers alice, bob and carol, spread over every product in stock, 1 unit each, card
4242424242424242. It reports orders/s, p50/p95/p99 latency of the POST, errors by status, the
time until ``CONFIRMED`` for a sample of the orders (polled with ``GET /api/orders/{id}``), and
the gateway's exchange-cache hit rate over the run (``GET /stats`` before and after), and,
when the stack runs on this machine, the CPU time each process spent per order.

Targets (issue 3, 2-core machine): p95 of order placement < 50 ms at 100 orders/s, and an
exchange-cache hit rate > 80%. Not meeting them is a result: the exit code is non-zero only
when something broke (start-up, login, a wrong response, every order failing).

By default a stack is started in a temp state dir on free ports (``python -m hopshop_stack up
-d``) with a high per-user rate limit, and stopped at the end, also on Ctrl-C. With
``--state-dir DIR`` or ``--gateway-url URL`` (+ ``--auth-url``) a running stack is used.

    uv run python bench/bench_orders.py --duration 10 --json var/bench-orders.json
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
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlsplit

import httpx
import uvloop
from hopkit.outgoing import async_client
from hopkit.testing import free_ports

TARGET_RATE = 100.0
TARGET_P95_MS = 50.0
TARGET_HIT_RATE = 0.80
TARGET_PLACEMENT = f"p95 placement < {TARGET_P95_MS:.0f} ms at {TARGET_RATE:.0f} orders/s"
TARGET_CACHE = f"exchange-cache hit rate > {TARGET_HIT_RATE:.0%}"

CUSTOMERS = ("alice", "bob", "carol")  # demo realm; carol (support staff) may order too
SCOPES = "orders:read orders:write"
REDIRECT_URI = "http://127.0.0.1:8000/callback"
CARD = "4242424242424242"
COMPONENTS = ("valkey", "kafka", "auth", "inventory", "order", "billing", "notification", "gateway")
# ORDER_MAX_OPEN_ORDERS and ORDER_MAX_OPEN_UNITS of the stack the bench starts: out of the way.
OPEN_ORDER_LIMIT = 1_000_000
STACK_UP_TIMEOUT = 300.0
STACK_DOWN_TIMEOUT = 120.0


class BenchError(Exception):
    """Something broke (as opposed to: a target was not met)."""


# --------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    gateway: str
    auth: str
    started: bool  # by us: stop it at the end
    state_dir: Path | None
    env: dict[str, str] = field(default_factory=dict)
    note: str = ""


def stack_urls(state_dir: Path) -> tuple[str, str]:
    """(gateway, auth) base URLs from a running stack's ``stack.json``."""
    path = state_dir / "stack.json"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BenchError(f"cannot read {path}: {exc} (is a stack running there?)") from exc
    urls = {c.get("name"): c.get("address") for c in state.get("components", [])}
    if not urls.get("gateway") or not urls.get("auth"):
        raise BenchError(f"{path} lists no gateway or auth service")
    return str(urls["gateway"]).rstrip("/"), str(urls["auth"]).rstrip("/")


def run_stack_command(args: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    """``python -m hopshop_stack ARGS`` in its own session (Ctrl-C reaches only us)."""
    with subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-m", "hopshop_stack", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        return proc.returncode, out


def start_stack(state_dir: Path, rate_limit: int, seed_stock: int) -> Stack:
    ports = free_ports(COMPONENTS)
    env = {
        **os.environ,
        **{f"HOPSHOP_PORT_{name.upper()}": str(port) for name, port in ports.items()},
        # Three customers share the load: ~rate/3 requests per user per second, plus polls.
        "GATEWAY_RATE_LIMIT": str(rate_limit),
        "GATEWAY_RATE_WINDOW": "1",
        # The demo's 683 units last ~7 s at 100 orders/s; this many per product last the run.
        "INVENTORY_SEED_STOCK": str(seed_stock),
        # Order's limit on one customer's unpaid orders (5 orders, 50 units by default): at
        # 100 orders/s from three customers, with confirmation seconds behind, hundreds of
        # each customer's orders are unpaid at once.
        "ORDER_MAX_OPEN_ORDERS": str(OPEN_ORDER_LIMIT),
        "ORDER_MAX_OPEN_UNITS": str(OPEN_ORDER_LIMIT),
    }
    print(f"starting a stack in {state_dir} ...", flush=True)
    t0 = time.monotonic()
    code, out = run_stack_command(
        ["up", "-d", "--state-dir", str(state_dir), "--timeout", "90"], env, STACK_UP_TIMEOUT
    )
    if code != 0:
        raise BenchError(f"hopshop up failed (exit {code}):\n{out[-4000:]}")
    gateway, auth = stack_urls(state_dir)
    print(f"stack up in {time.monotonic() - t0:.1f} s", flush=True)
    return Stack(
        gateway=gateway,
        auth=auth,
        started=True,
        state_dir=state_dir,
        env=env,
        note=(
            f"started by the bench, GATEWAY_RATE_LIMIT={rate_limit}/1 s, "
            f"INVENTORY_SEED_STOCK={seed_stock}, ORDER_MAX_OPEN_ORDERS/UNITS={OPEN_ORDER_LIMIT}"
        ),
    )


def stop_stack(stack: Stack) -> None:
    assert stack.state_dir is not None
    code, out = run_stack_command(
        ["down", "--state-dir", str(stack.state_dir)], stack.env, STACK_DOWN_TIMEOUT
    )
    if code != 0:
        print(f"bench-orders: hopshop down exited {code}:\n{out[-2000:]}", file=sys.stderr)


# --------------------------------------------------------------------------- login


def _expect(cond: bool, what: str, response: httpx.Response) -> None:
    if not cond:
        raise BenchError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")


async def login(auth_url: str, username: str) -> str:
    """The user's access token via authorization code + PKCE through the login form."""
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    state = secrets.token_urlsafe(16)
    params = {
        "response_type": "code",
        "client_id": "web",
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPES,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    async with httpx.AsyncClient(base_url=auth_url, timeout=15) as auth:
        page = await auth.get("/authorize", params=params)
        _expect(page.status_code == 200, f"{username}: GET /authorize", page)
        form = {"username": username, "password": f"{username}-dev-password"}
        redirect = await auth.post("/authorize", params=params, data=form)
        _expect(redirect.status_code == 302, f"{username}: POST /authorize (login)", redirect)
        query = parse_qs(urlsplit(redirect.headers.get("location", "")).query)
        _expect(
            query.get("state") == [state] and len(query.get("code", [])) == 1,
            f"{username}: login redirect {redirect.headers.get('location')!r}",
            redirect,
        )
        token = await auth.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": REDIRECT_URI,
                "client_id": "web",
                "code_verifier": verifier,
            },
        )
        _expect(token.status_code == 200, f"{username}: POST /token", token)
        access_token = token.json().get("access_token")
        _expect(isinstance(access_token, str) and bool(access_token), "no access_token", token)
        assert isinstance(access_token, str)
        return access_token


# --------------------------------------------------------------------------- measuring


def percentile(data: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (``nan`` when empty)."""
    if not data:
        return math.nan
    ordered = sorted(data)
    return ordered[max(math.ceil(p / 100 * len(ordered)), 1) - 1]


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


@dataclass
class Run:
    placed: int = 0  # 201 in the measured window
    placed_all: int = 0  # 201 including the warm-up
    polls: int = 0  # GET /api/orders/{id} sent while waiting for confirmations
    latencies: list[float] = field(default_factory=list)  # s, measured window
    errors: dict[str, int] = field(default_factory=dict)  # measured window
    warmup_errors: dict[str, int] = field(default_factory=dict)
    start_lags: list[float] = field(default_factory=list)  # s, actual send - scheduled send
    measure_start: float = 0.0
    measure_end: float = 0.0  # last measured response
    confirm: list[float] = field(default_factory=list)  # s, POST start -> seen CONFIRMED
    confirm_server: list[float] = field(default_factory=list)  # s, updated_at - created_at
    confirm_other: dict[str, int] = field(default_factory=dict)  # CANCELLED, timeout, errors
    sampled: int = 0


async def stats(client: httpx.AsyncClient) -> tuple[int, int]:
    response = await client.get("/stats")
    _expect(response.status_code == 200, "GET /stats", response)
    cache = response.json().get("token_exchange", {})
    hits, misses = cache.get("hits"), cache.get("misses")
    if not isinstance(hits, int) or not isinstance(misses, int):
        raise BenchError(f"GET /stats: unexpected body {response.text[:300]}")
    return hits, misses


async def products(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/api/products")
    _expect(response.status_code == 200, "GET /api/products", response)
    items = response.json()
    if not isinstance(items, list):
        raise BenchError(f"GET /api/products: expected a list, got {response.text[:300]}")
    return [p for p in items if isinstance(p, dict)]


def order_body(product_id: int) -> dict[str, Any]:
    return {"items": [{"product_id": product_id, "quantity": 1}], "card": CARD}


async def poll_confirmation(
    client: httpx.AsyncClient,
    token: str,
    order_id: str,
    sent: float,
    run: Run,
    interval: float,
    give_up_after: float,
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    deadline = sent + give_up_after
    outcome = "timeout"
    while time.perf_counter() < deadline:
        await asyncio.sleep(interval)
        run.polls += 1
        try:
            response = await client.get(f"/api/orders/{order_id}", headers=headers)
        except httpx.HTTPError as exc:
            outcome = f"poll {type(exc).__name__}"
            continue
        seen = time.perf_counter()
        if response.status_code != 200:
            outcome = f"poll HTTP {response.status_code}"
            continue
        order = response.json()
        status = order.get("status")
        if status == "PENDING_PAYMENT":
            continue
        if status == "CONFIRMED":
            run.confirm.append(seen - sent)
            created, updated = (
                parse_time(order.get("created_at")),
                parse_time(order.get("updated_at")),
            )
            if created and updated:
                run.confirm_server.append((updated - created).total_seconds())
            return
        outcome = str(status)
        break
    run.confirm_other[outcome] = run.confirm_other.get(outcome, 0) + 1


async def place(
    client: httpx.AsyncClient,
    poller: httpx.AsyncClient,
    i: int,
    token: str,
    product_id: int,
    measured: bool,
    sample: bool,
    run: Run,
    args: argparse.Namespace,
    polls: list[asyncio.Task[None]],
) -> None:
    errors = run.errors if measured else run.warmup_errors
    sent = time.perf_counter()
    try:
        response = await client.post(
            "/api/orders", json=order_body(product_id), headers={"Authorization": f"Bearer {token}"}
        )
    except httpx.HTTPError as exc:
        key = type(exc).__name__
        errors[key] = errors.get(key, 0) + 1
        return
    done = time.perf_counter()
    if response.status_code != 201:
        key = str(response.status_code)
        errors[key] = errors.get(key, 0) + 1
        return
    order_id = response.json().get("id")
    if not isinstance(order_id, str):
        raise BenchError(f"POST /api/orders: 201 without an id: {response.text[:300]}")
    run.placed_all += 1
    if measured:
        run.placed += 1
        run.latencies.append(done - sent)
        run.measure_end = max(run.measure_end, done)
        if sample:
            run.sampled += 1
            polls.append(
                asyncio.create_task(
                    poll_confirmation(
                        poller, token, order_id, sent, run, args.poll_interval, args.confirm_timeout
                    )
                )
            )


async def drive(
    gateway: str,
    tokens: list[str],
    slots: list[int],
    n_warmup: int,
    args: argparse.Namespace,
    run: Run,
) -> None:
    # The bench shares the cores with the stack: its clients are the services' own
    # (hopkit.outgoing, aiohttp underneath), the cheapest for the caller.
    limits = httpx.Limits(
        max_connections=args.concurrency,
        max_keepalive_connections=args.concurrency,
        keepalive_expiry=2.0,
    )
    poll_limits = httpx.Limits(
        max_connections=32, max_keepalive_connections=32, keepalive_expiry=2.0
    )
    timeout = httpx.Timeout(30.0)
    async with (
        async_client(base_url=gateway, limits=limits, timeout=timeout) as client,
        async_client(base_url=gateway, limits=poll_limits, timeout=timeout) as poller,
    ):
        slots_free = asyncio.Semaphore(args.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        polls: list[asyncio.Task[None]] = []
        failures: list[BaseException] = []

        def finished(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            slots_free.release()
            if not task.cancelled() and task.exception() is not None:
                failures.append(task.exception())  # type: ignore[arg-type]

        start = time.perf_counter() + 0.05
        for i, product_id in enumerate(slots):
            if failures:
                break
            scheduled = start + i / args.rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots_free.acquire()
            measured = i >= n_warmup
            if i == n_warmup:
                run.measure_start = scheduled
            if measured:
                run.start_lags.append(time.perf_counter() - scheduled)
            k = i - n_warmup
            task = asyncio.create_task(
                place(
                    client,
                    poller,
                    i,
                    tokens[i % len(tokens)],
                    product_id,
                    measured,
                    measured and k % args.confirm_sample == 0,
                    run,
                    args,
                    polls,
                )
            )
            tasks.add(task)
            task.add_done_callback(finished)
        if tasks:
            await asyncio.wait(tasks)
        if failures:
            for t in polls:
                t.cancel()
            raise failures[0]
        if polls:
            await asyncio.gather(*polls)


# --------------------------------------------------------------------------- CPU per process

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def stack_pids(state_dir: Path) -> dict[str, int]:
    """Component name -> pid from a local stack's ``stack.json`` ({} when unreadable)."""
    try:
        state = json.loads((state_dir / "stack.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {
        str(c["name"]): int(c["pid"])
        for c in state.get("components", [])
        if isinstance(c.get("pid"), int) and c.get("name")
    }


def cpu_times(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system, all threads) each process has used; gone ones left out."""
    times: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            # proc(5): fields 14 and 15 (utime, stime); the name in brackets may hold spaces.
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            times[name] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        except (OSError, IndexError, ValueError):
            continue
    return times


def cpu_rate(before: dict[str, float], after: dict[str, float], seconds: float) -> float:
    """Cores busy on average between two readings."""
    used = sum(after[k] - before[k] for k in after if k in before)
    return used / seconds if seconds > 0 else math.nan


async def idle_rate(pids: dict[str, int], seconds: float = 1.0) -> float:
    before, t0 = cpu_times(pids), time.monotonic()
    await asyncio.sleep(seconds)
    return cpu_rate(before, cpu_times(pids), time.monotonic() - t0)


async def settle(pids: dict[str, int], idle: float, limit: float) -> float:
    """Wait until the stack is back near idle (events worked off); the seconds waited.

    Payments, confirmations and notifications run after the POST returned; their CPU
    belongs to the orders, so the CPU reading waits for them (at most ``limit`` s).
    """
    threshold = max(0.1, 2 * idle)
    t0 = time.monotonic()
    before, t = cpu_times(pids), t0
    while time.monotonic() - t0 < limit:
        await asyncio.sleep(0.5)
        after, now = cpu_times(pids), time.monotonic()
        if cpu_rate(before, after, now - t) < threshold:
            break
        before, t = after, now
    return time.monotonic() - t0


@dataclass
class CpuReading:
    per_order_ms: dict[str, float]  # component -> CPU ms per order placed
    orders: int  # 201s (warm-up included) the CPU is divided by
    busy_cores: float  # average over the load (POSTs and polls)
    idle_cores: float  # before the load
    settled_s: float  # waited after the load for the stack to go idle
    elapsed_s: float  # the whole reading: load and settling

    @property
    def total_ms(self) -> float:
        return sum(self.per_order_ms.values())

    @property
    def above_idle_ms(self) -> float:
        """What the orders themselves cost: the total less what the idle stack burns anyway."""
        return self.total_ms - self.idle_cores * self.elapsed_s * 1000 / self.orders


# --------------------------------------------------------------------------- reporting


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def ms(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x * 1000:.1f} ms"


def counts(d: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(d.items())) if d else "none"


def num(x: float, digits: int = 3) -> float | None:
    return None if math.isnan(x) else round(x, digits)


async def bench(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    gateway = stack.gateway
    pids = stack_pids(stack.state_dir) if stack.state_dir is not None else {}
    # Before anything of ours runs: what the stack burns with nothing to do (pollers).
    idle = await idle_rate(pids, 1.5) if pids else math.nan
    async with async_client(base_url=gateway, timeout=15) as client:
        print(f"logging in {', '.join(CUSTOMERS)} ...", flush=True)
        tokens = list(await asyncio.gather(*(login(stack.auth, u) for u in CUSTOMERS)))
        catalogue = await products(client)
        stock = {
            int(p["id"]): int(p["available"])
            for p in catalogue
            if isinstance(p.get("id"), int) and isinstance(p.get("available"), int)
        }
        in_stock = {pid: n for pid, n in stock.items() if n > 0}
        total_stock = sum(in_stock.values())
        if total_stock < 2:
            raise BenchError(f"no stock left to order from: {stock}")
        # One sanity order: the flow works end to end before the clock starts.
        first = min(in_stock, key=lambda pid: -in_stock[pid])
        response = await client.post(
            "/api/orders",
            json=order_body(first),
            headers={"Authorization": f"Bearer {tokens[0]}"},
        )
        _expect(
            response.status_code == 201
            and response.json().get("status") in ("PENDING_PAYMENT", "CONFIRMED"),
            "sanity POST /api/orders",
            response,
        )
        in_stock[first] -= 1
        total_stock -= 1
        hits0, misses0 = await stats(client)
        # DPoP on or off (HOPSHOP_DPOP, RFC 9449): the figures depend on it.
        dpop = (await client.get("/stats")).json().get("dpop")

        # Every unit in stock is one slot; shuffled so that products are spread over the run
        # in proportion to their stock and none runs out early.
        slots = [pid for pid, n in in_stock.items() for _ in range(n)]
        random.Random(7).shuffle(slots)  # noqa: S311 - not cryptographic
        n_warmup = math.ceil(args.warmup * args.rate)
        n_wanted = n_warmup + math.ceil(args.duration * args.rate)
        stock_note = ""
        if n_wanted > len(slots):
            measured_n = len(slots) - n_warmup
            if measured_n < max(10, args.rate):  # less than a second of load
                raise BenchError(
                    f"only {len(slots)} units in stock: not enough for {args.rate:g} orders/s "
                    "(start a fresh stack, or use more products)"
                )
            stock_note = (
                f"stock limits the run: {len(slots)} units in stock over {len(in_stock)} "
                f"products, so {measured_n} measured orders ({measured_n / args.rate:.1f} s at "
                f"{args.rate:g}/s) instead of {args.duration:g} s"
            )
        slots = slots[:n_wanted]

        print(
            f"placing {len(slots)} orders at {args.rate:g}/s "
            f"({n_warmup} warm-up), up to {args.concurrency} in flight ...",
            flush=True,
        )
        run = Run()
        cpu0, t0 = cpu_times(pids), time.monotonic()
        await drive(gateway, tokens, slots, n_warmup, args, run)
        cpu_run, t_run = cpu_times(pids), time.monotonic()
        hits1, misses1 = await stats(client)
        cpu: CpuReading | None = None
        if pids and run.placed_all:
            print("waiting for the stack to work off the events ...", flush=True)
            settled = await settle(pids, idle, args.settle_timeout)
            cpu1 = cpu_times(pids)
            cpu = CpuReading(
                per_order_ms={
                    name: (cpu1[name] - cpu0[name]) * 1000 / run.placed_all
                    for name in cpu1
                    if name in cpu0
                },
                orders=run.placed_all,
                busy_cores=cpu_rate(cpu0, cpu_run, t_run - t0),
                idle_cores=idle,
                settled_s=settled,
                elapsed_s=time.monotonic() - t0,
            )

    if run.placed == 0:
        raise BenchError(f"no order was placed; errors: {counts(run.errors)}")
    hits, misses = hits1 - hits0, misses1 - misses0
    hit_rate = hits / (hits + misses) if hits + misses else math.nan
    window = run.measure_end - run.measure_start
    rate = run.placed / window if window > 0 else math.nan
    attempted = len(slots) - n_warmup
    error_count = sum(run.errors.values())
    p50, p95, p99 = (percentile(run.latencies, p) for p in (50, 95, 99))
    placement_met = (
        args.rate >= TARGET_RATE
        and rate >= 0.95 * TARGET_RATE
        and error_count == 0
        and p95 < TARGET_P95_MS / 1000
    )
    cache_met = not math.isnan(hit_rate) and hit_rate > TARGET_HIT_RATE
    return {
        "gateway": gateway,
        "dpop": dpop,
        "stack": stack.note,
        "stock_note": stock_note,
        "stock_units": total_stock,
        "products": len(in_stock),
        "offered_rate": args.rate,
        "attempted": attempted,
        "placed": run.placed,
        "window_s": window,
        "orders_per_s": rate,
        "errors": dict(sorted(run.errors.items())),
        "warmup_errors": dict(sorted(run.warmup_errors.items())),
        "p50": p50,
        "p95": p95,
        "p99": p99,
        "lag_p99": percentile(run.start_lags, 99),
        "lag_max": max(run.start_lags, default=math.nan),
        "sampled": run.sampled,
        "confirm_n": len(run.confirm),
        "confirm_p50": percentile(run.confirm, 50),
        "confirm_p95": percentile(run.confirm, 95),
        "confirm_server_p50": percentile(run.confirm_server, 50),
        "confirm_server_p95": percentile(run.confirm_server, 95),
        "confirm_other": dict(sorted(run.confirm_other.items())),
        "hits": hits,
        "misses": misses,
        "hit_rate": hit_rate,
        "placement_met": placement_met,
        "cache_met": cache_met,
        "polls": run.polls,
        "placed_all": run.placed_all,
        "cpu": cpu,
    }


def report(r: dict[str, Any], args: argparse.Namespace) -> None:
    cores = os.cpu_count() or 0
    hit = "n/a" if math.isnan(r["hit_rate"]) else f"{r['hit_rate']:.1%}"
    rows = [
        ("offered rate", f"{r['offered_rate']:g} orders/s, up to {args.concurrency} in flight"),
        ("orders placed (201)", f"{r['placed']} of {r['attempted']} in {r['window_s']:.2f} s"),
        ("orders/s", f"{r['orders_per_s']:.1f}"),
        ("errors", f"{sum(r['errors'].values())} ({counts(r['errors'])})"),
        ("POST /api/orders p50", ms(r["p50"])),
        ("POST /api/orders p95", ms(r["p95"])),
        ("POST /api/orders p99", ms(r["p99"])),
        ("send lag p99 / max", f"{ms(r['lag_p99'])} / {ms(r['lag_max'])}"),
        (
            "until CONFIRMED p50",
            f"{ms(r['confirm_p50'])} (server {ms(r['confirm_server_p50'])})",
        ),
        (
            "until CONFIRMED p95",
            f"{ms(r['confirm_p95'])} (server {ms(r['confirm_server_p95'])})",
        ),
        (
            "confirmations sampled",
            f"{r['confirm_n']} CONFIRMED of {r['sampled']} (every {args.confirm_sample}th; "
            f"other: {counts(r['confirm_other'])})",
        ),
        (
            "exchange cache",
            f"{hit} hit rate ({r['hits']} hits, {r['misses']} misses during the run)",
        ),
    ]
    cpu: CpuReading | None = r["cpu"]
    if cpu is not None:
        rows += [
            (
                "CPU ms per order",
                f"{cpu.total_ms:.1f}, {cpu.above_idle_ms:.1f} above idle (all processes; "
                f"{cpu.orders} orders incl. warm-up, "
                f"{r['polls'] / max(r['placed_all'], 1):.2f} polls per order)",
            ),
            *(
                (f"  {name}", f"{value:.1f}")
                for name, value in sorted(cpu.per_order_ms.items(), key=lambda kv: -kv[1])
            ),
            (
                "stack CPU during the load",
                f"{cpu.busy_cores:.2f} of {cores} cores (idle before: {cpu.idle_cores:.2f}; "
                f"settled {cpu.settled_s:.1f} s after)",
            ),
        ]
    width = max(len(k) for k, _ in rows)
    print()
    print(f"gateway  {r['gateway']} ({r['stack']})")
    print(f"DPoP     {({True: 'on', False: 'off'}).get(r['dpop'], 'unknown')}")
    print(f"stock    {r['stock_units']} units over {r['products']} products")
    if r["stock_note"]:
        print(f"note     {r['stock_note']}")
    if r["warmup_errors"]:
        print(f"note     warm-up errors: {counts(r['warmup_errors'])}")
    if "429" in r["errors"]:
        print("note     429s: the gateway's per-user rate limit (GATEWAY_RATE_LIMIT) is too low")
    if "409" in r["errors"]:
        print(
            "note     409s: stock ran out, or order's limit on a customer's unpaid orders "
            "(ORDER_MAX_OPEN_ORDERS, ORDER_MAX_OPEN_UNITS) is too low"
        )
    print()
    print(f"{'metric'.ljust(width)}  value")
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    print()
    placement = "MET" if r["placement_met"] else "NOT MET"
    if not r["placement_met"]:
        placement += (
            f" (p95 {ms(r['p95'])} at {r['orders_per_s']:.1f} orders/s, "
            f"{sum(r['errors'].values())} errors)"
        )
    cache = "MET" if r["cache_met"] else f"NOT MET ({hit})"
    print(f"target: {TARGET_PLACEMENT}: {placement}")
    print(f"target: {TARGET_CACHE}: {cache}")
    print(f"cpu: {cpu_model()} ({cores} cores), Python {platform.python_version()}")


def cpu_json(cpu: CpuReading | None, polls: int) -> dict[str, Any] | None:
    if cpu is None:
        return None
    return {
        "ms_per_order": {name: round(v, 2) for name, v in sorted(cpu.per_order_ms.items())},
        "total_ms_per_order": round(cpu.total_ms, 2),
        "above_idle_ms_per_order": num(cpu.above_idle_ms, 2),
        "orders": cpu.orders,
        "polls_per_order": round(polls / max(cpu.orders, 1), 3),
        "busy_cores": num(cpu.busy_cores),
        "idle_cores": num(cpu.idle_cores),
        "settled_s": round(cpu.settled_s, 1),
    }


def write_json(path: Path, r: dict[str, Any], args: argparse.Namespace) -> None:
    doc = {
        "benchmark": "orders",
        "gateway": r["gateway"],
        "stack": r["stack"],
        "offered_rate_per_s": args.rate,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "concurrency": args.concurrency,
        "stock": {"units": r["stock_units"], "products": r["products"], "note": r["stock_note"]},
        "placement": {
            "attempted": r["attempted"],
            "placed": r["placed"],
            "window_s": num(r["window_s"]),
            "orders_per_s": num(r["orders_per_s"], 2),
            "p50_ms": num(r["p50"] * 1000),
            "p95_ms": num(r["p95"] * 1000),
            "p99_ms": num(r["p99"] * 1000),
            "errors": r["errors"],
            "warmup_errors": r["warmup_errors"],
            "send_lag_p99_ms": num(r["lag_p99"] * 1000),
            "send_lag_max_ms": num(r["lag_max"] * 1000),
        },
        "confirmation": {
            "sample_every": args.confirm_sample,
            "poll_interval_s": args.poll_interval,
            "sampled": r["sampled"],
            "confirmed": r["confirm_n"],
            "other": r["confirm_other"],
            "p50_ms": num(r["confirm_p50"] * 1000),
            "p95_ms": num(r["confirm_p95"] * 1000),
            "server_p50_ms": num(r["confirm_server_p50"] * 1000),
            "server_p95_ms": num(r["confirm_server_p95"] * 1000),
        },
        "exchange_cache": {
            "hits": r["hits"],
            "misses": r["misses"],
            "hit_rate": num(r["hit_rate"], 4),
        },
        "cpu": cpu_json(r["cpu"], r["polls"]),
        "targets": {
            TARGET_PLACEMENT: r["placement_met"],
            TARGET_CACHE: r["cache_met"],
        },
        "machine": {
            "cpu_model": cpu_model(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {path}")


# --------------------------------------------------------------------------- main


def positive(kind: type[float] | type[int]) -> Any:
    def parse(text: str) -> float | int:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rate", type=positive(float), default=TARGET_RATE, help="orders/s offered")
    ap.add_argument("--duration", type=positive(float), default=20.0, help="measured seconds")
    ap.add_argument(
        "--warmup", type=float, default=0.5, help="seconds of load before measuring (default 0.5)"
    )
    ap.add_argument("--concurrency", type=positive(int), default=64, help="max orders in flight")
    ap.add_argument(
        "--confirm-sample", type=positive(int), default=10, help="poll every Nth order (10)"
    )
    ap.add_argument("--poll-interval", type=positive(float), default=0.05, help="seconds (0.05)")
    ap.add_argument("--confirm-timeout", type=positive(float), default=60.0, help="seconds (60)")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--state-dir", type=Path, help="use the stack running in this state dir")
    where.add_argument("--gateway-url", help="use the gateway at this URL (with --auth-url)")
    ap.add_argument("--auth-url", default="http://127.0.0.1:8001", help="with --gateway-url")
    ap.add_argument(
        "--rate-limit",
        type=positive(int),
        default=100_000,
        help="GATEWAY_RATE_LIMIT per second for the stack the bench starts",
    )
    ap.add_argument(
        "--seed-stock",
        type=positive(int),
        default=100_000,
        help="units of each demo product in the stack the bench starts (INVENTORY_SEED_STOCK)",
    )
    ap.add_argument(
        "--settle-timeout",
        type=positive(float),
        default=60.0,
        help="seconds to wait for the stack to go idle before reading CPU times (60)",
    )
    ap.add_argument("--keep-logs", action="store_true", help="keep the started stack's state dir")
    ap.add_argument("--json", type=Path, help="write the figures here")
    return ap.parse_args(argv)


def _raise_interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stack: Stack | None = None
    own_dir: Path | None = None
    ok = False
    try:
        if args.gateway_url:
            stack = Stack(
                args.gateway_url.rstrip("/"),
                args.auth_url.rstrip("/"),
                started=False,
                state_dir=None,
                note="running stack",
            )
        elif args.state_dir:
            gateway, auth = stack_urls(args.state_dir)
            stack = Stack(gateway, auth, False, args.state_dir, note=f"running, {args.state_dir}")
        else:
            own_dir = Path(tempfile.mkdtemp(prefix="bench-orders-"))
            # Registered before `up`, so that an interrupted start-up is still cleaned up.
            stack = Stack("", "", True, own_dir, env=dict(os.environ))
            stack = start_stack(own_dir, args.rate_limit, args.seed_stock)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(bench(args, stack))
        report(result, args)
        if args.json:
            write_json(args.json, result, args)
        ok = True
        return 0
    except BenchError as exc:
        print(f"bench-orders: FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench-orders: interrupted", file=sys.stderr)
        return 130
    finally:
        if stack is not None and stack.started:
            try:
                stop_stack(stack)
            except BaseException as exc:
                print(f"bench-orders: could not stop the stack: {exc!r}", file=sys.stderr)
        if own_dir is not None:
            if ok and not args.keep_logs:
                shutil.rmtree(own_dir, ignore_errors=True)
            else:
                print(f"stack state and logs kept in {own_dir}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
