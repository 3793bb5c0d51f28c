"""The hot path to the engine: keep-alive HTTP/1.1 connections on asyncio protocols with httptools' parser.

Split from middleware/engine/client.py (which explains why it exists instead of aiohttp for client requests).
"""

from __future__ import annotations

import asyncio
import collections
import select
from collections.abc import Callable

import httptools


class EngineUnreachable(ConnectionError):
    """The pool could not open a connection to the engine (refused, or no answer within the connect timeout)."""


class EngineBrokeOff(ConnectionError):
    """The engine closed the connection, or sent something that is not HTTP/1.1, before the answer was whole."""


_POLLRDHUP = getattr(select, "POLLRDHUP", 0x2000)  # Linux: the peer shut down its side

# Past this many unread bytes from the engine (a client reading slower than the engine writes), stop
# reading the engine's socket; resume below the low mark. TCP then pushes back on the engine.
READ_HIGH_WATER = 256 * 1024
READ_LOW_WATER = 64 * 1024


class EngineConnection(asyncio.Protocol):
    """One keep-alive connection to the engine; parses the answer to the request in flight."""

    def __init__(self, pool: EnginePool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.lost = False
        self.idle_since = 0.0
        self.reset()

    def reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head: asyncio.Future[None] | None = None
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.paused = False
        self.waiter: asyncio.Future[None] | None = None
        # Set: each read's body bytes go to it from `data_received` instead of waiting in `chunks` for a
        # reader (sse_relay.Splice). It must not raise; it pauses reading itself when its client falls behind.
        self.sink: Callable[[bytes], None] | None = None
        self.complete = False
        self.keep_alive = True
        self.error: EngineBrokeOff | None = None

    # -- asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(EngineBrokeOff(f"malformed answer from the engine: {exc}"))
            self.drop()
        if self.sink is not None and self.chunks:
            # One sink call per read, not per HTTP chunk: the engine writes one chunk per event, and a read
            # that holds many (the engine ahead of us) then becomes one write to the client.
            chunks = self.chunks
            body = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
            self.sink(body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.pool.forget(self)
        if not self.complete:
            self._fail(EngineBrokeOff("the engine closed the connection"))

    # -- httptools
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            self.headers = []
            return
        self.status = status
        if self.head is not None and not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        if self.sink is not None:
            return
        self.buffered += len(body)
        if self.buffered > READ_HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self.wake()

    def on_message_complete(self) -> None:
        if self.status == 0:
            return  # end of an interim answer
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()
        self.wake()

    # -- ours
    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _fail(self, error: EngineBrokeOff) -> None:
        self.error = error
        if self.head is not None and not self.head.done():
            self.head.set_exception(error)
        self.wake()

    def peer_closed(self) -> bool:
        """Whether the engine closed (or wrote on) this idle connection in a way the loop has not processed
        yet. An idle keep-alive connection has nothing to read; anything readable (its FIN, above all) means
        a request written now would meet a closed socket. One zero-timeout poll(2), ~1 µs."""
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if sock is None:
            return True
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN | _POLLRDHUP)
        return bool(poller.poll(0))

    def drop(self) -> None:
        """Close without reuse: the engine sees the disconnect (and aborts a generation in progress)."""
        self.lost = True
        if self.transport is not None:
            self.transport.close()

    async def readany(self) -> bytes:
        """Whatever body bytes have arrived (waiting for some), or b"" at the end; raises EngineBrokeOff."""
        while not self.chunks:
            if self.complete:
                return b""
            if self.error is not None:
                raise self.error
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        chunks = self.chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        if len(chunks) > 0:
            chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data


class EngineResponse:
    """The engine's answer: status and headers now, the body as it arrives (`readany`) or whole (`read`)."""

    __slots__ = ("_conn", "_pool", "raw_headers", "status")

    def __init__(self, conn: EngineConnection, pool: EnginePool) -> None:
        self._conn = conn
        self._pool = pool
        self.status = conn.status
        self.raw_headers = conn.headers

    @property
    def content_type(self) -> str:
        """The media type, lower-cased and without parameters (aiohttp's `content_type`)."""
        for key, value in self.raw_headers:
            if key.lower() == b"content-type":
                return value.split(b";", 1)[0].strip().lower().decode("latin-1")
        return "application/octet-stream"

    async def readany(self) -> bytes:
        return await self._conn.readany()

    @property
    def connection(self) -> EngineConnection:
        """For sse_relay.Splice, which takes the body from the parser's callbacks."""
        return self._conn

    async def read(self) -> bytes:
        parts = []
        while chunk := await self._conn.readany():
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def release(self) -> None:
        """Back to the pool if the answer was read to its end on a keep-alive connection; else closed."""
        self._pool.release(self._conn)

    def close(self) -> None:
        self._conn.drop()


class EnginePool:
    """Keep-alive HTTP/1.1 connections to one engine address, most recently used first, no upper bound.

    An idle connection is not reused after `keepalive` seconds (below SGLang's 5 s keep-alive), so we never
    write on a socket the engine is closing. Belongs to the event loop that first uses it.
    """

    def __init__(self, host: str, port: int, *, keepalive: float, connect_timeout: float) -> None:
        self.host, self.port = host, port
        self.keepalive, self.connect_timeout = keepalive, connect_timeout
        self.idle: list[EngineConnection] = []
        self.open: set[EngineConnection] = set()
        # Closes every connection when the loop shuts down (its tasks are cancelled), even if nobody
        # calls close(): an app embedded without lifespan events (in-process tests) leaks no sockets.
        self._janitor = asyncio.get_running_loop().create_task(self._close_at_exit())

    async def _close_at_exit(self) -> None:
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            self.close()

    async def request(self, head: bytes, body: bytes | None) -> EngineResponse:
        """Send `head` (request line and headers, without the blank line) and `body`; wait for the answer's
        status and headers. Raises EngineUnreachable or EngineBrokeOff; cancelling drops the connection."""
        conn = await self._acquire()
        conn.reset()
        loop = asyncio.get_running_loop()
        conn.head = loop.create_future()
        transport = conn.transport
        assert transport is not None
        if body is None:
            transport.write(head + b"\r\n")
        else:
            transport.write(b"%scontent-length: %d\r\n\r\n%s" % (head, len(body), body))
        try:
            await conn.head
        except BaseException:
            conn.drop()
            raise
        return EngineResponse(conn, self)

    async def _acquire(self) -> EngineConnection:
        now = asyncio.get_running_loop().time()
        while self.idle:
            conn = self.idle.pop()
            if not conn.lost and now - conn.idle_since < self.keepalive and not conn.peer_closed():
                return conn
            conn.drop()  # the request goes on a new connection: not one byte of it was written here
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: EngineConnection(self), self.host, self.port), self.connect_timeout
            )
        except (OSError, asyncio.TimeoutError) as exc:
            raise EngineUnreachable(f"cannot connect to the engine at {self.host}:{self.port}: {exc!r}") from exc
        self.open.add(conn)
        return conn

    def release(self, conn: EngineConnection) -> None:
        if conn.complete and conn.keep_alive and not conn.lost and not conn.paused:
            conn.idle_since = asyncio.get_running_loop().time()
            self.idle.append(conn)
        else:
            conn.drop()

    def forget(self, conn: EngineConnection) -> None:
        self.open.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)

    def close(self) -> None:
        for conn in list(self.open):
            conn.drop()
        self.idle.clear()
        self._janitor.cancel()
