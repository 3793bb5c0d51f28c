"""`create_app(args, settings)`: the whole simulated SGLang HTTP surface, buildable in-process for tests."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.middleware.cors import CORSMiddleware

from sim import routes_extra, routes_native, routes_openai
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
    return SimState(cfg=cfg, settings=settings, engine=engine, metrics=engine.metrics,
                    loras=dict(cfg.lora_adapters))


async def _announce_ready(state: SimState) -> None:
    while state.status() != "Up":
        await asyncio.sleep(0.05)
    log.info("The server is fired up and ready to roll!")


def _lifespan(state: SimState) -> object:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.mark_started()
        announcer = asyncio.create_task(_announce_ready(state))
        yield
        announcer.cancel()

    return lifespan


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
    app.include_router(routes_native.router)
    app.include_router(routes_openai.router)
    app.include_router(routes_extra.router)
    if cfg.enable_metrics:
        app.add_api_route("/metrics", routes_native.metrics, methods=["GET"])
    # Added last = outermost: auth answers before a fault or a route sees the request, as in SGLang.
    if settings.parsed_fault().kind == "garbage":
        app.add_middleware(GarbageMiddleware)
    if cfg.api_key or cfg.admin_api_key:
        app.add_middleware(AuthMiddleware, api_key=cfg.api_key, admin_api_key=cfg.admin_api_key)
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_credentials=True, allow_methods=["*"],
                       allow_headers=["*"])
    return app
