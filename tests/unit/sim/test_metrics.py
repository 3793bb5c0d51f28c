"""Metrics and load behaviour: queueing, KV usage, aborts, disconnects and the stream faults (in-process)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from sim.app import create_app
from sim.knobs import Settings
from sim.metrics import SPECS
from sim.sglang_argv import parse_args

pytestmark = pytest.mark.anyio
REFERENCE = Path(__file__).resolve().parents[3] / "tests" / "data" / "sglang-metrics.json"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "one two three"}]}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_app(*argv: str, tps: str = "0") -> FastAPI:
    knobs = {"VLLM_SHIM_SIM_WARMUP_SECONDS": "0", "VLLM_SHIM_SIM_TOKENS_PER_SECOND": tps}
    return create_app(parse_args(["--model-path", "m", "--served-model-name", "served", *argv]),
                      Settings.from_env(knobs))


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim", timeout=10)


async def scrape(c: httpx.AsyncClient) -> Samples:
    response = await c.get("/metrics")
    assert response.status_code == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.01)


async def test_metrics_route_only_with_flag() -> None:
    async with client(make_app()) as c:
        response = await c.get("/metrics")
    assert response.status_code == 404 and response.json() == {"detail": "Not Found"}


async def test_names_types_and_labels_match_sglang() -> None:
    async with client(make_app("--enable-metrics")) as c:
        await c.post("/v1/chat/completions", json=CHAT)
        text = (await c.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "_created" not in text and "process_cpu" not in text
    running = families["sglang:num_running_reqs"].samples[0].labels
    assert running == {"model_name": "served", "engine_type": "unified", "tp_rank": "0", "pp_rank": "0",
                       "moe_ep_rank": "0"}
    assert families["sglang:num_requests"].type == "counter"
    assert families["sglang:num_requests"].samples[0].labels == {"model_name": "served", "engine_type": "unified",
                                                                 "is_streaming": "false"}
    reference = {m["name"]: m for m in json.loads(REFERENCE.read_text())["metrics"]}
    for spec in SPECS:
        ref = reference[spec.name]
        assert (spec.kind, set(spec.labels)) == (ref["type"], set(ref["labels"])), spec.name


async def test_metrics_move_with_load() -> None:
    app = make_app("--enable-metrics", "--max-running-requests", "1", tps="100")
    async with client(app) as c:
        body = {**CHAT, "max_tokens": 10, "ignore_eos": True}
        requests = [asyncio.create_task(c.post("/v1/chat/completions", json=body)) for _ in range(3)]

        async def saturated() -> bool:
            s = await scrape(c)
            return value(s, "sglang:num_running_reqs") == 1 and value(s, "sglang:num_queue_reqs") == 2

        await eventually(saturated)
        busy = await scrape(c)
        assert 0 < value(busy, "sglang:token_usage") < 1 and value(busy, "sglang:num_used_tokens") >= 5
        assert all(r.status_code == 200 for r in await asyncio.gather(*requests))
        done = await scrape(c)
    assert value(done, "sglang:num_running_reqs") == 0 and value(done, "sglang:token_usage") == 0
    assert value(done, "sglang:num_requests_total", is_streaming="false") == 3
    assert value(done, "sglang:generation_tokens_total") == 30 and value(done, "sglang:prompt_tokens_total") == 15
    assert value(done, "sglang:queue_time_seconds_count") == 3 and value(done, "sglang:queue_time_seconds_sum") > 0.1
    for histogram in ("time_to_first_token_seconds", "e2e_request_latency_seconds",
                      "request_time_per_output_token_seconds", "prompt_tokens_histogram",
                      "generation_tokens_histogram"):
        assert value(done, f"sglang:{histogram}_count") == 3, histogram
    assert value(done, "sglang:inter_token_latency_seconds_count") == 27
    assert value(done, "sglang:gen_throughput") > 0
    assert value(done, "sglang:cached_tokens_total", cache_source="device") == 8  # 2 repeats x (5 - 1) tokens
    assert value(done, "sglang:cache_hit_rate") == pytest.approx(8 / 15)


async def test_abort_request_by_rid_and_duplicate_rid() -> None:
    app = make_app("--enable-metrics", tps="50")
    async with client(app) as c:
        body = {**CHAT, "rid": "r1", "stream": True, "max_tokens": 500}
        stream = asyncio.create_task(c.post("/v1/chat/completions", json=body))

        async def running() -> bool:
            return value(await scrape(c), "sglang:num_running_reqs") == 1

        await eventually(running)
        duplicate = await c.post("/v1/chat/completions", json={**CHAT, "rid": "r1"})
        assert duplicate.status_code == 400 and "Duplicate request ID" in duplicate.json()["message"]
        assert (await c.post("/abort_request", json={"rid": "r1"})).status_code == 200
        text = (await stream).text
        after = await scrape(c)
    finals = [json.loads(line[6:]) for line in text.split("\n\n") if line.startswith("data: {")]
    assert finals[-1]["choices"][0]["finish_reason"] == "abort"
    assert value(after, "sglang:num_aborted_requests_total") == 1
    assert value(after, "sglang:num_requests_total") == 0


async def test_released_memory_queues_until_resumed() -> None:
    app = make_app("--enable-metrics", "--enable-memory-saver")
    async with client(app) as c:
        assert (await c.post("/release_memory_occupation", json={"tags": ["kv_cache", "weights"]})).json() is None
        pending = asyncio.create_task(c.post("/v1/chat/completions", json=CHAT))

        async def queued() -> bool:
            return value(await scrape(c), "sglang:num_queue_reqs") == 1

        await eventually(queued)
        assert not pending.done()
        await c.post("/resume_memory_occupation", json={})
        assert (await pending).status_code == 200


# -- raw ASGI: the only way to see individual chunks and to hang up mid-request in-process ----------------------------
async def drive(app: FastAPI, body: dict[str, Any], hang_up_after: int | None, timeout: float) -> list[bytes]:
    """POST body to /v1/chat/completions; return the non-empty body chunks; optionally disconnect after n."""
    chunks: list[bytes] = []
    gone = asyncio.Event()
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            chunks.append(message["body"])
            if hang_up_after is not None and len(chunks) >= hang_up_after:
                gone.set()

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
             "query_string": b"", "root_path": "", "headers": [(b"content-type", b"application/json")],
             "client": ("127.0.0.1", 1), "server": ("sim", 80), "state": {}}
    task = asyncio.ensure_future(app(scope, receive, send))
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        gone.set()
        await asyncio.wait_for(task, 2)
    return chunks


def aborted(app: FastAPI) -> float:
    text = app.state.sim.metrics.render().decode()
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    return samples.get("sglang:num_aborted_requests_total", 0.0)


@pytest.mark.parametrize("stream", [True, False])
async def test_client_disconnect_aborts_generation(stream: bool) -> None:
    app = make_app("--enable-metrics", tps="50")
    body = {**CHAT, "stream": stream, "max_tokens": 500, "ignore_eos": True}
    chunks = await drive(app, body, hang_up_after=3 if stream else None, timeout=0.5)
    assert len(chunks) == (3 if stream else 0)  # the stream was cut long before its 500 tokens
    assert aborted(app) == 1
    assert app.state.sim.engine.snapshot()["sglang:num_running_reqs"] == 0


async def test_hang_mid_stream_fault_stops_sending() -> None:
    app = create_app(parse_args(["--model-path", "m", "--enable-metrics"]),
                     Settings.from_env({"VLLM_SHIM_SIM_WARMUP_SECONDS": "0", "VLLM_SHIM_SIM_FAULT": "hang_mid_stream"}))
    chunks = await drive(app, {**CHAT, "stream": True, "max_tokens": 50}, hang_up_after=None, timeout=1.0)
    assert len(chunks) == 3 and all(c.startswith(b"data: {") for c in chunks)
