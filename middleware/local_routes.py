"""Endpoints vLLM has and SGLang lacks (or shapes differently), served by the middleware itself.

Each factory takes the shared AppContext and returns a handler; app.py lists them in its route table.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from middleware import engine_replies
from middleware.asgi import TEXT_HEADERS, Call, parse_query
from middleware.context import AppContext, Handler
from middleware.engine.client import ADMIN_TIMEOUT_S, UpstreamError
from middleware.engine_state import fetch_engine_models
from middleware.errors import VllmError, bad_request, legacy_compatible_body
from middleware.inbound import parse_object, read_checked
from middleware.model_cards import model_cards, not_found_message

MODELS_PREFIX = "/v1/models/"
# SGLang's /ping answers at once from the server status (its /health runs a generation and takes >= 1 s);
# vLLM's /ping and /health only say whether the engine is alive.
ENGINE_LIVENESS_PATH = "/ping"
# Below haproxy's `timeout check` (5 s), so a slow SGLang /health is a clean 503, not a check timeout.
ENGINE_HEALTH_TIMEOUT_S = 4.5
# vLLM's tags → SGLang's memory tags. SGLang also keeps CUDA graphs, which belong with the weights.
WAKE_TAGS = {"weights": ("weights", "cuda_graph"), "kv_cache": ("kv_cache",)}
ALL_TAGS = ("kv_cache", "weights", "cuda_graph")
# vLLM level 1 offloads weights and drops the KV cache, level 2 drops both; SGLang releases per tag (weights
# survive only with --enable-weights-cpu-backup). Level 0 frees only the KV cache.
SLEEP_TAGS: dict[int, tuple[str, ...]] = {0: ("kv_cache",), 1: ALL_TAGS, 2: ALL_TAGS}


def version(ctx: AppContext) -> Handler:
    async def handle(call: Call) -> None:
        await call.respond_json(200, {"version": ctx.config.vllm_version})

    return handle


def ping(ctx: AppContext) -> Handler:
    """vLLM's /ping (= /health): empty 200 while the engine lives, empty 503 otherwise."""

    async def handle(call: Call) -> None:
        try:
            alive = (await ctx.engine.call("GET", ENGINE_LIVENESS_PATH)).status == 200
        except UpstreamError:
            alive = False
        await call.respond(200 if alive else 503, b"", headers=[])

    return handle


def health(ctx: AppContext) -> Handler:
    """/health as vLLM means it: is the engine alive (haproxy's engine check reads this).

    SGLang's own /health runs a one-token generation, which a sleeping engine (memory released) cannot do;
    vLLM's /health does not change during sleep. So while asleep, SGLang's instant liveness check stands in
    and the pod is not restarted by its liveness probe for sleeping.
    """

    async def handle(call: Call) -> None:
        path = ENGINE_LIVENESS_PATH if ctx.state.shared.sleeping_tags() else "/health"
        try:
            healthy = (await ctx.engine.call("GET", path, timeout=ENGINE_HEALTH_TIMEOUT_S)).status == 200
        except UpstreamError:
            healthy = False
        await call.respond(200 if healthy else 503, b"", headers=[])

    return handle


def load(ctx: AppContext) -> Handler:
    async def handle(call: Call) -> None:
        await call.respond_json(200, {"server_load": ctx.state.shared.server_load()})

    return handle


async def _engine_models(ctx: AppContext) -> Any:
    """Like fetch_engine_models, but None while the engine is unreachable: /v1/models must still answer."""
    try:
        return await fetch_engine_models(ctx)
    except UpstreamError:
        return None


async def _cards(ctx: AppContext) -> list[dict[str, Any]]:
    # The engine only knows something the config does not when adapters can exist or the context length
    # was left to the model.
    need_engine = ctx.config.enable_lora or ctx.config.max_model_len is None
    engine_models = await _engine_models(ctx) if need_engine else None
    return model_cards(ctx.config, engine_models, int(time.time()))


def list_models(ctx: AppContext) -> Handler:
    async def handle(call: Call) -> None:
        await call.respond_json(200, {"object": "list", "data": await _cards(ctx)})

    return handle


def show_model(ctx: AppContext) -> Handler:
    async def handle(call: Call) -> None:
        model_id = call.path[len(MODELS_PREFIX) :]
        for found in await _cards(ctx):
            if found["id"] == model_id:
                await call.respond_json(200, found)
                return
        await call.respond_error(VllmError(404, not_found_message(model_id), "NotFoundError", "model"))

    return handle


async def _respond_lora_error(call: Call, err: VllmError) -> None:
    # Nested for vLLM clients, flat too for the production-stack LoRA controller (see errors.py).
    await call.respond_json(err.status, legacy_compatible_body(err))


async def _lora_body(ctx: AppContext, call: Call, required: tuple[str, ...]) -> dict[str, Any] | None:
    raw = await read_checked(ctx, call, json=True)
    if raw is None:
        return None
    body = parse_object(raw)
    if isinstance(body, VllmError):
        await call.respond_error(body)
        return None
    if not all(isinstance(body.get(key), str) and body[key] for key in required):
        message = (
            "Both 'lora_name' and 'lora_path' must be provided."
            if len(required) == 2
            else "'lora_name' needs to be provided to unload a LoRA adapter."
        )
        await _respond_lora_error(call, VllmError(400, message, "InvalidUserInput"))
        return None
    return body


async def _loaded_adapters(ctx: AppContext) -> frozenset[str]:
    await fetch_engine_models(ctx)
    return ctx.state.lora_names


def _engine_failure(reply_body: bytes) -> str:
    payload = engine_replies.loads_or_none(reply_body)
    message = payload.get("error_message") or payload.get("message") if isinstance(payload, dict) else None
    return str(message or "The engine refused the LoRA adapter operation.")


async def _lora_op(ctx: AppContext, call: Call, engine_path: str, body: dict[str, Any], done: str) -> None:
    name = body["lora_name"]
    reply = await ctx.engine.call("POST", engine_path, body, timeout=ADMIN_TIMEOUT_S)
    if reply.status == 200:
        names = ctx.state.lora_names
        ctx.state.lora_names = names | {name} if done == "added" else names - {name}
        await call.respond(200, f"Success: LoRA adapter '{name}' {done} successfully.".encode(), TEXT_HEADERS)
        return
    message = _engine_failure(reply.body)
    if "already" in message.lower():
        await _respond_lora_error(call, _already_loaded(name))
        return
    await _respond_lora_error(call, VllmError(400, message, "BadRequestError"))


def _already_loaded(name: str) -> VllmError:
    return VllmError(400, f"The lora adapter '{name}' has already been loaded.", "InvalidUserInput")


def load_lora(ctx: AppContext) -> Handler:
    """vLLM /v1/load_lora_adapter → SGLang /load_lora_adapter; plain-text success like vLLM."""

    async def handle(call: Call) -> None:
        body = await _lora_body(ctx, call, ("lora_name", "lora_path"))
        if body is None:
            return
        try:
            if body["lora_name"] in await _loaded_adapters(ctx):
                await _respond_lora_error(call, _already_loaded(body["lora_name"]))
                return
            payload = {"lora_name": body["lora_name"], "lora_path": body["lora_path"]}
            await _lora_op(ctx, call, "/load_lora_adapter", payload, "added")
        except UpstreamError as exc:
            await _respond_lora_error(call, exc.error)

    return handle


def unload_lora(ctx: AppContext) -> Handler:
    async def handle(call: Call) -> None:
        body = await _lora_body(ctx, call, ("lora_name",))
        if body is None:
            return
        name = body["lora_name"]
        try:
            if name not in await _loaded_adapters(ctx):
                message = f"The lora adapter '{name}' cannot be found."
                await _respond_lora_error(call, VllmError(404, message, "NotFoundError"))
                return
            await _lora_op(ctx, call, "/unload_lora_adapter", {"lora_name": name}, "removed")
        except UpstreamError as exc:
            await _respond_lora_error(call, exc.error)

    return handle


async def _memory_call(ctx: AppContext, call: Call, engine_path: str, tags: tuple[str, ...]) -> bool:
    """Ask the engine to release/resume memory; on failure answer the client and return False."""
    try:
        reply = await ctx.engine.call("POST", engine_path, {"tags": list(tags)}, timeout=ADMIN_TIMEOUT_S)
    except UpstreamError as exc:
        await call.respond_error(exc.error)
        return False
    if reply.status != 200:
        status, body = engine_replies.translate_error(reply.status, reply.body)
        await call.respond(status, body)
        return False
    return True


def sleep(ctx: AppContext) -> Handler:
    async def handle(call: Call) -> None:
        raw_level = parse_query(call.query).get("level", ["1"])[-1]
        level = int(raw_level) if raw_level.isdigit() else -1
        if level not in SLEEP_TAGS:
            await call.respond_error(bad_request(f"Invalid sleep level {raw_level!r}: use 0, 1 or 2.", "level"))
            return
        tags = SLEEP_TAGS[level]
        if await _memory_call(ctx, call, "/release_memory_occupation", tags):
            ctx.state.shared.update_sleep(add=tags)
            await call.respond_json(200, {"status": "sleeping", "level": level})

    return handle


def wake_up(ctx: AppContext) -> Handler:
    async def handle(call: Call) -> None:
        asked = parse_query(call.query).get("tags", [])
        unknown = [tag for tag in asked if tag not in WAKE_TAGS]
        if unknown:
            await call.respond_error(bad_request(f"Unknown tags {unknown}: use 'weights' or 'kv_cache'.", "tags"))
            return
        tags = tuple(t for tag in asked for t in WAKE_TAGS[tag]) or ALL_TAGS
        if await _memory_call(ctx, call, "/resume_memory_occupation", tags):
            left = ctx.state.shared.update_sleep(remove=tags)
            answer: dict[str, Any] = {"status": "sleeping" if left else "awake"}
            if asked:
                answer["tags"] = asked
            await call.respond_json(200, answer)

    return handle


def is_sleeping(ctx: AppContext) -> Handler:
    async def handle(call: Call) -> None:
        await call.respond_json(200, {"is_sleeping": bool(ctx.state.shared.sleeping_tags())})

    return handle


def reset_prefix_cache(ctx: AppContext) -> Handler:
    """vLLM /reset_prefix_cache → SGLang /flush_cache (which refuses while requests run: success false)."""

    async def handle(call: Call) -> None:
        try:
            reply = await ctx.engine.call("POST", "/flush_cache", timeout=ADMIN_TIMEOUT_S)
        except UpstreamError as exc:
            await call.respond_error(exc.error)
            return
        await call.respond(200, orjson.dumps({"success": reply.status == 200}))

    return handle
