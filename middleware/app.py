"""The middleware's ASGI app: every route in one table, then a small pure-ASGI dispatcher.

The table is an allow-list: a path not listed is a vLLM-shaped 404 and never reaches the engine, which
keeps SGLang's admin and native routes (/flush_cache, /update_weights_*, /generate, ...) closed.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from middleware import engine_replies
from middleware import local_routes as vllm
from middleware.asgi import METHOD_NOT_ALLOWED, NOT_FOUND, ASGIApp, Call, ClientGone, Receive, Scope, Send
from middleware.auth import ApiKeyAuth
from middleware.config import MiddlewareConfig
from middleware.context import AppContext, AppState, Handler, Rewriter, SuccessTranslator
from middleware.engine.client import Engine
from middleware.errors import VllmError
from middleware.inbound import invocations_route, json_route, raw_route
from middleware.metrics.bridge import MetricsBridge
from middleware.metrics.route import metrics_route
from middleware.observer import Observer
from middleware.pd import ROUTES as PD_ROUTES
from middleware.pd import PrefillRooms, pd_route
from middleware.rewrite import route_rules
from middleware.score import score_route
from middleware.shared_state import SharedState

log = logging.getLogger("middleware")

CONFIG_ENV = "MIDDLEWARE_CONFIG"
INTERNAL_ERROR = VllmError(500, "The server had an error while processing your request.", "InternalServerError")
GET, POST = frozenset({"GET"}), frozenset({"POST"})
GET_POST = GET | POST


@dataclass(frozen=True)
class Route:
    name: str  # the path template; the label metrics and logs use
    methods: frozenset[str]
    handler: Handler


def _rerank(ctx: AppContext) -> SuccessTranslator:
    def translate(body: bytes, call: Call) -> bytes:
        model = call.state.get("model") or ctx.config.served_model_name
        return engine_replies.rerank(body, model, f"rerank-{uuid.uuid4().hex}")

    return translate


def route_table(ctx: AppContext) -> tuple[dict[str, Route], tuple[tuple[str, Route], ...]]:
    """Every path the middleware answers: (exact paths, path prefixes). Anything else is a 404."""
    rows: list[tuple[str, frozenset[str], Handler]] = [
        # OpenAI/vLLM inference API: JSON checked, rewritten for SGLang, proxied; counted in /load.
        ("/v1/chat/completions", POST, json_route(ctx, load=True)),
        ("/v1/completions", POST, json_route(ctx, load=True)),
        ("/v1/responses", POST, json_route(ctx, load=True)),
        ("/v1/embeddings", POST, json_route(ctx, load=True)),
        ("/v1/messages", POST, json_route(ctx, load=True)),
        ("/v1/messages/count_tokens", POST, json_route(ctx)),
        ("/v1/score", POST, score_route(ctx)),  # vLLM's score API, answered by SGLang's rerank (score.py)
        ("/score", POST, score_route(ctx)),
        ("/classify", POST, json_route(ctx, upstream="/v1/classify", load=True)),
        ("/invocations", POST, invocations_route(ctx)),
        # Same request, answer reshaped to vLLM's.
        ("/tokenize", POST, json_route(ctx, translate=lambda body, call: engine_replies.tokenize(body))),
        ("/detokenize", POST, json_route(ctx, translate=lambda body, call: engine_replies.detokenize(body))),
        ("/v1/rerank", POST, json_route(ctx, translate=_rerank(ctx), load=True)),
        ("/rerank", POST, json_route(ctx, upstream="/v1/rerank", translate=_rerank(ctx), load=True)),
        ("/v2/rerank", POST, json_route(ctx, upstream="/v1/rerank", translate=_rerank(ctx), load=True)),
        ("/health", GET, vllm.health(ctx)),  # the engine's health, sleep-aware; haproxy's engine check
        # Proxied as they are.
        ("/v1/audio/transcriptions", POST, raw_route(ctx)),
        # Served by the middleware.
        ("/metrics", GET, metrics_route(ctx)),  # SGLang's numbers under vLLM's names, beside SGLang's own
        ("/metrics/", GET, metrics_route(ctx)),  # answered, not redirected: some scrapers keep the slash
        ("/version", GET, vllm.version(ctx)),
        ("/ping", GET_POST, vllm.ping(ctx)),
        ("/load", GET, vllm.load(ctx)),
        ("/v1/models", GET, vllm.list_models(ctx)),
    ]
    if ctx.config.allow_runtime_lora:  # VLLM_ALLOW_RUNTIME_LORA_UPDATING
        rows += [
            ("/v1/load_lora_adapter", POST, vllm.load_lora(ctx)),
            ("/v1/unload_lora_adapter", POST, vllm.unload_lora(ctx)),
        ]
    if ctx.config.dev_mode:  # VLLM_SERVER_DEV_MODE
        rows += [
            ("/sleep", POST, vllm.sleep(ctx)),
            ("/wake_up", POST, vllm.wake_up(ctx)),
            ("/is_sleeping", GET, vllm.is_sleeping(ctx)),
            ("/reset_prefix_cache", POST, vllm.reset_prefix_cache(ctx)),
        ]
    if ctx.config.pd_role:  # one half of a prefill/decode pair: chat and completions carry bootstrap rooms
        handler = pd_route(ctx, PrefillRooms(ctx))
        rows = [(path, methods, handler if path in PD_ROUTES else h) for path, methods, h in rows]
    prefixes = (
        (vllm.MODELS_PREFIX, Route("/v1/models/{model}", GET, vllm.show_model(ctx))),
        # GET /v1/responses/{id}, POST /v1/responses/{id}/cancel
        ("/v1/responses/", Route("/v1/responses/{id}", GET_POST, raw_route(ctx))),
    )
    return {path: Route(path, methods, handler) for path, methods, handler in rows}, prefixes


class App:
    """Pure ASGI: look the path up, wrap `send` to record the status and echo X-Request-Id, run it."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.exact, self.prefixes = route_table(ctx)

    def lookup(self, path: str) -> Route | None:
        route = self.exact.get(path)
        if route is not None:
            return route
        for prefix, prefixed in self.prefixes:
            if path.startswith(prefix) and len(path) > len(prefix):
                return prefixed
        return None

    def route_name(self, path: str) -> str:
        route = self.lookup(path)
        return route.name if route is not None else "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000})  # no websocket route is proxied

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.ctx.engine.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _request_id(self, scope: Scope) -> bytes | None:
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                return bytes(value)
        return uuid.uuid4().hex.encode() if self.ctx.config.enable_request_id_headers else None

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.lookup(scope["path"])
        call = Call(scope, receive, send, route.name if route else "unmatched", self._request_id(scope))
        call.send = _recording_send(call, send)
        try:
            if route is None:
                await call.respond_error(NOT_FOUND)
            elif scope["method"] not in route.methods:
                await call.respond_error(METHOD_NOT_ALLOWED)
            else:
                await route.handler(call)
        except ClientGone:
            self.ctx.observer.count_disconnect(call.route)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not call.status:
                await call.respond_error(INTERNAL_ERROR)
        finally:
            # 499 (nginx's "client closed request") when the client left before any answer.
            self.ctx.observer.count_request(call.route, call.status or 499)


def _recording_send(call: Call, send: Send) -> Send:
    """Records the status and adds X-Request-Id on the start message, then steps aside: body messages (one
    per SSE chunk) go straight to the server's `send`."""

    async def recording(message: Any) -> None:
        if message["type"] == "http.response.start":
            call.status = message["status"]
            call.send = send
            if call.request_id is not None:
                message = {**message, "headers": [*message["headers"], (b"x-request-id", call.request_id)]}
        await send(message)

    return recording


def create_app(
    config: MiddlewareConfig,
    *,
    client: aiohttp.ClientSession | None = None,
    observer: Observer | None = None,
    rewriter: Rewriter | None = None,
) -> ASGIApp:
    """The ASGI app. `client` is borrowed (not closed); `rewriter` defaults to `middleware.rewrite.route_rules`.

    /metrics is served by a MetricsBridge: `observer` itself when it is one, else a new one for the served
    model name. Without an `observer` that bridge is also the observer, so its vllm_shim:* counters count
    this app's requests; an observer of another kind gets the counts instead (tests record them).
    """
    if rewriter is None:
        rewriter = route_rules
    metrics = observer if isinstance(observer, MetricsBridge) else MetricsBridge(config.served_model_name)
    state = AppState(shared=SharedState(config.state_file or None))
    if config.state_file and (observer is None or observer is metrics):  # the bridge counts: share its counts
        metrics.share_counts(config.state_file + ".counters")
    ctx = AppContext(config, Engine(config, client), observer or metrics, rewriter, metrics, state)
    app = App(ctx)
    if not config.api_keys:
        return app
    return ApiKeyAuth(app, config.api_keys, ctx.observer, app.route_name)


def create_app_from_env() -> ASGIApp:
    """uvicorn factory for --workers > 1, where each worker process builds its own app."""
    return create_app(MiddlewareConfig.load(os.environ[CONFIG_ENV]))
