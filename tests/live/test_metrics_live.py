"""/metrics on the public port under load: vLLM series move with the load, read the way the router reads them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.live.engines import READY_TIMEOUT, engine_environ, engine_params
from tests.live.stack import Stack, start_stack

ROUTER_NAMES = (
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:gpu_cache_usage_perc",
    "vllm:gpu_prefix_cache_hits_total",
    "vllm:gpu_prefix_cache_queries_total",
)


@pytest.fixture(scope="module", params=engine_params())
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(
        tmp_path_factory.mktemp("metrics"),
        "--max-num-seqs", "4",
        "--api-key", "sk-secret-metrics-key",
        VLLM_SHIM_SIM_TOKENS_PER_SECOND="40",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path_factory.mktemp("prom")),  # as the production-stack chart sets it
        **engine_environ(request.param),
    )  # fmt: skip
    running.wait_health(200, timeout=READY_TIMEOUT[request.param])
    yield running
    running.stop()


def router_read(text: str) -> dict[str, float]:
    """What production-stack's engine_stats does: exact sample names, last sample wins, float values."""
    seen: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            seen[sample.name] = float(sample.value)
    return seen


async def load(url: str, n: int) -> None:
    body = {"model": "test-model", "messages": [{"role": "user", "content": "x " * 60}], "max_tokens": 60}
    headers = {"Authorization": "Bearer sk-secret-metrics-key"}
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(session.post(url, json=body, headers=headers) for _ in range(n)))


def test_vllm_series_move_with_load(stack: Stack) -> None:
    before = router_read(httpx.get(stack.url + "/metrics", timeout=10).text)

    async def during() -> dict[str, float]:
        task = asyncio.create_task(load(stack.url + "/v1/chat/completions", 12))
        await asyncio.sleep(1.5)
        scrape = await asyncio.to_thread(httpx.get, stack.url + "/metrics", timeout=10)
        await task
        return router_read(scrape.text)

    mid = asyncio.run(during())
    assert mid["vllm:num_requests_running"] == 4  # --max-num-seqs 4 → --max-running-requests 4
    assert mid["vllm:num_requests_waiting"] >= 1
    assert 0 < mid["vllm:gpu_cache_usage_perc"] <= 1
    after = router_read(httpx.get(stack.url + "/metrics", timeout=10).text)
    for name in ROUTER_NAMES:
        assert name in after, name
    assert after["vllm:prompt_tokens_total"] > before.get("vllm:prompt_tokens_total", 0)
    assert after["vllm:generation_tokens_total"] > before.get("vllm:generation_tokens_total", 0)
    assert any(name.startswith("sglang:") for name in after)
    assert any(name.startswith("vllm_shim:requests_total") for name in after)


def test_secrets_never_reach_logs_or_error_bodies(stack: Stack) -> None:
    denied = httpx.post(stack.url + "/v1/chat/completions", json={}, headers={"Authorization": "Bearer nope"})
    assert denied.status_code == 401 and "sk-secret" not in denied.text
    bad = httpx.post(
        stack.url + "/v1/chat/completions",
        json={"model": "test-model", "messages": "not a list"},
        headers={"Authorization": "Bearer sk-secret-metrics-key"},
    )
    assert bad.status_code == 400 and "sk-secret" not in bad.text
    assert "sk-secret-metrics-key" not in stack.log()
    # The run directory is the owner's alone; the rendered files (which hold the key) are 0600 inside it.
    assert stack.run_dir.stat().st_mode & 0o077 == 0
    for name in ("supervisord.conf", "middleware.json", "haproxy.cfg"):
        assert (stack.run_dir / name).stat().st_mode & 0o077 == 0, name
