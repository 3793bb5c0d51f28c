"""Shared fixtures for the middleware tests: a small SGLang-like upstream on a real uvicorn, a fake rewrite
module, a recording observer and helpers to run the middleware in-process or on a real socket.

It lives in a test_* module (imported by the others) because tests/unit has no conftest of ours.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import httpx
import orjson
import pytest
import uvicorn

from middleware.app import create_app
from middleware.config import MiddlewareConfig
from middleware.errors import VllmError

# ----------------------------------------------------------------------------------------------------------
# Fake rewrite (the real middleware/rewrite/route_rules.py is another engineer's): renames `guided_regex` to `regex`,
# returns an error for `"reject": true`, raises TypeError for `"explode": true`, and skips parsing bodies
# that contain the marker `"fast"`.


@dataclass(frozen=True)
class FakeResult:
    body: dict[str, Any]
    changed: bool = False
    rules: tuple[str, ...] = ()
    error: VllmError | None = None


class FakeRewriter:
    def __init__(self) -> None:
        self.parsed_routes: list[str] = []
        self.lora_names: frozenset[str] = frozenset()

    def has_rules(self, route: str) -> bool:
        return False  # so big bodies still reach `needs_parse` below, which is free

    def needs_parse(self, route: str, raw: bytes, config: MiddlewareConfig) -> bool:
        return b'"fast"' not in raw

    def rewrite(
        self, route: str, body: dict[str, Any], config: MiddlewareConfig, lora_names: frozenset[str]
    ) -> FakeResult:
        self.parsed_routes.append(route)
        self.lora_names = lora_names
        if body.get("explode"):
            raise TypeError("'int' object is not iterable")
        if body.get("walk"):
            _walk(body)
        if body.get("reject"):
            return FakeResult(body, error=VllmError(400, "rejected by rewrite", "BadRequestError", "reject"))
        if "guided_regex" in body:
            new = {k: v for k, v in body.items() if k != "guided_regex"}
            new["regex"] = body["guided_regex"]
            return FakeResult(new, changed=True, rules=("guided_regex",))
        return FakeResult(body)

    def dump(self, body: dict[str, Any]) -> bytes:
        return orjson.dumps(body)


def _walk(node: Any) -> None:
    """Recursive like a careless rewrite rule: ~1000-deep input overflows Python's stack."""
    for child in node.values() if isinstance(node, dict) else node if isinstance(node, list) else ():
        _walk(child)


@dataclass
class RecordingObserver:
    requests: list[tuple[str, int]] = field(default_factory=list)
    rewrites: list[str] = field(default_factory=list)
    upstream_errors: list[str] = field(default_factory=list)
    disconnects: list[str] = field(default_factory=list)
    pd_rooms: list[tuple[str, str]] = field(default_factory=list)
    rule_failures: list[tuple[str, int]] = field(default_factory=list)

    def count_request(self, route: str, status: int) -> None:
        self.requests.append((route, status))

    def count_rewrite(self, rule: str) -> None:
        self.rewrites.append(rule)

    def count_upstream_error(self, kind: str) -> None:
        self.upstream_errors.append(kind)

    def count_disconnect(self, route: str) -> None:
        self.disconnects.append(route)

    def count_pd_room(self, role: str, event: str) -> None:
        self.pd_rooms.append((role, event))
    def count_rule_failure(self, rule: str, status: int) -> None:
        self.rule_failures.append((rule, status))


# ----------------------------------------------------------------------------------------------------------
# Upstream: an SGLang look-alike. The `x-test-mode` request header picks a behaviour.

SGLANG_VALIDATION_400 = {
    "object": "error",
    "message": (
        "1 validation error:\n  {'type': 'missing', 'loc': ('body', 'tools', 0, 'function'), 'msg': 'Field required',"
        " 'input': {'x': 1}}\n\n  File \"/usr/lib/python3/site-packages/sglang/srt/entrypoints/http_server.py\", "
        "line 1870, in openai_v1_chat_completions\n    POST /v1/chat/completions [{'type': 'missing'}]"
    ),
    "type": "Bad Request",
    "param": None,
    "code": 400,
}
SSE_ERROR_EVENT = b'data: {"error": {"object": "error", "message": "boom\\nFile \\"x.py\\"", "type": "BadRequest", "param": null, "code": 400}}\n\n'  # noqa: E501


@dataclass
class UpstreamState:
    requests: list[dict[str, Any]] = field(default_factory=list)
    disconnects: list[str] = field(default_factory=list)
    rule_failures: list[tuple[str, int]] = field(default_factory=list)
    adapters: dict[str, str] = field(default_factory=dict)
    healthy: bool = True

    def last(self) -> dict[str, Any]:
        return self.requests[-1]


async def _read(receive: Any) -> bytes:
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


def _cards(state: UpstreamState) -> dict[str, Any]:
    base = {"id": "base", "object": "model", "created": 1, "owned_by": "sglang", "root": "/m", "parent": None,
            "max_model_len": 4096}  # fmt: skip
    loras = [{**base, "id": n, "root": p, "parent": "base", "max_model_len": None} for n, p in state.adapters.items()]
    return {"object": "list", "data": [base, *loras]}


class Upstream:
    def __init__(self) -> None:
        self.state = UpstreamState()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await _read(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.state.requests.append(
            {"method": scope["method"], "path": scope["path"], "query": scope["query_string"], "headers": headers,
             "body": body}
        )  # fmt: skip
        mode = headers.get("x-test-mode", "")
        gone = asyncio.Event()
        watcher = asyncio.ensure_future(self._watch(receive, gone, scope["path"]))
        try:
            await self.dispatch(scope, body, mode, gone, send)
        finally:
            watcher.cancel()

    async def _watch(self, receive: Any, gone: asyncio.Event, path: str) -> None:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            self.state.disconnects.append(path)

    async def dispatch(self, scope: Any, body: bytes, mode: str, gone: asyncio.Event, send: Any) -> None:
        path = scope["path"]
        if mode == "slow":
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(gone.wait(), 5)
            return await json_reply(send, 200, {"late": True})
        if mode == "error400":
            return await json_reply(send, 400, SGLANG_VALIDATION_400)
        if mode == "text500":
            return await reply(send, 500, b"Internal Server Error", b"text/plain")
        if mode == "die":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"partial", "more_body": True})
            raise RuntimeError("upstream died mid-body")
        if b'"stream":true' in body.replace(b" ", b""):
            return await self.stream(send, mode, gone, path)
        handler = getattr(self, "route_" + path.strip("/").replace("/", "_"), None)
        if handler is None:
            return await json_reply(send, 404, {"detail": "Not Found"})
        await handler(send, body)

    async def stream(self, send: Any, mode: str, gone: asyncio.Event, path: str) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        if mode.startswith("bulk"):  # bulk-N: N events of ~2 KB as fast as the socket takes them, SGLang's heads
            filler = "x" * 2000
            for i in range(int(mode[5:])):
                event = b'data: {"id":"e1","object":"chat.completion.chunk","model":"base","choices":[{"index":0,'
                event += b'"delta":{"content":"%d %s"}}]}\n\n' % (i, filler.encode())
                await send({"type": "http.response.body", "body": event, "more_body": True})
            return await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
        for i in range(5):
            if gone.is_set():
                return
            if i == 2 and mode == "sse_error":
                await send({"type": "http.response.body", "body": SSE_ERROR_EVENT, "more_body": True})
                break
            if i == 2 and mode == "sse_die":
                raise RuntimeError("engine crashed mid-stream")
            chunk = b'data: {"choices":[{"delta":{"content":"t%d"}}]}\n\n' % i
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await asyncio.sleep(0.3)
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})

    async def route_v1_chat_completions(self, send: Any, body: bytes) -> None:
        await json_reply(send, 200, {"object": "chat.completion", "received": body.decode("utf-8", "replace")})

    route_v1_completions = route_v1_embeddings = route_v1_score = route_v1_chat_completions

    async def route_tokenize(self, send: Any, body: bytes) -> None:
        await json_reply(send, 200, {"tokens": [1, 2], "count": 2, "max_model_len": 4096})

    async def route_detokenize(self, send: Any, body: bytes) -> None:
        await json_reply(send, 200, {"text": "hi there"})

    async def route_v1_rerank(self, send: Any, body: bytes) -> None:
        items = [{"score": 0.9, "document": "b", "index": 1, "meta_info": {"prompt_tokens": 7}},
                 {"score": 0.1, "document": "a", "index": 0, "meta_info": {"prompt_tokens": 5}}]  # fmt: skip
        await json_reply(send, 200, items)

    async def route_v1_models(self, send: Any, body: bytes) -> None:
        await json_reply(send, 200, _cards(self.state))

    async def route_ping(self, send: Any, body: bytes) -> None:
        await reply(send, 200 if self.state.healthy else 503, b"", b"text/plain")

    route_health = route_ping

    async def route_metrics(self, send: Any, body: bytes) -> None:
        await reply(send, 200, b"sglang:num_running_reqs 0\n", b"text/plain; version=0.0.4")

    async def route_load_lora_adapter(self, send: Any, body: bytes) -> None:
        req = orjson.loads(body)
        ok = not req["lora_path"].startswith("/missing")
        if ok:
            self.state.adapters[req["lora_name"]] = req["lora_path"]
        answer = {"success": ok, "error_message": None if ok else "path not found", "loaded_adapters": {}}
        await json_reply(send, 200 if ok else 400, answer)

    async def route_unload_lora_adapter(self, send: Any, body: bytes) -> None:
        self.state.adapters.pop(orjson.loads(body)["lora_name"], None)
        await json_reply(send, 200, {"success": True, "error_message": None, "loaded_adapters": {}})

    async def route_release_memory_occupation(self, send: Any, body: bytes) -> None:
        await json_reply(send, 200, None)

    route_resume_memory_occupation = route_release_memory_occupation

    async def route_flush_cache(self, send: Any, body: bytes) -> None:
        await reply(send, 200, b"Cache flushed.", b"text/plain")


async def reply(send: Any, status: int, body: bytes, ctype: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", ctype)]})
    await send({"type": "http.response.body", "body": body})


async def json_reply(send: Any, status: int, payload: Any) -> None:
    await reply(send, status, orjson.dumps(payload), b"application/json")


# ----------------------------------------------------------------------------------------------------------
# Servers on free loopback ports.


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run `app` under a real uvicorn in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_config=None, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


def free_port_url() -> str:
    """A loopback URL nobody listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Upstream, str]]:
    fake = Upstream()
    with serve(fake) as url:
        yield fake, url


def engine_secrets_file(key: str) -> str:
    """An engine secrets file as `vllm serve` writes it, holding `key`: the key the simulated engine runs with
    and the middleware sends it (the user's keys are the middleware's alone)."""
    fd, path = tempfile.mkstemp(prefix="engine-secrets-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump({"api_key": key, "env": {}}, handle)
    atexit.register(os.unlink, path)
    return path


def make_config(url: str, **overrides: Any) -> MiddlewareConfig:
    base = MiddlewareConfig(engine_url=url, served_model_names=("base", "alias"), model_path="/models/base")
    return replace(base, **overrides)


@contextlib.asynccontextmanager
async def middleware(
    config: MiddlewareConfig, observer: RecordingObserver | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process behind httpx's ASGI transport, with a borrowed aiohttp session."""
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        app = create_app(config, client=session, observer=observer, rewriter=FakeRewriter())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mw") as client:
            yield client


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def close_app(app: Any) -> None:
    """Run the app's lifespan shutdown, which closes the engine connections it made."""
    messages = iter([{"type": "lifespan.shutdown"}])

    async def receive() -> Any:
        return next(messages)

    async def ignore(message: Any) -> None:
        pass

    await app({"type": "lifespan"}, receive, ignore)
