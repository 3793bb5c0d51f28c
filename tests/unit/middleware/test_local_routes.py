"""vLLM-only endpoints served by the middleware: /version, /ping, /load, /v1/models, LoRA, sleep mode."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest

from middleware.config import LoraModule, MiddlewareConfig
from middleware.model_cards import model_cards
from tests.unit.middleware.conftest import Upstream, make_config, middleware, run, upstream

__all__ = ["upstream"]

JSON = {"content-type": "application/json"}
Steps = Callable[[httpx.AsyncClient], Awaitable[Any]]


def _with(config: MiddlewareConfig, steps: Steps) -> Any:
    async def go() -> Any:
        async with middleware(config) as client:
            return await steps(client)

    return run(go())


def test_version(upstream: tuple[Upstream, str]) -> None:
    resp = _with(make_config(upstream[1], vllm_version="0.33.0"), lambda c: c.get("/version"))
    assert resp.json() == {"version": "0.33.0"}


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(("healthy", "status"), [(True, 200), (False, 503)])
def test_ping_follows_engine_liveness(upstream: tuple[Upstream, str], method: str, healthy: bool, status: int) -> None:
    fake, url = upstream
    fake.state.healthy = healthy
    try:
        resp = _with(make_config(url), lambda c: c.request(method, "/ping"))
    finally:
        fake.state.healthy = True
    assert resp.status_code == status and resp.content == b""
    assert fake.state.last()["path"] == "/ping"


def test_load_is_zero_when_idle(upstream: tuple[Upstream, str]) -> None:
    assert _with(make_config(upstream[1]), lambda c: c.get("/load")).json() == {"server_load": 0}


PERMISSION_KEYS = {
    "id", "object", "created", "allow_create_engine", "allow_sampling", "allow_logprobs", "allow_search_indices",
    "allow_view", "allow_fine_tuning", "organization", "group", "is_blocking",
}  # fmt: skip


def test_models_list_has_vllm_cards_and_engine_adapters(upstream: tuple[Upstream, str]) -> None:
    fake, url = upstream
    fake.state.adapters = {"sql": "/adapters/sql"}
    try:
        body = _with(make_config(url, enable_lora=True), lambda c: c.get("/v1/models")).json()
    finally:
        fake.state.adapters = {}
    assert body["object"] == "list"
    base, alias, sql = body["data"]
    assert {k: base[k] for k in ("id", "object", "owned_by", "root", "parent", "max_model_len")} == {
        "id": "base", "object": "model", "owned_by": "vllm", "root": "/models/base", "parent": None,
        "max_model_len": 4096,  # from the engine: the config left it to the model
    }  # fmt: skip
    assert alias["id"] == "alias" and alias["root"] == "/models/base"
    assert set(base["permission"][0]) == PERMISSION_KEYS
    assert base["permission"][0]["id"].startswith("modelperm-")
    assert {k: sql[k] for k in ("id", "root", "parent", "max_model_len", "owned_by")} == {
        "id": "sql", "root": "/adapters/sql", "parent": "base", "max_model_len": None, "owned_by": "vllm"
    }  # fmt: skip


def test_models_card_by_id_and_404(upstream: tuple[Upstream, str]) -> None:
    async def steps(c: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        return await c.get("/v1/models/alias"), await c.get("/v1/models/org/nope")

    found, missing = _with(make_config(upstream[1], max_model_len=2048), steps)
    assert found.json()["id"] == "alias" and found.json()["max_model_len"] == 2048
    assert missing.status_code == 404
    assert missing.json() == {"error": {"message": "The model `org/nope` does not exist.", "type": "NotFoundError",
                                        "param": "model", "code": 404}}  # fmt: skip


def test_model_cards_fall_back_to_startup_adapters_without_engine() -> None:
    config = MiddlewareConfig(served_model_names=("m",), model_path="/p", max_model_len=None,
                              lora_modules=(LoraModule("a", "/a"),))  # fmt: skip
    cards = model_cards(config, None, 7)
    assert [(c["id"], c["parent"], c["max_model_len"], c["created"]) for c in cards] == [
        ("m", None, None, 7), ("a", "m", None, 7)
    ]  # fmt: skip


def _lora_config(url: str) -> MiddlewareConfig:
    return make_config(url, enable_lora=True, allow_runtime_lora=True)


def test_lora_load_unload_cycle(upstream: tuple[Upstream, str]) -> None:
    fake, url = upstream
    body = orjson.dumps({"lora_name": "sql", "lora_path": "/adapters/sql"})

    async def steps(c: httpx.AsyncClient) -> list[httpx.Response]:
        return [
            await c.post("/v1/load_lora_adapter", content=body, headers=JSON),
            await c.post("/v1/load_lora_adapter", content=body, headers=JSON),
            await c.get("/v1/models"),
            await c.post("/v1/unload_lora_adapter", content=b'{"lora_name": "sql"}', headers=JSON),
            await c.post("/v1/unload_lora_adapter", content=b'{"lora_name": "sql"}', headers=JSON),
        ]

    loaded, again, models, unloaded, missing = _with(_lora_config(url), steps)
    assert loaded.status_code == 200 and loaded.headers["content-type"].startswith("text/plain")
    assert loaded.text == "Success: LoRA adapter 'sql' added successfully."
    # Both shapes at once: production-stack's controller reads the top level, vLLM clients read `error`.
    assert again.status_code == 400
    dual = again.json()
    assert dual["type"] == "InvalidUserInput" and "has already been loaded" in dual["message"]
    assert dual["error"] == {"message": dual["message"], "type": "InvalidUserInput", "param": None, "code": 400}
    assert [m["id"] for m in models.json()["data"] if m["parent"]] == ["sql"]
    assert unloaded.text == "Success: LoRA adapter 'sql' removed successfully."
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFoundError"
    assert fake.state.adapters == {}


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        ("/v1/load_lora_adapter", b'{"lora_name": "x"}', 400, "Both 'lora_name' and 'lora_path'"),
        ("/v1/load_lora_adapter", b'{"lora_path": "/x"}', 400, "Both 'lora_name' and 'lora_path'"),
        ("/v1/unload_lora_adapter", b"{}", 400, "'lora_name' needs to be provided"),
        ("/v1/load_lora_adapter", b'{"lora_name": "bad", "lora_path": "/missing/x"}', 400, "path not found"),
        ("/v1/load_lora_adapter", b"[]", 400, "valid dictionary"),
    ],
)
def test_lora_errors(upstream: tuple[Upstream, str], path: str, body: bytes, status: int, fragment: str) -> None:
    resp = _with(_lora_config(upstream[1]), lambda c: c.post(path, content=body, headers=JSON))
    assert resp.status_code == status
    assert fragment in resp.json()["error"]["message"]


def test_lora_routes_need_runtime_updating(upstream: tuple[Upstream, str]) -> None:
    body = b'{"lora_name": "a", "lora_path": "/a"}'
    resp = _with(make_config(upstream[1]), lambda c: c.post("/v1/load_lora_adapter", content=body, headers=JSON))
    assert resp.status_code == 404


def test_sleep_wake_cycle(upstream: tuple[Upstream, str]) -> None:
    fake, url = upstream

    async def steps(c: httpx.AsyncClient) -> list[Any]:
        out: list[Any] = [(await c.get("/is_sleeping")).json()]
        out.append((await c.post("/sleep?level=1")).json())
        out.append(orjson.loads(fake.state.last()["body"]))
        out.append((await c.get("/is_sleeping")).json())
        out.append((await c.post("/wake_up?tags=weights")).json())
        out.append(orjson.loads(fake.state.last()["body"]))
        out.append((await c.post("/wake_up?tags=kv_cache")).json())
        out.append((await c.get("/is_sleeping")).json())
        return out

    got = _with(make_config(url, dev_mode=True), steps)
    assert got == [
        {"is_sleeping": False},
        {"status": "sleeping", "level": 1},
        {"tags": ["kv_cache", "weights", "cuda_graph"]},
        {"is_sleeping": True},
        {"status": "sleeping", "tags": ["weights"]},
        {"tags": ["weights", "cuda_graph"]},
        {"status": "awake", "tags": ["kv_cache"]},
        {"is_sleeping": False},
    ]


@pytest.mark.parametrize("query", ["level=7", "level=x"])
def test_sleep_rejects_bad_level(upstream: tuple[Upstream, str], query: str) -> None:
    resp = _with(make_config(upstream[1], dev_mode=True), lambda c: c.post("/sleep?" + query))
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "level"


def test_wake_up_rejects_unknown_tags(upstream: tuple[Upstream, str]) -> None:
    resp = _with(make_config(upstream[1], dev_mode=True), lambda c: c.post("/wake_up?tags=gpu"))
    assert resp.status_code == 400


def test_reset_prefix_cache_flushes_the_engine_cache(upstream: tuple[Upstream, str]) -> None:
    fake, url = upstream
    resp = _with(make_config(url, dev_mode=True), lambda c: c.post("/reset_prefix_cache"))
    assert resp.json() == {"success": True}
    assert fake.state.last()["path"] == "/flush_cache"
