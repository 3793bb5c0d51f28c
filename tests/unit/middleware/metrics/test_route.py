"""GET /metrics through the middleware, in front of the simulated SGLang (`sim`): vLLM names that move with the
engine, SGLang's own series as SGLang wrote them, the middleware's counters, no credentials needed, and nothing
written to PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from middleware.app import create_app
from middleware.config import MiddlewareConfig
from middleware.metrics.bridge import CONTENT_TYPE, MetricsBridge
from tests.unit.middleware.conftest import close_app, engine_secrets_file, run, serve

sim_app = pytest.importorskip("sim.app", reason="the simulated engine has not landed")
sim_cli = pytest.importorskip("sim.sglang_argv")
sim_settings = pytest.importorskip("sim.knobs")

ROOT = Path(__file__).resolve().parents[4]
# 40 tokens a second: a 40-token answer keeps a request running for about a second.
SIM_ENV = {"VLLM_SHIM_SIM_WARMUP_SECONDS": "0", "VLLM_SHIM_SIM_TOKENS_PER_SECOND": "40"}
SIM_ARGS = ["--model-path", "/models/base", "--served-model-name", "base", "--port", "1", "--enable-metrics",
            "--api-key", "k1"]
AUTH = {"authorization": "Bearer k2"}
CHAT = {"model": "base", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 2}
Values = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    app = sim_app.create_app(sim_cli.parse_args(SIM_ARGS), sim_settings.Settings.from_env(SIM_ENV))
    with serve(app) as url:
        yield url


def _config(url: str) -> MiddlewareConfig:
    # With API keys: /metrics must still answer a scraper that sends none, as vLLM's does.
    return MiddlewareConfig(engine_url=url, served_model_names=("base",), model_path="/models/base",
                            api_keys=("k1", "k2"), engine_secrets_file=engine_secrets_file("k1"))


def values(text: str) -> Values:
    """Every sample of a page that parses, has each family once and each series once."""
    out: Values = {}
    names = []
    for family in text_string_to_metric_families(text):
        names.append(family.name)
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, key
            out[key] = s.value
    assert len(names) == len(set(names))
    return out


def total(page: Values, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in page.items() if n == name and set(labels.items()) <= ls)


def sglang_lines(text: str) -> list[str]:
    # gen_throughput is a rate over a time window: it changes between two reads of an idle engine.
    return [line for line in text.splitlines() if line.startswith(("sglang:", "# HELP sglang:", "# TYPE sglang:"))
            and not line.startswith("sglang:gen_throughput")]


@contextlib.asynccontextmanager
async def client_for(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mw") as client:
        yield client


async def scrape_until(client: httpx.AsyncClient, done: Callable[[Values], bool]) -> Values:
    for _ in range(500):  # a bound on the polling, not a timing requirement
        page = values((await client.get("/metrics")).text)
        if done(page):
            return page
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never showed on /metrics")


def test_metrics_speak_vllm_beside_sglangs_own_series(sim_url: str) -> None:
    async def go() -> tuple[Values, Values, httpx.Response, str]:
        bridge = MetricsBridge("base", cache_seconds=0.0)  # every scrape reads the engine
        async with aiohttp.ClientSession(auto_decompress=False) as session, \
                client_for(create_app(_config(sim_url), client=session, observer=bridge)) as client:
            before = values((await client.get("/metrics")).text)
            slow = asyncio.ensure_future(client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 40},
                                                     headers=AUTH))
            during = await scrape_until(client, lambda page: total(page, "vllm:num_requests_running") >= 1)
            assert (await slow).status_code == 200
            for _ in range(3):
                assert (await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)).status_code == 200
            after = await client.get("/metrics")
            async with httpx.AsyncClient() as direct:
                engine = (await direct.get(f"{sim_url}/metrics")).text
        return before, during, after, engine

    before, during, response, engine = run(go())
    after = values(response.text)
    assert response.headers["content-type"] == CONTENT_TYPE
    assert total(before, "vllm:num_requests_running") == 0 == total(after, "vllm:num_requests_running")
    assert total(during, "vllm:num_requests_running") >= 1
    for name in ("vllm:prompt_tokens_total", "vllm:generation_tokens_total"):
        assert total(after, name) > total(before, name), name
    assert {dict(ls)["model_name"] for (n, ls) in after if n.startswith("vllm:")} == {"base"}
    assert total(after, "vllm_shim:requests_total", route="/v1/chat/completions", status="200") == 4
    assert total(after, "vllm_shim:requests_total", route="/metrics", status="200") >= 2
    assert total(after, "vllm_shim:engine_metrics_up") == 1
    assert sglang_lines(response.text) == sglang_lines(engine) and len(sglang_lines(engine)) > 100




def test_default_app_serves_its_own_bridge_without_credentials(sim_url: str) -> None:
    async def go() -> tuple[httpx.Response, httpx.Response]:
        app = create_app(_config(sim_url))  # no observer, no session: what `python -m middleware` runs
        async with client_for(app) as client:
            assert (await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)).status_code == 200
            assert (await client.get("/v1/models")).status_code == 401
            responses = await client.get("/metrics"), await client.get("/metrics/")
        await close_app(app)  # closes the engine session it made
        return responses

    plain, slash = run(go())
    assert plain.status_code == slash.status_code == 200  # answered at /metrics/ too, not redirected
    for response in (plain, slash):
        page = values(response.text)
        assert total(page, "vllm_shim:requests_total", route="/v1/chat/completions", status="200") == 1
        assert total(page, "vllm_shim:requests_total", route="/v1/models", status="401") == 1
        assert total(page, "vllm:prompt_tokens_total", model_name="base") > 0
        assert any(name.startswith("sglang:") for name, _ in page)


SUBPROCESS = """
import asyncio, sys
import httpx
from tests.unit.middleware.conftest import serve
from sim.app import create_app as sim_app
from sim.sglang_argv import parse_args
from sim.knobs import Settings
from middleware.app import create_app
from middleware.config import MiddlewareConfig

async def scrape(url):
    config = MiddlewareConfig(engine_url=url, served_model_names=("base",), model_path="/models/base",
                              api_keys=("k1",))
    transport = httpx.ASGITransport(app=create_app(config))
    async with httpx.AsyncClient(transport=transport, base_url="http://mw") as client:
        chat = {"model": "base", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        reply = await client.post("/v1/chat/completions", json=chat, headers={"authorization": "Bearer k1"})
        assert reply.status_code == 200, reply.text
        return (await client.get("/metrics")).text

app = sim_app(parse_args(sys.argv[1:]), Settings.from_env({"VLLM_SHIM_SIM_WARMUP_SECONDS": "0",
                                                          "VLLM_SHIM_SIM_TOKENS_PER_SECOND": "0"}))
with serve(app) as url:
    print(asyncio.run(scrape(url)))
"""


def test_nothing_is_written_to_the_multiprocess_dir(tmp_path: Path) -> None:
    # The chart sets PROMETHEUS_MULTIPROC_DIR for vLLM and SGLang collects every file in it. prometheus_client
    # reads the variable when it is imported, so the app runs in a fresh process.
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests" / "unit")])}
    result = subprocess.run([sys.executable, "-c", SUBPROCESS, *SIM_ARGS], env=env, capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(tmp_path.iterdir()) == []
    page = values(result.stdout)
    assert total(page, "vllm:prompt_tokens_total") > 0
    assert total(page, "vllm_shim:requests_total", route="/v1/chat/completions", status="200") == 1
