"""Small, low-overhead HTTP/1.1 keep-alive load generator (stdlib asyncio, uvloop if present).

Library use::

    reqs = [build_request("GET", "/health", "127.0.0.1:8000", None, None)]
    result = await run_load(host="127.0.0.1", port=8000, requests=reqs,
                            concurrency=64, duration=10.0)
    print(result.summary_line("health"))

CLI::

    uv run python bench/loadgen.py --url http://127.0.0.1:8000/health -c 64 -d 10
    uv run python bench/loadgen.py --url http://127.0.0.1:8000/token -X POST \\
        -H 'Authorization: Basic ...' --data 'grant_type=client_credentials'
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit

__all__ = ["LoadResult", "build_request", "main", "run_load"]

RequestSource = Sequence[bytes] | Callable[[int], bytes]

_HEAD_END = b"\r\n\r\n"
_CRLF = b"\r\n"
_CL = b"\r\ncontent-length:"
_TE = b"\r\ntransfer-encoding:"
_CONN = b"\r\nconnection:"
_RECONNECT_BACKOFF = 0.01  # seconds; avoids a hot spin when the server refuses connections


class _ServerClosed(Exception):
    """The server closed the connection (cleanly, or mid-response)."""


@dataclass
class LoadResult:
    """Outcome of one measured window.

    ``requests`` counts 2xx responses completed inside the measured window; ``latencies``
    holds their latencies in seconds. Non-2xx responses are not counted as requests: they
    go to ``errors`` keyed by status code (``int``), and connection/protocol failures are
    keyed by exception class name (``str``).
    """

    requests: int
    errors: dict[int | str, int]
    elapsed: float
    latencies: list[float] = field(repr=False)

    @property
    def throughput(self) -> float:
        """Successful (2xx) requests per second over the measured window."""
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @cached_property
    def _sorted(self) -> list[float]:
        return sorted(self.latencies)

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of latencies, in seconds (``nan`` if there are none)."""
        data = self._sorted
        if not data:
            return math.nan
        if not 0 <= p <= 100:
            raise ValueError(f"percentile must be within [0, 100], got {p}")
        rank = math.ceil(p / 100 * len(data))
        return data[max(rank, 1) - 1]

    def summary_line(self, label: str) -> str:
        p50, p95, p99 = (self.percentile(p) * 1000 for p in (50, 95, 99))
        return (
            f"{label:<24} {self.throughput:>9.1f} req/s  p50 {p50:>7.2f} ms  "
            f"p95 {p95:>7.2f} ms  p99 {p99:>7.2f} ms  errors {self.error_count}"
        )


def build_request(
    method: str,
    path: str,
    host: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> bytes:
    """Serialize a keep-alive HTTP/1.1 request.

    ``host`` is the Host header value (include ``:port`` when it is not 80). Host,
    Content-Length and Connection are added unless ``headers`` already sets them.
    """
    method = method.upper()
    hdrs = dict(headers or {})
    present = {k.lower() for k in hdrs}
    lines = [f"{method} {path} HTTP/1.1"]
    if "host" not in present:
        lines.append(f"Host: {host}")
    lines.extend(f"{k}: {v}" for k, v in hdrs.items())
    if "content-length" not in present and (body is not None or method in ("POST", "PUT", "PATCH")):
        lines.append(f"Content-Length: {len(body or b'')}")
    if "connection" not in present:
        lines.append("Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


async def _read_chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size_line = await reader.readuntil(_CRLF)
        size = int(size_line.split(b";", 1)[0], 16)
        if size == 0:
            # Trailers (usually none) end with an empty line.
            while await reader.readuntil(_CRLF) != _CRLF:
                pass
            return
        await reader.readexactly(size + 2)  # chunk data + CRLF


async def _read_response(reader: asyncio.StreamReader, no_body: bool) -> tuple[int, bool]:
    """Read one full response. Returns (status, keep_alive)."""
    try:
        head = await reader.readuntil(_HEAD_END)
    except asyncio.IncompleteReadError as exc:
        raise _ServerClosed from exc
    status = int(head[9:12])
    low = head.lower()
    keep_alive = True
    i = low.find(_CONN)
    if i >= 0 and b"close" in low[i + len(_CONN) : low.find(_CRLF, i + 2)]:
        keep_alive = False
    if no_body or status in (204, 304) or 100 <= status < 200:
        return status, keep_alive
    i = low.find(_CL)
    if i >= 0:
        j = low.find(_CRLF, i + len(_CL))
        length = int(low[i + len(_CL) : j])
        if length:
            await reader.readexactly(length)
        return status, keep_alive
    i = low.find(_TE)
    if i >= 0 and b"chunked" in low[i : low.find(_CRLF, i + 2)]:
        await _read_chunked(reader)
        return status, keep_alive
    # No framing: body is delimited by connection close.
    await reader.read()
    return status, False


class _Shared:
    """State shared by all connection workers of one run (single event loop, no locks)."""

    __slots__ = ("counter", "errors", "latencies", "measure_end", "measure_start", "requests")

    def __init__(self, measure_start: float, measure_end: float) -> None:
        self.counter = 0
        self.requests = 0
        self.latencies: list[float] = []
        self.errors: dict[int | str, int] = {}
        self.measure_start = measure_start
        self.measure_end = measure_end


def _cycler(seq: Sequence[bytes]) -> Callable[[int], bytes]:
    n = len(seq)

    def make(k: int) -> bytes:
        return seq[k % n]

    return make


async def _worker(host: str, port: int, source: RequestSource, st: _Shared) -> None:
    clock = time.perf_counter
    make = source if callable(source) else _cycler(source)
    record = st.latencies.append
    errors = st.errors
    measure_start = st.measure_start
    measure_end = st.measure_end

    while clock() < measure_end:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            if clock() >= measure_start:
                name = type(exc).__name__
                errors[name] = errors.get(name, 0) + 1
            await asyncio.sleep(_RECONNECT_BACKOFF)
            continue
        served = 0
        try:
            while True:
                req = make(st.counter)
                st.counter += 1
                no_body = req.startswith(b"HEAD ")
                t0 = clock()
                writer.write(req)
                if writer.transport.get_write_buffer_size():
                    await writer.drain()
                status, keep_alive = await _read_response(reader, no_body)
                t1 = clock()
                served += 1
                if measure_start <= t1 <= measure_end:
                    if 200 <= status < 300:
                        st.requests += 1
                        record(t1 - t0)
                    else:
                        errors[status] = errors.get(status, 0) + 1
                if not keep_alive or t1 >= measure_end:
                    break
        except _ServerClosed:
            # A clean close of an idle keep-alive connection is not an error; just reconnect.
            if served == 0 and clock() >= measure_start:
                errors["ServerClosed"] = errors.get("ServerClosed", 0) + 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            if clock() >= measure_start:
                name = type(exc).__name__
                errors[name] = errors.get(name, 0) + 1
        finally:
            writer.close()


async def run_load(
    *,
    host: str,
    port: int,
    requests: RequestSource,
    concurrency: int,
    duration: float,
    warmup: float = 1.0,
) -> LoadResult:
    """Drive ``concurrency`` keep-alive connections for ``warmup + duration`` seconds.

    ``requests`` is either a sequence of complete serialized requests (cycled through by a
    counter shared across connections) or a callable that builds one from that counter.
    Only responses completing in the final ``duration`` seconds are reported.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    if duration <= 0:
        raise ValueError("duration must be > 0")
    if not callable(requests) and len(requests) == 0:
        raise ValueError("requests must not be empty")
    start = time.perf_counter()
    measure_start = start + max(warmup, 0.0)
    measure_end = measure_start + duration
    st = _Shared(measure_start, measure_end)
    tasks = [asyncio.create_task(_worker(host, port, requests, st)) for _ in range(concurrency)]
    try:
        await asyncio.sleep(max(measure_end - time.perf_counter(), 0.0))
    finally:
        # Requests still in flight would complete outside the window; drop them.
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return LoadResult(
        requests=st.requests, errors=st.errors, elapsed=duration, latencies=st.latencies
    )


def _parse_header(raw: str) -> tuple[str, str]:
    name, sep, value = raw.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"bad header {raw!r}, expected 'Name: value'")
    return name.strip(), value.strip()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="HTTP/1.1 keep-alive load generator")
    ap.add_argument("--url", required=True, help="http://host[:port]/path[?query]")
    ap.add_argument("-c", "--concurrency", type=int, default=64)
    ap.add_argument("-d", "--duration", type=float, default=10.0, help="measured seconds")
    ap.add_argument("-w", "--warmup", type=float, default=1.0, help="discarded seconds")
    ap.add_argument("-X", "--method", default=None, help="default GET, or POST with --data")
    ap.add_argument("-H", "--header", action="append", type=_parse_header, default=[])
    ap.add_argument("--data", default=None, help="request body (form-encoded by default)")
    ap.add_argument("--label", default=None, help="label for the summary line")
    args = ap.parse_args(argv)

    url = urlsplit(args.url)
    if url.scheme != "http" or not url.hostname:
        ap.error("only http://host[:port]/path URLs are supported")
    port = url.port or 80
    host_header = url.hostname if port == 80 else f"{url.hostname}:{port}"
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    headers: dict[str, str] = dict(args.header)
    body: bytes | None = None
    if args.data is not None:
        body = args.data.encode()
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/x-www-form-urlencoded"
    method = args.method or ("POST" if body is not None else "GET")
    req = build_request(method, path, host_header, headers, body)

    async def go() -> LoadResult:
        return await run_load(
            host=url.hostname or "",
            port=port,
            requests=[req],
            concurrency=args.concurrency,
            duration=args.duration,
            warmup=args.warmup,
        )

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        result = runner.run(go())
    print(result.summary_line(args.label or f"{method} {path}"))
    if result.errors:
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(result.errors.items(), key=str))
        print(f"errors: {detail}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
