"""Forward one request to the engine and relay the answer, racing it against the client going away.

Server-sent events are relayed as they arrive (middleware/sse_relay.py); every other answer is read whole (the
client waits for all of it anyway) so that errors and the few differing shapes can be translated and a
failure half-way through still becomes a clean vLLM error instead of a truncated body.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from middleware import engine_replies
from middleware.asgi import JSON_HEADERS, Call, Headers, wait_for_disconnect
from middleware.context import AppContext, SuccessTranslator
from middleware.engine.client import ENGINE_BROKE_OFF, ENGINE_GARBLED, UPSTREAM_FAILURES, Engine, classify
from middleware.engine.pool import EngineResponse
from middleware.sse_relay import relay_stream

# Hop-by-hop and per-connection headers (the list production-stack's router drops), plus the ones we
# set ourselves: the engine's credentials (only when keys are configured), the request id and an identity
# encoding (we pass bytes on as they come, so the engine must not compress them).
REQUEST_DROP = frozenset(
    {
        b"host", b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"content-length",
        b"upgrade", b"te", b"trailer", b"x-request-id", b"accept-encoding",
        # The body is already read whole; letting the engine wait for a 100-continue would cost a round trip.
        b"expect",
        # SGLang's request-control headers (srt/entrypoints/request_headers.py; honoured with
        # SGLANG_ENABLE_REQUEST_HEADER_OVERRIDES): a client must not pick the rid, priority, DP rank or a PD
        # bootstrap host (a connection target) of its request. vLLM has none of them.
        b"x-override-rid", b"x-override-bootstrap-host", b"x-override-bootstrap-port", b"x-override-bootstrap-room",
        b"x-override-conversation-id", b"x-override-routed-dp-rank", b"x-override-disagg-prefill-dp-rank",
        b"x-override-priority",
    }
)  # fmt: skip
RESPONSE_DROP = frozenset(
    {
        b"content-length", b"content-encoding", b"transfer-encoding", b"connection", b"server", b"keep-alive",
        # uvicorn adds its own Date, and the App adds X-Request-Id.
        b"date", b"x-request-id",
    }
)  # fmt: skip
# A client that leaves sooner costs the engine at most this much work on its request.
WATCH_AFTER_S = 0.02
# Characters a path of ours keeps as they are when it becomes a request target (RFC 3986 pchar and "/").
PATH_SAFE = "/:@!$&'()*+,;="


def request_head(call: Call, path: str, engine: Engine) -> bytes:
    """The request line and headers for the engine, as bytes (the pool adds content-length and the blank line).

    The target is the client's own bytes (`raw_path`) when the path is unchanged, so nothing is re-encoded;
    a path of ours (/score -> /v1/score) is percent-encoded. Header names arrive lower-cased (ASGI).
    """
    raw_path = call.scope.get("raw_path") if path == call.path else None
    target = engine.path_prefix + (bytes(raw_path) if raw_path else quote(path, safe=PATH_SAFE).encode("ascii"))
    if call.query:
        target += b"?" + call.query
    auth = engine.auth
    lines = [b"%s %s HTTP/1.1\r\nhost: %s\r\naccept-encoding: identity\r\n" % (call.method.encode(), target,
                                                                                 engine.host_header)]  # fmt: skip
    for key, value in call.scope["headers"]:
        if key not in REQUEST_DROP and not (auth and key == b"authorization"):
            lines += (key, b": ", value, b"\r\n")
    if auth:
        # The client's Authorization is replaced by the internal engine key: loopback callers cannot skip the
        # middleware, and the user's key never reaches SGLang.
        lines.append(b"authorization: %s\r\n" % auth.encode("latin-1"))
    if call.request_id is not None:
        lines.append(b"x-request-id: %s\r\n" % call.request_id)
    return b"".join(lines)


def downstream_headers(resp: EngineResponse) -> Headers:
    return [(key, value) for key, value in resp.raw_headers if key.lower() not in RESPONSE_DROP]


def looks_like_json(payload: bytes) -> bool:
    """A bounded-cost sanity check (bodies can be megabytes of embeddings): a JSON object, array or string."""
    body = payload.strip()
    return (body[:1], body[-1:]) in ((b"{", b"}"), (b"[", b"]"), (b'"', b'"'))


def _json_type(headers: Headers) -> Headers:
    return [(k, v) for k, v in headers if k.lower() != b"content-type"] + JSON_HEADERS


async def forward(
    ctx: AppContext, call: Call, path: str, body: bytes | None, translate: SuccessTranslator | None = None
) -> None:
    """Relay to `path` on the engine; if the client leaves first, drop the engine request (it aborts).

    The exchange runs in the request's own task; a watcher task cancels it when the client goes away. The
    watcher starts only once the answer has taken WATCH_AFTER_S: creating, running and cancelling a task per
    request was 7-50 µs of added p50 at concurrency 1 (bench/run.py chat_c1, side by side, quiet and busy
    box), which an answer that is back sooner never needs; a generation that runs on is watched from its
    first milliseconds.
    """
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    watchers: list[asyncio.Task[bool]] = []
    timer = loop.call_later(WATCH_AFTER_S, lambda: watchers.append(loop.create_task(_cancel_on_disconnect(call, task))))
    try:
        await _exchange(ctx, call, path, body, translate)
    except asyncio.CancelledError:
        if not call.finished:
            ctx.observer.count_disconnect(call.route)
        if not any(w.done() and not w.cancelled() and w.result() for w in watchers):
            raise  # cancelled from outside (shutdown): not ours to swallow
        uncancel = getattr(task, "uncancel", None)  # 3.11+: keep the task's cancel count balanced
        if uncancel is not None:
            uncancel()
    finally:
        timer.cancel()
        for watcher in watchers:
            watcher.cancel()


async def _cancel_on_disconnect(call: Call, task: asyncio.Task[None]) -> bool:
    """Wait for the client to leave; then cancel the request's task (True) unless the answer was complete."""
    await wait_for_disconnect(call.receive)
    if call.finished:
        return False
    task.cancel()
    return True


async def _exchange(
    ctx: AppContext, call: Call, path: str, body: bytes | None, translate: SuccessTranslator | None
) -> None:
    engine = ctx.engine
    try:
        resp = await engine.pool.request(request_head(call, path, engine), body)
    except UPSTREAM_FAILURES as exc:
        failure = classify(exc)
        ctx.observer.count_upstream_error(failure.kind)
        await call.respond_error(failure.error)
        return
    try:
        if resp.content_type == "text/event-stream":
            await relay_stream(ctx, call, downstream_headers(resp), resp)
        else:
            await _relay_whole(ctx, call, resp, translate)
    except BaseException:
        # Closing (not releasing) a half-read response drops the connection, which is what makes
        # the engine notice and abort the generation.
        resp.close()
        raise
    resp.release()


async def _relay_whole(ctx: AppContext, call: Call, resp: EngineResponse, translate: SuccessTranslator | None) -> None:
    try:
        payload = await resp.read()
    except UPSTREAM_FAILURES:
        ctx.observer.count_upstream_error("midbody")
        await call.respond_error(ENGINE_BROKE_OFF)
        return
    status, headers = resp.status, downstream_headers(resp)
    if resp.content_type == "application/json" and not looks_like_json(payload):
        ctx.observer.count_upstream_error("malformed")
        await call.respond_error(ENGINE_GARBLED)
        return
    if status >= 400:
        status, payload = engine_replies.translate_error(status, payload)
        headers = _json_type(headers)
    elif translate is not None:
        payload = translate(payload, call)
    elif (identity := call.state.get("identity")) is not None:
        payload = identity.line(payload)
    await call.respond(status, payload, headers)
