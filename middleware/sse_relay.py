"""An engine's server-sent events relayed to the client as they arrive, with vLLM's edits on the bytes.

On uvicorn's httptools server (what `python -m middleware` runs) the body takes the short way: the engine
connection's parser callback edits each read (`SseErrorJoiner`: error events, vLLM's id and model) and writes
it, framed as an HTTP/1.1 chunk, on the client's transport. No task wakes and no ASGI message is built per
chunk; the request's task only sleeps until the stream ends, the engine fails, or the client falls behind
(then engine reads pause until the client's transport drains: TCP pushes back on the engine as before).
That is about half of the middleware's CPU per streamed token (docs/benchmarks.md).

Any other ASGI server gets the same bytes by ASGI messages (`readany` → `send`): in-process tests and h11.
"""

from __future__ import annotations

import asyncio
from typing import Any

from middleware.asgi import Call, Send
from middleware.context import AppContext
from middleware.engine.client import UPSTREAM_FAILURES
from middleware.engine.pool import EngineConnection, EngineResponse
from middleware.sse_errors import SseErrorJoiner

MIDSTREAM_FAILURE = (
    b'data: {"error":{"message":"The inference engine closed the stream unexpectedly.",'
    b'"type":"InternalServerError","param":null,"code":500}}\n\ndata: [DONE]\n\n'
)
# The uvicorn class whose transport the short way writes on: its chunked framing is what we reproduce.
_UVICORN_CYCLE = ("uvicorn.protocols.http.httptools_impl", "RequestResponseCycle")


async def relay_stream(ctx: AppContext, call: Call, headers: list[tuple[bytes, bytes]], resp: EngineResponse) -> None:
    await call.send({"type": "http.response.start", "status": resp.status, "headers": headers})
    send = call.send  # after the start message: the server's own send (see app._recording_send)
    joiner = SseErrorJoiner(call.state.get("identity"))
    wire = client_wire(send)
    try:
        if wire is not None:
            await Splice(resp.connection, joiner, wire).run()
        else:
            await _by_messages(resp, joiner, send)
        rest = joiner.flush()
    except UPSTREAM_FAILURES:
        ctx.observer.count_upstream_error("midstream")
        rest = MIDSTREAM_FAILURE
    call.finished = True
    await send({"type": "http.response.body", "body": rest})


def client_wire(send: Send) -> Any | None:
    """uvicorn's request cycle behind `send` when the short way can write on its transport: the httptools
    server, a chunked response already started and not finished. None: use ASGI messages."""
    cycle: Any = getattr(send, "__self__", None)
    kind = type(cycle)
    if (kind.__module__, kind.__qualname__) != _UVICORN_CYCLE:
        return None
    ready = cycle.response_started and not cycle.response_complete and cycle.chunked_encoding is True
    return cycle if ready else None


async def _by_messages(resp: EngineResponse, joiner: SseErrorJoiner, send: Send) -> None:
    # Everything that arrived since the last send goes out as one message: under load, events coalesce.
    while chunk := await resp.readany():
        if out := joiner.feed(chunk):
            await send({"type": "http.response.body", "body": out, "more_body": True})


class Splice:
    """Engine body bytes → `joiner` → the client's transport, from the engine parser's callback."""

    def __init__(self, conn: EngineConnection, joiner: SseErrorJoiner, wire: Any) -> None:
        self.conn, self.joiner, self.wire = conn, joiner, wire
        self.client_slow = False
        self.bug: Exception | None = None

    def feed(self, body: bytes) -> None:
        """The connection's sink: never raises (it runs inside the engine protocol's `data_received`)."""
        if self.wire.disconnected or self.bug is not None or self.wire.transport.is_closing():
            # The client is gone or going (the request's watcher cancels us; a closed transport would raise
            # here, in the engine protocol's callback), or the task is about to raise.
            return
        try:
            out = self.joiner.feed(body)
        except Exception as exc:  # a bug in an edit: raised from the request's task, logged, stream cut
            self.bug = exc
            self.conn.wake()
            return
        if out:
            self.wire.transport.write(b"%x\r\n%s\r\n" % (len(out), out))
            if self.wire.flow.write_paused and not self.client_slow:
                self.client_slow = True
                self._engine_transport().pause_reading()
                self.conn.wake()

    async def run(self) -> None:
        conn = self.conn
        if conn.chunks:  # arrived between the engine's head and now
            early = b"".join(conn.chunks)
            conn.chunks.clear()
            conn.buffered = 0
            self.feed(early)
        conn.sink = self.feed
        if conn.paused:  # the pool paused on those early bytes; from here on, pauses are ours
            conn.paused = False
            if not self.client_slow:
                self._engine_transport().resume_reading()
        loop = asyncio.get_running_loop()
        try:
            while True:
                if self.bug is not None:
                    raise self.bug
                if self.client_slow:
                    await self.wire.flow.drain()
                    self.client_slow = False
                    self._engine_transport().resume_reading()
                elif conn.complete:
                    return
                elif conn.error is not None:
                    raise conn.error
                else:
                    conn.waiter = loop.create_future()
                    await conn.waiter
        finally:
            conn.sink = None

    def _engine_transport(self) -> asyncio.Transport:
        transport = self.conn.transport
        assert transport is not None  # a connection with a response in flight has one
        return transport
