"""Every vLLM endpoint through the whole stack (haproxy → middleware → simulated SGLang), as a vLLM client sees it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.live.engines import READY_TIMEOUT, engine_environ, engine_params
from tests.live.stack import Stack, start_stack

KEY = "sk-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


# The same suite with one middleware process and with four: no answer may depend on the worker (issue 14).
# Real SGLang runs the four-worker case only: it covers what one worker does, and each real stack costs ~40 s.
@pytest.fixture(scope="module", params=engine_params(workers=((1, 4), (4,))))
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    engine, workers = request.param
    running = start_stack(
        tmp_path_factory.mktemp("endpoints"),
        "--api-key", KEY,
        "--served-model-name", "test-model", "alias",
        "--enable-lora", "--lora-modules", "adapter-a=/loras/a",
        "--enable-sleep-mode", "--max-logprobs", "5",
        VLLM_ALLOW_RUNTIME_LORA_UPDATING="True",
        VLLM_SERVER_DEV_MODE="1",
        VLLM_SHIM_MIDDLEWARE_WORKERS=str(workers),
        **engine_environ(engine),
    )  # fmt: skip
    running.wait_health(200, timeout=READY_TIMEOUT[engine])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.url + "/v1", api_key=KEY, max_retries=0)


def test_open_paths_need_no_key_and_v1_does(stack: Stack) -> None:
    for path in ("/health", "/version", "/ping", "/metrics"):
        assert httpx.get(stack.url + path, timeout=10).status_code == 200, path
    assert httpx.get(stack.url + "/version", timeout=5).json() == {"version": "0.33.0"}
    denied = httpx.get(stack.url + "/v1/models", timeout=5)
    assert denied.status_code == 401 and denied.json() == {"error": "Unauthorized"}
    assert httpx.get(stack.url + "/v1/models", headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401


def test_models_lists_every_served_name_and_adapter(client: openai.OpenAI) -> None:
    cards = {card.id: card for card in client.models.list().data}
    assert {"test-model", "alias", "adapter-a"} <= set(cards)
    assert cards["test-model"].owned_by == "vllm"
    assert getattr(cards["adapter-a"], "parent", None) == "test-model"


@pytest.mark.parametrize("model", ["test-model", "alias", "adapter-a"])
def test_chat_and_completions_by_any_name(client: openai.OpenAI, model: str) -> None:
    chat = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    assert chat.choices[0].message.content
    completion = client.completions.create(model=model, prompt="hello", max_tokens=4)
    assert completion.choices[0].text


def test_guided_json_is_honoured_not_dropped(client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    reply = client.chat.completions.create(
        model="test-model",
        messages=[{"role": "user", "content": "where?"}],
        max_tokens=30,
        extra_body={"guided_json": schema},
    )
    assert "city" in json.loads(reply.choices[0].message.content or "")


def test_vllm_errors_come_back_in_vllm_shape(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as too_many:
        client.chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "x"}], logprobs=True, top_logprobs=10
        )
    assert "greater than max allowed: 5" in str(too_many.value)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError) as options:
        client.chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "x"}], stream_options={"include_usage": True}
        )
    assert options.value.body and "stream" in str(options.value.body)


def test_tool_schema_that_sglang_rejects_is_repaired(client: openai.OpenAI) -> None:
    tool = {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object", "properties": [], "required": None}},
    }
    reply = client.chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "x"}], tools=[tool], max_tokens=4  # type: ignore[list-item]
    )
    assert reply.choices


def test_tokenize_and_detokenize_in_vllm_shape(stack: Stack) -> None:
    tokens = httpx.post(stack.url + "/tokenize", json={"model": "test-model", "prompt": "a b c"}, timeout=10).json()
    assert {"count", "max_model_len", "tokens", "token_strs"} <= set(tokens)
    text = httpx.post(stack.url + "/detokenize", json={"model": "test-model", "tokens": tokens["tokens"]}, timeout=10)
    assert "prompt" in text.json()


def test_runtime_lora_load_and_unload(stack: Stack) -> None:
    body = {"lora_name": "adapter-b", "lora_path": "/loras/b"}
    loaded = httpx.post(stack.url + "/v1/load_lora_adapter", json=body, headers=AUTH, timeout=10)
    assert loaded.status_code == 200 and "added successfully" in loaded.text
    again = httpx.post(stack.url + "/v1/load_lora_adapter", json=body, headers=AUTH, timeout=10)
    # The production-stack LoRA controller counts exactly this as success.
    assert again.status_code == 400
    assert again.json()["type"] == "InvalidUserInput" and "has already been loaded" in again.json()["message"]
    ids = [c["id"] for c in httpx.get(stack.url + "/v1/models", headers=AUTH, timeout=10).json()["data"]]
    assert "adapter-b" in ids
    gone = httpx.post(stack.url + "/v1/unload_lora_adapter", json={"lora_name": "adapter-b"}, headers=AUTH, timeout=10)
    assert gone.status_code == 200


def test_sleep_and_wake_up(stack: Stack) -> None:
    assert httpx.post(stack.url + "/sleep?level=1", timeout=10).status_code == 200
    assert httpx.get(stack.url + "/is_sleeping", timeout=10).json() == {"is_sleeping": True}
    # vLLM's /health does not change while asleep: the liveness probe must not restart a sleeping pod.
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        assert stack.health() == 200
        time.sleep(0.5)
    assert httpx.post(stack.url + "/wake_up", timeout=10).status_code == 200
    assert httpx.get(stack.url + "/is_sleeping", timeout=10).json() == {"is_sleeping": False}


def test_sglang_admin_routes_are_closed(stack: Stack) -> None:
    for path in ("/flush_cache", "/abort_request", "/update_weights_from_disk", "/server_info", "/start_profile"):
        reply = httpx.post(stack.url + path, json={}, headers=AUTH, timeout=10)
        assert reply.status_code in (404, 405), path
        assert "error" in reply.json()


def test_request_id_is_echoed(stack: Stack) -> None:
    reply = httpx.get(stack.url + "/v1/models", headers={**AUTH, "X-Request-Id": "abc-123"}, timeout=10)
    assert reply.headers.get("x-request-id") == "abc-123"
