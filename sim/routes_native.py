"""Health, info, model list, metrics and the admin-ish native routes."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from sim import SGLANG_VERSION
from sim.errors import Endpoint, JSONBytesResponse, parse_body, read_json
from sim.protocol import (
    AbortReq,
    LoadLoRAAdapterReqInput,
    MemoryOccupationReqInput,
    PauseGenerationReqInput,
    UnloadLoRAAdapterReqInput,
)
from sim.state import SimState, get_state

log = logging.getLogger(__name__)
FLUSH_TEXT = ("Cache flushed.\nPlease check backend logs for more details. (When there are running or waiting "
              "requests, the operation will not be performed.)\n")
LORA_DISABLED = "LoRA is not enabled. Please set `--enable-lora` to enable LoRA."


# -- health ------------------------------------------------------------------------------------------------------
async def health(request: Request) -> Response:
    state = get_state(request)
    if state.status() != "Up":
        return Response(status_code=503)
    # Real SGLang runs a 1-token generation and polls it once a second, so /health is slow when idle.
    await asyncio.sleep(state.settings.health_delay_seconds)
    # With weights released that generation cannot run; SGLang answers 503 once its health timeout expires.
    return Response(status_code=503 if state.engine.memory_released else 200)


async def ready(request: Request) -> Response:
    state = get_state(request)
    return Response(status_code=200 if state.status() == "Up" and not state.engine.paused else 503)


async def ping(request: Request) -> Response:
    return Response(status_code=200 if get_state(request).status() == "Up" else 503)


async def root() -> Response:
    return JSONBytesResponse("SGLang is running")


# -- models and info ---------------------------------------------------------------------------------------------
def model_cards(state: SimState) -> list[dict[str, Any]]:
    now, cfg = int(time.time()), state.cfg
    base = {"id": cfg.served_model_name, "object": "model", "created": now, "owned_by": "sglang",
            "root": cfg.model_path, "parent": None, "max_model_len": cfg.context_length}
    adapters = [{"id": name, "object": "model", "created": now, "owned_by": "sglang", "root": path,
                 "parent": cfg.served_model_name, "max_model_len": None} for name, path in state.loras.items()]
    return [base, *adapters]


async def list_models(request: Request) -> Response:
    return JSONBytesResponse({"object": "list", "data": model_cards(get_state(request))})


async def retrieve_model(request: Request, model: str) -> Response:
    for card in model_cards(get_state(request)):
        if card["id"] == model:
            return JSONBytesResponse(card)
    error = {"message": f"The model '{model}' does not exist", "type": "invalid_request_error", "param": "model",
             "code": "model_not_found"}
    return JSONBytesResponse({"error": error}, status_code=404)


def model_info(state: SimState) -> dict[str, Any]:
    cfg = state.cfg
    return {
        "model_path": cfg.model_path, "served_model_name": cfg.served_model_name, "tokenizer_path": cfg.model_path,
        "is_generation": True, "preferred_sampling_params": None, "weight_version": cfg.weight_version,
        "load_format": "auto", "reasoning_parser": cfg.reasoning_parser, "tool_call_parser": cfg.tool_call_parser,
        "disaggregation_mode": "null", "has_image_understanding": False, "has_audio_understanding": False,
        "model_type": "sim", "architectures": ["SimulatedForCausalLM"],
    }


async def get_model_info(request: Request) -> Response:
    if request.url.path == "/get_model_info":
        log.warning("Endpoint '/get_model_info' is deprecated and will be removed; use '/model_info'.")
    return JSONBytesResponse(model_info(get_state(request)))


async def get_server_info(request: Request) -> Response:
    state = get_state(request)
    if request.url.path == "/get_server_info":
        log.warning("Endpoint '/get_server_info' is deprecated and will be removed; use '/server_info'.")
    snap = state.engine.snapshot()
    internal = {"last_gen_throughput": snap["sglang:gen_throughput"],
                "num_running_reqs": snap["sglang:num_running_reqs"], "max_total_num_tokens": state.cfg.max_total_tokens,
                "memory_usage": {"weight": 0.0, "kvcache": 0.0}}
    return JSONBytesResponse({
        **{k: v for k, v in vars(request.app.state.args).items() if k not in ("api_key", "admin_api_key")},
        "served_model_name": state.cfg.served_model_name, "context_length": state.cfg.context_length,
        "launch_command": request.app.state.launch_command, "startup_time": state.startup_wall_time,
        "kv_events": None, "internal_states": [internal], "version": SGLANG_VERSION, "frontend": "python",
        "simulator": {"fault": state.settings.fault, "tokens_per_second": state.settings.tokens_per_second},
    })


async def loads(request: Request) -> Response:
    state = get_state(request)
    snap = state.engine.snapshot()
    load = {"dp_rank": 0, "num_running_reqs": snap["sglang:num_running_reqs"],
            "num_waiting_reqs": snap["sglang:num_queue_reqs"], "num_used_tokens": snap["sglang:num_used_tokens"],
            "max_total_num_tokens": snap["sglang:max_total_num_tokens"], "token_usage": snap["sglang:token_usage"],
            "gen_throughput": snap["sglang:gen_throughput"], "cache_hit_rate": snap["sglang:cache_hit_rate"],
            "max_running_requests": state.cfg.max_running_requests}
    return JSONBytesResponse({"timestamp": time.time(), "dp_rank_count": 1, "loads": [load]})


async def metrics(request: Request) -> Response:
    """Mounted only with --enable-metrics, like SGLang (otherwise the route 404s)."""
    registry = get_state(request).metrics
    assert registry is not None
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)


# -- admin-ish -----------------------------------------------------------------------------------------------------
def _lora_result(state: SimState, error: str | None) -> Response:
    body = {"rid": None, "http_worker_ipc": None, "success": error is None, "error_message": error,
            "loaded_adapters": dict(state.loras)}
    return JSONBytesResponse(body, status_code=200 if error is None else 400)


async def load_lora_adapter(request: Request) -> Response:
    state = get_state(request)
    req = await parse_body(request, LoadLoRAAdapterReqInput, Endpoint("load_lora_adapter", 1493, json_only=False))
    if not state.cfg.enable_lora:
        return _lora_result(state, LORA_DISABLED)
    if req.lora_name in state.loras:
        return _lora_result(state, f"The LoRA adapter {req.lora_name} is already loaded.")
    state.loras[req.lora_name] = req.lora_path
    return _lora_result(state, None)


async def unload_lora_adapter(request: Request) -> Response:
    state = get_state(request)
    req = await parse_body(request, UnloadLoRAAdapterReqInput, Endpoint("unload_lora_adapter", 1512, False))
    if not state.cfg.enable_lora:
        return _lora_result(state, LORA_DISABLED)
    if state.loras.pop(req.lora_name, None) is None:
        return _lora_result(state, f"LoRA adapter {req.lora_name} is not loaded. Loaded adapters: {list(state.loras)}")
    return _lora_result(state, None)


async def flush_cache(request: Request) -> Response:
    ok = get_state(request).engine.flush_cache()
    return PlainTextResponse(FLUSH_TEXT, status_code=200 if ok else 400)


async def release_memory_occupation(request: Request) -> Response:
    await parse_body(request, MemoryOccupationReqInput, Endpoint("release_memory_occupation", 1581, False))
    get_state(request).engine.set_memory_released(True)
    return JSONBytesResponse(None)


async def resume_memory_occupation(request: Request) -> Response:
    await parse_body(request, MemoryOccupationReqInput, Endpoint("resume_memory_occupation", 1595, False))
    get_state(request).engine.set_memory_released(False)
    return JSONBytesResponse(None)


async def abort_request(request: Request) -> Response:
    req = await parse_body(request, AbortReq, Endpoint("abort_request", 1437, json_only=False))
    if req.abort_all or req.rid:
        get_state(request).engine.abort(None if req.abort_all else req.rid)
    return Response(status_code=200)


async def pause_generation(request: Request) -> Response:
    endpoint = Endpoint("pause_generation", 1455, json_only=False)
    empty = await read_json(request, endpoint) is None  # unlike most admin routes, the body is optional here
    req = PauseGenerationReqInput() if empty else await parse_body(request, PauseGenerationReqInput, endpoint)
    get_state(request).engine.pause(abort_running=req.mode == "abort")
    return JSONBytesResponse({"message": "Generation paused successfully.", "status": "ok"})


async def continue_generation(request: Request) -> Response:
    get_state(request).engine.resume()
    return JSONBytesResponse({"message": "Generation continued successfully.", "status": "ok"})
