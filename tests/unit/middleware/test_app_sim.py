"""The middleware with the real rewrite in front of the simulated SGLang (`sim`), both in this process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from middleware.app import create_app
from middleware.config import MiddlewareConfig
from tests.unit.middleware.conftest import close_app, engine_secrets_file, run, serve

sim_app = pytest.importorskip("sim.app", reason="the simulated engine has not landed")
sim_cli = pytest.importorskip("sim.sglang_argv")
sim_settings = pytest.importorskip("sim.knobs")

JSON = {"content-type": "application/json"}
FAST_SIM = {"VLLM_SHIM_SIM_WARMUP_SECONDS": "0", "VLLM_SHIM_SIM_TOKENS_PER_SECOND": "0"}


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    args = sim_cli.parse_args(
        ["--model-path", "/models/base", "--served-model-name", "base", "--port", "1", "--enable-metrics",
         "--enable-lora", "--api-key", "k1", "--context-length", "4096"]
    )  # fmt: skip
    app = sim_app.create_app(args, sim_settings.Settings.from_env(FAST_SIM))
    with serve(app) as url:
        yield url


def _config(url: str) -> MiddlewareConfig:
    return MiddlewareConfig(
        engine_url=url, served_model_names=("base", "alias"), model_path="/models/base", api_keys=("k1", "k2"),
        enable_lora=True, allow_runtime_lora=True, engine_secrets_file=engine_secrets_file("k1"),
    )  # fmt: skip


def _calls(url: str, *requests: tuple[str, str, Any]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        app = create_app(_config(url))  # the real middleware.rewrite.route_rules
        transport = httpx.ASGITransport(app=app)
        auth = {"authorization": "Bearer k2"}
        out = []
        async with httpx.AsyncClient(transport=transport, base_url="http://mw", headers=auth) as client:
            for method, path, body in requests:
                content = body if isinstance(body, bytes) else orjson.dumps(body) if body is not None else None
                out.append(await client.request(method, path, content=content, headers=JSON))
            await close_app(app)
        return out

    return list(run(go()))




CHAT = {"model": "alias", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def test_chat_through_the_real_rewrite(sim_url: str) -> None:
    plain, streamed, unknown, bad = _calls(
        sim_url,
        ("POST", "/v1/chat/completions", CHAT),
        ("POST", "/v1/chat/completions", {**CHAT, "stream": True}),
        ("POST", "/v1/chat/completions", {**CHAT, "model": "nope"}),
        ("POST", "/v1/chat/completions", {"model": "base", "messages": 5}),
    )
    assert plain.status_code == 200 and plain.json()["object"] == "chat.completion"
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.content.rstrip().endswith(b"data: [DONE]")
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "NotFoundError"
    assert bad.status_code == 400 and set(bad.json()) == {"error"}
    assert "\n" not in bad.json()["error"]["message"]


def test_vllm_shapes_from_the_sim(sim_url: str) -> None:
    models, tokens, text, metrics = _calls(
        sim_url,
        ("GET", "/v1/models", None),
        ("POST", "/tokenize", {"model": "base", "prompt": "hello world"}),
        ("POST", "/detokenize", {"model": "base", "tokens": [1, 2]}),
        ("GET", "/metrics", None),
    )
    cards = models.json()["data"]
    assert [c["id"] for c in cards] == ["base", "alias"]
    assert cards[0]["owned_by"] == "vllm" and cards[0]["max_model_len"] == 4096
    assert tokens.json()["token_strs"] is None and tokens.json()["count"] == len(tokens.json()["tokens"])
    assert "prompt" in text.json()
    assert b"sglang:" in metrics.content


def test_runtime_lora_then_use_it_by_name(sim_url: str) -> None:
    load = {"lora_name": "sql", "lora_path": "/adapters/sql"}
    loaded, again, chat, unloaded = _calls(
        sim_url,
        ("POST", "/v1/load_lora_adapter", load),
        ("POST", "/v1/load_lora_adapter", load),
        ("POST", "/v1/chat/completions", {**CHAT, "model": "sql"}),
        ("POST", "/v1/unload_lora_adapter", {"lora_name": "sql"}),
    )
    assert loaded.text == "Success: LoRA adapter 'sql' added successfully."
    assert again.status_code == 400 and again.json()["type"] == "InvalidUserInput"
    assert chat.status_code == 200, chat.text
    assert unloaded.text == "Success: LoRA adapter 'sql' removed successfully."
