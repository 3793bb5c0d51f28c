"""Prefill/decode disaggregation under production-stack's `disaggregated_prefill_orchestrated` routing logic.

The router awaits the prefill pod's answer before it sends the decode pod anything, but SGLang's prefill server
holds a request until the decode side of the same bootstrap room has joined. So on a prefill pod the middleware
starts SGLang's prefill with a fresh room, answers the router at once with a vLLM-shaped completion whose
`kv_transfer_params` carry the room and the pod's public bootstrap port (the router adds `remote_host`), and
lets the prefill finish in the background, cancelling it if no decode peer joins within `pd_room_timeout_s`.
On a decode pod it turns those `kv_transfer_params` into SGLang's `bootstrap_host/port/room`.

The router's plain `disaggregated_prefill` logic sends no `kv_transfer_params`: nothing in its two requests
names the prefill pod that served the first one, so with several prefill pods the halves cannot be paired.
Both roles refuse such a request with a 400 naming the orchestrated logic (docs/deploying.md).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from typing import Any

import orjson

from middleware.asgi import Call
from middleware.context import AppContext, Handler
from middleware.errors import VllmError, bad_request
from middleware.inbound import parse_object, prepare_fresh, read_checked, send_prepared

log = logging.getLogger("middleware.pd")

ROUTES = ("/v1/chat/completions", "/v1/completions")
# What the prefill request names as its bootstrap host. SGLang's prefill side only checks that it is not
# FAKE_BOOTSTRAP_HOST (2.2.2.2, a fake transfer) and addresses its own bootstrap server with it, which listens
# on the engine's host: loopback.
PREFILL_SELF_HOST = "127.0.0.1"
ROOM_LIMIT = 2**63  # SGLang's gateway draws rooms as random 63-bit integers
NEEDS_ORCHESTRATED = (
    "this pod serves one half of a prefill/decode pair: requests need kv_transfer_params as production-stack's "
    "'disaggregated_prefill_orchestrated' routing logic sends them ({detail})"
)


def refused(detail: str) -> VllmError:
    return bad_request(NEEDS_ORCHESTRATED.format(detail=detail))


def decode_fields(params: Any) -> dict[str, Any] | VllmError:
    """The router's `kv_transfer_params` (as a prefill pod answered them, plus `remote_host`) → SGLang's fields."""
    if not isinstance(params, dict):
        return refused("kv_transfer_params must be an object")
    host, port, room = params.get("remote_host"), params.get("remote_port"), params.get("bootstrap_room")
    if not isinstance(host, str) or not host:
        return refused("kv_transfer_params.remote_host must name the prefill pod")
    if type(port) is not int or not 0 < port < 65536:
        return refused("kv_transfer_params.remote_port must be the prefill pod's bootstrap port")
    if type(room) is not int or not 0 <= room < ROOM_LIMIT:
        return refused("kv_transfer_params.bootstrap_room must be the room a prefill pod answered")
    return {"bootstrap_host": host, "bootstrap_port": port, "bootstrap_room": room}


def wants_remote_decode(params: Any) -> bool:
    return isinstance(params, dict) and params.get("do_remote_decode") is True


def prefill_body(parsed: dict[str, Any], room: int, port: int) -> dict[str, Any]:
    """What SGLang's prefill server gets: the router's body (already max_tokens 1), one answer, the room."""
    body = {k: v for k, v in parsed.items() if k not in ("kv_transfer_params", "stream_options")}
    return {**body, "stream": False, "bootstrap_host": PREFILL_SELF_HOST, "bootstrap_port": port,
            "bootstrap_room": room}  # fmt: skip


def prefill_reply(path: str, model: Any, room: int, port: int) -> dict[str, Any]:
    """vLLM's answer to a `do_remote_decode` prefill: no text yet, the handle for the decode side."""
    params = {
        "do_remote_prefill": True,
        "do_remote_decode": False,
        "remote_engine_id": None,
        "remote_block_ids": None,
        "remote_host": None,  # the router fills in the prefill pod's host
        "remote_port": port,
        "bootstrap_room": room,
    }
    created = int(time.time())
    if path == "/v1/completions":
        choice: dict[str, Any] = {"index": 0, "text": "", "logprobs": None, "finish_reason": "length"}
        kind, prefix = "text_completion", "cmpl"
    else:
        choice = {"index": 0, "message": {"role": "assistant", "content": ""}, "logprobs": None,
                  "finish_reason": "length"}  # fmt: skip
        kind, prefix = "chat.completion", "chatcmpl"
    # No usage: the prompt is still being computed when this is sent, and vLLM's usage is optional.
    return {"id": f"{prefix}-{uuid.uuid4().hex}", "object": kind, "created": created, "model": model,
            "choices": [choice], "usage": None, "kv_transfer_params": params}  # fmt: skip


class PrefillRooms:
    """The prefill requests running in the background, one per room; kept referenced until they end."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, path: str, body: bytes, room: int, request_id: bytes | None) -> None:
        self.ctx.observer.count_pd_room("prefill", "started")
        log.info("pd prefill room %d started (request %s)", room, _rid(request_id))
        task = asyncio.get_running_loop().create_task(self._run(path, body, room, request_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, path: str, body: bytes, room: int, request_id: bytes | None) -> None:
        bound = self.ctx.config.pd_room_timeout_s
        started = time.monotonic()
        try:
            status, reply = await asyncio.wait_for(self._post(path, body, request_id), bound)
        except asyncio.TimeoutError:
            # Leaving the request closes its connection: SGLang aborts a request whose client went away.
            self.ctx.observer.count_pd_room("prefill", "timed_out")
            log.warning("pd prefill room %d cancelled: no decode peer finished with it within %.0f s (request %s)",
                        room, bound, _rid(request_id))  # fmt: skip
            return
        except Exception as exc:
            self.ctx.observer.count_pd_room("prefill", "failed")
            log.warning("pd prefill room %d failed: engine unreachable or broke off: %r", room, exc)
            return
        took = time.monotonic() - started
        if status == 200:
            self.ctx.observer.count_pd_room("prefill", "completed")
            log.info("pd prefill room %d completed in %.3f s: its decode peer took the KV cache", room, took)
        else:
            self.ctx.observer.count_pd_room("prefill", "failed")
            log.warning("pd prefill room %d failed after %.3f s: SGLang answered %d: %s",
                        room, took, status, reply[:500].decode("utf-8", "replace"))  # fmt: skip

    async def _post(self, path: str, body: bytes, request_id: bytes | None) -> tuple[int, bytes]:
        engine = self.ctx.engine
        headers = {"Content-Type": "application/json"}
        if engine.auth:
            headers["Authorization"] = engine.auth
        if request_id is not None:
            headers["X-Request-Id"] = request_id.decode("latin-1")
        async with engine.session.post(engine.url(path), data=body, headers=headers) as resp:
            return resp.status, await resp.read()


def _rid(request_id: bytes | None) -> str:
    return request_id.decode("latin-1") if request_id is not None else "-"


def pd_route(ctx: AppContext, rooms: PrefillRooms) -> Handler:
    """Chat and completions on a pod of a P/D pair (`ctx.config.pd_role` is "prefill" or "decode")."""
    role = ctx.config.pd_role

    async def handle(call: Call) -> None:
        raw = await read_checked(ctx, call, json=True)
        if raw is None:
            return
        parsed = parse_object(raw)
        if isinstance(parsed, VllmError):
            await call.respond_error(parsed)
            return
        params = parsed.pop("kv_transfer_params", None)
        if role == "prefill":
            await _prefill(ctx, rooms, call, parsed, params)
        else:
            await _decode(ctx, call, parsed, params)

    return handle


async def _prefill(ctx: AppContext, rooms: PrefillRooms, call: Call, parsed: dict[str, Any], params: Any) -> None:
    if not wants_remote_decode(params):
        await call.respond_error(refused("a prefill pod needs do_remote_decode: true"))
        return
    room = secrets.randbelow(ROOM_LIMIT)
    port = ctx.config.pd_bootstrap_port
    body = prefill_body(parsed, room, port)
    prepared = await prepare_fresh(ctx, call.path, orjson.dumps(body), body)
    if isinstance(prepared, VllmError):
        await call.respond_error(prepared)
        return
    for rule in prepared.rules:
        ctx.observer.count_rewrite(rule)
    rooms.start(call.path, prepared.body, room, call.request_id)
    await call.respond_json(200, prefill_reply(call.path, parsed.get("model"), room, port))


async def _decode(ctx: AppContext, call: Call, parsed: dict[str, Any], params: Any) -> None:
    fields = decode_fields(params) if params is not None else refused("a decode pod needs the prefill's answer")
    if isinstance(fields, VllmError):
        await call.respond_error(fields)
        return
    body = {**parsed, **fields}
    ctx.observer.count_pd_room("decode", "joined")
    log.info("pd decode joins room %d of prefill %s:%d (request %s)", fields["bootstrap_room"],
             fields["bootstrap_host"], fields["bootstrap_port"], _rid(call.request_id))  # fmt: skip
    prepared = await prepare_fresh(ctx, call.path, orjson.dumps(body), body)
    await send_prepared(ctx, call, call.path, prepared, None, True)
