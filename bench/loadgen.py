"""A small, fast HTTP/1.1 load generator: raw asyncio protocols + httptools' response parser (on uvloop).

Each of `concurrency` keep-alive connections sends the same pre-built request bytes again and again until
`requests` answers have arrived in total. Per request it records the latency (request written → response
complete), the time to the first body byte (for a stream: the first SSE event) and the number of SSE events
(`\\n\\n`-terminated blocks in the decoded body). Connections are opened and warmed before the clock starts,
so connection set-up is not in the numbers.

Its own ceiling is what the direct path (client → upstream) measures: every other path adds hops to that.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httptools

_NOW = time.perf_counter


class ConnectionBroken(Exception):
    pass


class Connection(asyncio.Protocol):
    """One client connection; `request()` sends the bytes and waits for the complete answer."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.status = 0
        self.first_body = 0.0
        self.events = 0
        self.last_newline = False
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionBroken(str(exc or "closed by peer")))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_exception(ConnectionBroken(f"bad response: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def on_message_begin(self) -> None:
        self.status, self.first_body, self.events, self.last_newline = 0, 0.0, 0, False

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if not self.first_body:
            self.first_body = _NOW()
        # Events end in a blank line; the JSON inside never holds a raw newline, so counting is exact even
        # when a read splits the "\n\n".
        self.events += body.count(b"\n\n") + (1 if self.last_newline and body[:1] == b"\n" else 0)
        self.last_newline = body[-1:] == b"\n" and body[-2:] != b"\n\n"

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def request(self, data: bytes) -> tuple[float, float, int, int]:
        """(latency s, time to first body byte s, SSE events, status)."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        start = _NOW()
        self.transport.write(data)
        await self.waiter
        end = _NOW()
        first = (self.first_body or end) - start
        return end - start, first, self.events, self.status


async def connect(host: str, port: int) -> Connection:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(Connection, host, port)
    return protocol


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    events: int = 0
    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)
    ttfb: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what)


async def _worker(
    host: str, port: int, data: bytes, conns: list[Connection], slot: int, budget: list[int], result: LoadResult,
    expect_events: int,
) -> None:  # fmt: skip
    while budget[0] > 0:
        budget[0] -= 1
        conn = conns[slot]
        try:
            if conn.closed or not conn.keep_alive:
                if conn.transport is not None:
                    conn.transport.close()
                conn = conns[slot] = await connect(host, port)
            latency, first, events, status = await conn.request(data)
        except (ConnectionBroken, OSError) as exc:
            result.error(f"{type(exc).__name__}: {exc}")
            conn.closed = True
            continue
        result.requests += 1
        result.latencies.append(latency)
        result.ttfb.append(first)
        result.events += events
        if status != 200:
            result.error(f"status {status}")
        elif expect_events and events != expect_events:
            result.error(f"{events} SSE events, expected {expect_events}")


async def run_load(
    host: str, port: int, data: bytes, *, concurrency: int, requests: int, warmup: int = 0, expect_events: int = 0
) -> LoadResult:
    """Open `concurrency` connections, warm them with `warmup` requests, then time `requests` requests."""
    conns = list(await asyncio.gather(*(connect(host, port) for _ in range(concurrency))))
    try:
        if warmup:
            scratch = LoadResult()
            budget = [max(warmup, concurrency)]
            await asyncio.gather(*(_worker(host, port, data, conns, i, budget, scratch, 0) for i in range(concurrency)))
            if scratch.errors:
                raise RuntimeError(f"warm-up failed on port {port}: {scratch.error_samples}")
        result = LoadResult()
        budget = [requests]
        start = _NOW()
        workers = (_worker(host, port, data, conns, i, budget, result, expect_events) for i in range(concurrency))
        await asyncio.gather(*workers)
        result.wall = _NOW() - start
        return result
    finally:
        for c in conns:
            if c.transport is not None:
                c.transport.close()


def build_request(
    path: str, body: bytes | None = None, *, headers: dict[str, str] | None = None, method: str = "POST"
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
