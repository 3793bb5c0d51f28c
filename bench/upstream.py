"""A minimal, fast stand-in for SGLang's OpenAI server, for proxy benchmarks (raw asyncio + httptools + uvloop).

`python bench/upstream.py --port P`. It answers like SGLang 0.5 does on the paths the benchmark touches:

- `POST /v1/chat/completions`, `/v1/completions`: a non-streaming `chat.completion` JSON, or, when the body
  contains `"stream":true`, an SSE stream (`text/event-stream`, chunked) of `chat.completion.chunk` events
  ending in `data: [DONE]`. The request headers `x-bench-chunks` (default 20) and `x-bench-gap-ms`
  (default 0) set the number of content events and the pause between them. With no gap each event is still
  written separately (one write, then a yield to the loop), as a token-by-token engine writes them.
- `GET /health`, `/version`, `/v1/models`: 200 with a small JSON body (haproxy's health checks use them).
- anything else: FastAPI's 404 `{"detail":"Not Found"}`.

`--keep-alive S` closes a connection idle for S seconds, as SGLang's uvicorn does after 5 s (default: never).

The request body is never parsed: the stream switch is a byte search, so the upstream costs the same for
every path and scenario and stays far from being the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any

import httptools

CHUNK_JSON = (
    b'{"id":"b1e2c3d4e5f6","object":"chat.completion.chunk","created":1700000000,"model":"bench-model",'
    b'"choices":[{"index":0,"delta":{"role":null,"content":" token","reasoning_content":null,"tool_calls":null},'
    b'"logprobs":null,"finish_reason":null,"matched_stop":null}],"usage":null}'
)
LAST_JSON = (
    b'{"id":"b1e2c3d4e5f6","object":"chat.completion.chunk","created":1700000000,"model":"bench-model",'
    b'"choices":[{"index":0,"delta":{"role":null,"content":null,"reasoning_content":null,"tool_calls":null},'
    b'"logprobs":null,"finish_reason":"stop","matched_stop":null}],"usage":null}'
)
COMPLETION = (
    b'{"id":"b1e2c3d4e5f6","object":"chat.completion","created":1700000000,"model":"bench-model",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?",'
    b'"reasoning_content":null,"tool_calls":null},"logprobs":null,"finish_reason":"stop","matched_stop":151645}],'
    b'"usage":{"prompt_tokens":12,"total_tokens":21,"completion_tokens":9,"prompt_tokens_details":null}}'
)
NOT_FOUND = b'{"detail":"Not Found"}'
SMALL = {
    b"/health": b"{}",
    b"/version": b'{"version":"0.5.23"}',
    b"/v1/models": b'{"object":"list","data":[{"id":"bench-model","object":"model","owned_by":"sglang"}]}',
}


def _frame(payload: bytes) -> bytes:
    """One HTTP/1.1 chunk carrying one SSE event."""
    event = b"data: " + payload + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(event), event)


EVENT = _frame(CHUNK_JSON)
LAST = _frame(LAST_JSON) + _frame(b"[DONE]") + b"0\r\n\r\n"
SSE_HEAD = b"HTTP/1.1 200 OK\r\nserver: uvicorn\r\ncontent-type: text/event-stream; charset=utf-8\r\n"


def _head(status: bytes, body: bytes, keep_alive: bool) -> bytes:
    conn = b"" if keep_alive else b"connection: close\r\n"
    return b"HTTP/1.1 %s\r\nserver: uvicorn\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n" % (
        status,
        len(body),
        conn,
    )


class Upstream(asyncio.Protocol):
    # Seconds an idle keep-alive connection stays open (SGLang's uvicorn: 5); 0 = forever.
    keep_alive = 0.0

    def __init__(self) -> None:
        self.idle_timer: asyncio.TimerHandle | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.chunks = 20
        self.gap = 0.0
        self.header_name = b""
        self.task: asyncio.Task[None] | None = None
        self.writable: asyncio.Future[None] | None = None

    # transport callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.idle()

    def idle(self) -> None:
        """Start the idle clock (uvicorn's timeout_keep_alive): close if no request begins in time."""
        if self.keep_alive and self.transport is not None:
            self.idle_timer = asyncio.get_running_loop().call_later(self.keep_alive, self.transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None:
            self.task.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def pause_writing(self) -> None:
        self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        self.writable = None

    # parser callbacks
    def on_message_begin(self) -> None:
        self.url, self.body, self.chunks, self.gap = b"", [], 20, 0.0
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower == b"x-bench-chunks":
            self.chunks = int(value)
        elif lower == b"x-bench-gap-ms":
            self.gap = float(value) / 1000.0

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        transport = self.transport
        if transport is None:
            return
        keep_alive = self.parser.should_keep_alive()
        path = self.url.split(b"?", 1)[0]
        method = self.parser.get_method()
        if method == b"POST" and path in (b"/v1/chat/completions", b"/v1/completions"):
            body = b"".join(self.body)
            if b'"stream":true' in body or b'"stream": true' in body:
                self.task = asyncio.get_running_loop().create_task(self.stream(self.chunks, self.gap, keep_alive))
                return
            transport.write(_head(b"200 OK", COMPLETION, keep_alive) + COMPLETION)
        elif method == b"GET" and path in SMALL:
            transport.write(_head(b"200 OK", SMALL[path], keep_alive) + SMALL[path])
        else:
            transport.write(_head(b"404 Not Found", NOT_FOUND, keep_alive) + NOT_FOUND)
        if not keep_alive:
            transport.close()
        else:
            self.idle()

    async def stream(self, chunks: int, gap: float, keep_alive: bool) -> None:
        transport = self.transport
        assert transport is not None
        head = SSE_HEAD + (b"transfer-encoding: chunked\r\n\r\n" if keep_alive else b"connection: close\r\n\r\n")
        transport.write(head)
        for _ in range(chunks):
            if transport.is_closing():
                return
            transport.write(EVENT)
            # One event per loop turn, as an engine emits tokens; the pause is the inter-token gap.
            if self.writable is not None:
                await self.writable
            if gap > 0:
                await asyncio.sleep(gap)
            else:
                await asyncio.sleep(0)
        if not transport.is_closing():
            transport.write(LAST)
            if not keep_alive:
                transport.close()
            else:
                self.idle()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, host, port, backlog=4096, reuse_address=True)
    print(f"upstream listening on {host}:{port} at {time.time():.3f}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--keep-alive", type=float, default=0.0, help="close idle connections after S s (SGLang: 5)")
    args = parser.parse_args()
    Upstream.keep_alive = args.keep_alive
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(args.host, args.port))


def run(main: Coroutine[Any, Any, None]) -> None:
    """asyncio.run on uvloop when it is installed (it is, with uvicorn[standard])."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


if __name__ == "__main__":
    main()
