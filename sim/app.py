"""`create_app(args, settings)`: the whole simulated SGLang HTTP surface, buildable in-process for tests."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.middleware.cors import CORSMiddleware

from sim import routes_extra, routes_native, routes_openai
from sim.disagg import Disagg
from sim.errors import NativeError, SimError, native_error_handler, sim_error_handler, validation_error_handler
from sim.knobs import Settings
from sim.metrics import SimMetrics
from sim.middleware import AuthMiddleware, GarbageMiddleware
from sim.scheduler import Scheduler
from sim.sglang_options import SimConfig
from sim.state import SimState

log = logging.getLogger(__name__)


def build_state(cfg: SimConfig, settings: Settings) -> SimState:
    engine = Scheduler(cfg, settings)
    if cfg.enable_metrics:
        overrides = {"sglang:time_to_first_token_seconds": cfg.ttft_buckets,
                     "sglang:inter_token_latency_seconds": cfg.itl_buckets,
                     "sglang:e2e_request_latency_seconds": cfg.e2e_buckets}
        engine.metrics = SimMetrics(cfg.served_model_name, engine.snapshot, overrides)
    disagg = Disagg.from_config(cfg.disaggregation_mode, cfg.host, cfg.disaggregation_bootstrap_port)
    return SimState(cfg=cfg, settings=settings, engine=engine, metrics=engine.metrics,
                    loras=dict(cfg.lora_adapters), disagg=disagg)


async def _announce_ready(state: SimState) -> None:
    while state.status() != "Up":
        await asyncio.sleep(0.05)
    log.info("The server is fired up and ready to roll!")


def _lifespan(state: SimState) -> object:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.mark_started()
        if state.disagg is not None:
            await state.disagg.start()
        announcer = asyncio.create_task(_announce_ready(state))
        yield
        announcer.cancel()
        if state.disagg is not None:
            await state.disagg.stop()

    return lifespan


GET, POST, GET_POST = ("GET",), ("POST",), ("GET", "POST")
native, openai, extra = routes_native, routes_openai, routes_extra


def route_table(cfg: SimConfig) -> list[tuple[str, tuple[str, ...], Callable[..., object]]]:
    """Every path the simulated SGLang answers, in match order (FastAPI tries them top to bottom)."""
    rows: list[tuple[str, tuple[str, ...], Callable[..., object]]] = [
        # Health and discovery.
        ("/health", GET, native.health),
        ("/health_generate", GET, native.health),
        ("/ready", GET, native.ready),
        ("/ping", GET, native.ping),
        ("/", ("GET", "HEAD"), native.root),
        ("/v1/models", GET, native.list_models),
        ("/v1/models/{model:path}", GET, native.retrieve_model),
        ("/model_info", GET, native.get_model_info),
        ("/get_model_info", GET, native.get_model_info),
        ("/server_info", GET, native.get_server_info),
        ("/get_server_info", GET, native.get_server_info),
        ("/v1/loads", GET, native.loads),
        # Admin (behind --admin-api-key when set).
        ("/load_lora_adapter", POST, native.load_lora_adapter),
        ("/unload_lora_adapter", POST, native.unload_lora_adapter),
        ("/flush_cache", GET_POST, native.flush_cache),
        ("/release_memory_occupation", GET_POST, native.release_memory_occupation),
        ("/resume_memory_occupation", GET_POST, native.resume_memory_occupation),
        ("/abort_request", POST, native.abort_request),
        ("/pause_generation", POST, native.pause_generation),
        ("/continue_generation", POST, native.continue_generation),
        # OpenAI generation.
        ("/v1/chat/completions", POST, openai.chat_completions),
        ("/v1/completions", POST, openai.completions),
        # Native generation, embeddings, rerank, tokenizer.
        ("/generate", ("POST", "PUT"), extra.generate),
        ("/v1/embeddings", POST, extra.embeddings),
        ("/v1/rerank", ("POST", "PUT"), extra.rerank),
        ("/tokenize", POST, extra.tokenize),
        ("/v1/tokenize", POST, extra.tokenize),
        ("/detokenize", POST, extra.detokenize),
        ("/v1/detokenize", POST, extra.detokenize),
    ]
    if cfg.enable_metrics:
        rows.append(("/metrics", GET, native.metrics))
    return rows


def create_app(args: argparse.Namespace, settings: Settings) -> FastAPI:
    cfg = SimConfig.from_args(args)
    state = build_state(cfg, settings)
    app = FastAPI(title="SGLang (simulated)", lifespan=_lifespan(state))  # type: ignore[arg-type]
    app.state.sim = state
    app.state.args = args
    app.state.launch_command = shlex.join([sys.executable, "-m", "sim", *sys.argv[1:]])
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(SimError, sim_error_handler)
    app.add_exception_handler(NativeError, native_error_handler)
    for path, methods, handler in route_table(cfg):
        app.add_api_route(path, handler, methods=list(methods))
    # Added last = outermost: auth answers before a fault or a route sees the request, as in SGLang.
    if settings.parsed_fault().kind == "garbage":
        app.add_middleware(GarbageMiddleware)
    if cfg.api_key or cfg.admin_api_key:
        app.add_middleware(AuthMiddleware, api_key=cfg.api_key, admin_api_key=cfg.admin_api_key)
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_credentials=True, allow_methods=["*"],
                       allow_headers=["*"])
    return app
