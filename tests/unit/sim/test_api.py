"""Response shapes of the simulated SGLang, in-process (no sockets)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sim.app import create_app
from sim.knobs import Settings
from sim.sglang_argv import parse_args

CHAT = {"model": "m", "messages": [{"role": "user", "content": "one two three"}]}
FAST = {"VLLM_SHIM_SIM_WARMUP_SECONDS": "0", "VLLM_SHIM_SIM_TOKENS_PER_SECOND": "0"}


def make_app(*argv: str, **knobs: str) -> FastAPI:
    return create_app(parse_args(["--model-path", "org/sim-model", *argv]), Settings.from_env({**FAST, **knobs}))


def client(*argv: str, **knobs: str) -> TestClient:
    return TestClient(make_app(*argv, **knobs))


def sse_events(text: str) -> list[Any]:
    datas = [line[len("data: "):] for line in text.split("\n\n") if line.startswith("data: ")]
    assert datas[-1] == "[DONE]"
    return [json.loads(d) for d in datas[:-1]]


def test_health_ready_ping_root() -> None:
    c = client()
    assert c.get("/health").status_code == 200 and c.get("/health").content == b""
    assert c.get("/health_generate").status_code == 200
    assert c.get("/ready").status_code == 200 and c.get("/ping").status_code == 200
    assert c.get("/").json() == "SGLang is running" and c.head("/").status_code == 200


def test_warming_up_and_never_healthy_answer_503() -> None:
    for c in (client(VLLM_SHIM_SIM_WARMUP_SECONDS="60"), client(VLLM_SHIM_SIM_FAULT="never_healthy")):
        assert c.get("/health").status_code == 503
        assert c.get("/ready").status_code == 503
    assert client("--skip-server-warmup", VLLM_SHIM_SIM_WARMUP_SECONDS="60").get("/health").status_code == 200


def test_models_cards_and_404() -> None:
    c = client("--served-model-name", "served", "--context-length", "4096", "--lora-paths", "ad=/lora/ad")
    data = c.get("/v1/models").json()
    assert data["object"] == "list"
    base, adapter = data["data"]
    assert base | {"created": 0} == {"id": "served", "object": "model", "created": 0, "owned_by": "sglang",
                                     "root": "org/sim-model", "parent": None, "max_model_len": 4096}
    assert (adapter["id"], adapter["root"], adapter["parent"], adapter["max_model_len"]) == ("ad", "/lora/ad",
                                                                                              "served", None)
    assert c.get("/v1/models/served").json()["id"] == "served"
    missing = c.get("/v1/models/nope/x")
    assert missing.status_code == 404
    assert missing.json() == {"error": {"message": "The model 'nope/x' does not exist", "type": "invalid_request_error",
                                        "param": "model", "code": "model_not_found"}}


def test_info_routes() -> None:
    c = client("--tool-call-parser", "hermes")
    info = c.get("/model_info").json()
    assert info["model_path"] == "org/sim-model" and info["tool_call_parser"] == "hermes"
    assert info == c.get("/get_model_info").json()
    server = c.get("/server_info").json()
    assert server["version"] == "0.5.23" and server["tp_size"] == 1 and server["port"] == 30000
    assert c.get("/v1/loads").json()["loads"][0]["num_running_reqs"] == 0
    assert c.get("/version").status_code == 404
    assert c.get("/nope").json() == {"detail": "Not Found"}


def test_chat_non_streaming_shape() -> None:
    body = client().post("/v1/chat/completions", json={**CHAT, "rid": "req-1", "max_tokens": 4}).json()
    assert body["id"] == "req-1" and body["object"] == "chat.completion" and body["model"] == "m"
    (choice,) = body["choices"]
    assert choice["message"] == {"role": "assistant", "content": "one two three one", "reasoning_content": None}
    assert (choice["finish_reason"], choice["matched_stop"]) == ("length", None)
    assert body["usage"] == {"prompt_tokens": 5, "total_tokens": 9, "completion_tokens": 4,
                             "prompt_tokens_details": None, "reasoning_tokens": 0, "completion_tokens_details": None}


def test_chat_stops_naturally_and_honours_stop_strings() -> None:
    c = client()
    natural = c.post("/v1/chat/completions", json={**CHAT, "max_completion_tokens": 100, "max_tokens": 1}).json()
    assert natural["choices"][0]["finish_reason"] == "stop" and natural["choices"][0]["matched_stop"] == 2
    assert natural["usage"]["completion_tokens"] == 8  # short prompts are echoed up to 8 tokens
    stopped = c.post("/v1/chat/completions", json={**CHAT, "stop": ["three"]}).json()["choices"][0]
    assert (stopped["message"]["content"], stopped["matched_stop"]) == ("one two", "three")


def test_chat_streaming_with_usage_and_n() -> None:
    body = {**CHAT, "stream": True, "n": 2, "max_tokens": 3, "stream_options": {"include_usage": True}}
    response = client().post("/v1/chat/completions", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert {e["object"] for e in events} == {"chat.completion.chunk"}
    text = {0: "", 1: ""}
    for e in events[:-1]:
        (choice,) = e["choices"]
        text[choice["index"]] += choice["delta"].get("content") or ""
    assert text == {0: "one two three", 1: "two three one"}
    finals = [e["choices"][0] for e in events[:-1] if e["choices"][0]["finish_reason"]]
    assert sorted(f["index"] for f in finals) == [0, 1] and {f["finish_reason"] for f in finals} == {"length"}
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == 6


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "second"}}])
def test_forced_tool_choice_returns_a_tool_call(choice: Any, stream: bool) -> None:
    tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}} for n in ("first",
                                                                                                     "second")]
    response = client("--tool-call-parser", "hermes").post(
        "/v1/chat/completions", json={**CHAT, "tools": tools, "tool_choice": choice, "stream": stream})
    expected = "first" if choice == "required" else "second"
    if not stream:
        (c,) = response.json()["choices"]
        assert c["finish_reason"] == "tool_calls" and c["message"]["content"] is None
        (call,) = c["message"]["tool_calls"]
        assert call["function"] == {"name": expected, "arguments": "{}"} and call["id"].startswith("call_")
        return
    events = sse_events(response.text)
    calls = [tc for e in events for tc in (e["choices"][0]["delta"].get("tool_calls") or [])]
    assert calls[0]["function"]["name"] == expected
    assert "".join(tc["function"]["arguments"] for tc in calls) == "{}"
    assert events[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_forced_tool_choice_without_a_parser_is_text_as_in_sglang() -> None:
    tools = [{"type": "function", "function": {"name": "first", "parameters": {"type": "object"}}}]
    body = {**CHAT, "tools": tools, "tool_choice": "required", "max_tokens": 50}
    (c,) = client().post("/v1/chat/completions", json=body).json()["choices"]
    assert c["finish_reason"] == "stop" and "tool_calls" not in c["message"] and c["message"]["content"]


def test_json_schema_response_format_yields_matching_json() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "n": {"type": "integer"},
                                               "tags": {"type": "array"}}, "required": ["city", "n"]}
    rf = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    content = client().post("/v1/chat/completions", json={**CHAT, "response_format": rf, "max_tokens": 50}).json()[
        "choices"][0]["message"]["content"]
    jsonschema.validate(json.loads(content), schema)


def test_reasoning_parser_splits_reasoning_content() -> None:
    c = client("--reasoning-parser", "qwen3")
    body = c.post("/v1/chat/completions", json={**CHAT, "max_tokens": 8}).json()
    msg = body["choices"][0]["message"]
    assert msg["reasoning_content"] == "Let me think about it." and msg["content"] == "one two three"
    assert body["usage"]["reasoning_tokens"] == 5
    off = {**CHAT, "chat_template_kwargs": {"enable_thinking": False}}
    assert c.post("/v1/chat/completions", json=off).json()["choices"][0]["message"]["reasoning_content"] is None


def test_completions_batch_echo_and_stream() -> None:
    c = client()
    body = c.post("/v1/completions", json={"prompt": ["a b", "c"], "max_tokens": 2, "echo": True}).json()
    assert body["object"] == "text_completion" and body["model"] == "default"
    assert [ch["text"] for ch in body["choices"]] == ["a ba b", "cc c"]
    assert body["usage"]["prompt_tokens"] == 3 and body["usage"]["completion_tokens"] == 4
    events = sse_events(c.post("/v1/completions", json={"prompt": "x y", "stream": True, "max_tokens": 2}).text)
    assert "".join(e["choices"][0]["text"] for e in events) == "x y"
    assert events[-1]["choices"][0]["finish_reason"] == "length"


def test_native_generate() -> None:
    c = client()
    body = c.post("/generate", json={"text": "hi there", "sampling_params": {"max_new_tokens": 3}}).json()
    assert body["text"] == "hi there hi" and body["meta_info"]["finish_reason"] == {"type": "length", "length": 3}
    events = sse_events(c.post("/generate", json={"text": "a", "stream": True,
                                                  "sampling_params": {"max_new_tokens": 2}}).text)
    assert events[-1]["text"] == "a a" and events[0]["meta_info"]["finish_reason"] is None
    assert c.post("/generate", json={}).json() == {"error": {"message": "Either text, input_ids or input_embeds "
                                                                        "should be provided."}}


def test_tokenize_detokenize_embeddings_rerank() -> None:
    c = client("--context-length", "2048")
    tok = c.post("/tokenize", json={"prompt": "hello big world"}).json()
    assert tok["count"] == 3 and tok["max_model_len"] == 2048
    assert c.post("/v1/detokenize", json={"tokens": tok["tokens"]}).json() == {"text": "hello big world"}
    chat_tok = c.post("/v1/tokenize", json={"messages": CHAT["messages"]}).json()
    assert chat_tok["count"] == 5  # same count as the chat usage.prompt_tokens
    emb = c.post("/v1/embeddings", json={"input": ["a", "b"], "dimensions": 8}).json()
    assert [len(d["embedding"]) for d in emb["data"]] == [8, 8] and emb["object"] == "list"
    ranked = c.post("/v1/rerank", json={"query": "red car", "documents": ["blue sky", "a red car", "red"]}).json()
    assert [r["index"] for r in ranked] == [1, 2, 0] and ranked[0]["document"] == "a red car"
    assert len(c.put("/v1/rerank", json={"query": "q", "documents": ["a", "b"], "top_n": 1}).json()) == 1


def test_admin_routes() -> None:
    c = client("--enable-memory-saver")
    flushed = c.post("/flush_cache")
    assert flushed.status_code == 200 and flushed.text.startswith("Cache flushed.")
    assert flushed.headers["content-type"].startswith("text/plain")
    assert c.get("/flush_cache").status_code == 200
    assert c.post("/release_memory_occupation").status_code == 400  # body required
    assert c.post("/release_memory_occupation", json={}).json() is None
    assert c.get("/health").status_code == 503
    assert c.post("/resume_memory_occupation", json={"tags": ["weights"]}).json() is None
    assert c.get("/health").status_code == 200
    assert c.post("/abort_request").status_code == 400
    assert c.post("/abort_request", json={"abort_all": True}).content == b""
    assert c.post("/pause_generation", json={"mode": "in_place"}).json()["status"] == "ok"
    assert c.get("/ready").status_code == 503 and c.get("/ping").status_code == 200
    assert c.post("/continue_generation").json()["status"] == "ok"
    assert c.get("/ready").status_code == 200


def test_lora_load_unload() -> None:
    c = client("--enable-lora")
    loaded = c.post("/load_lora_adapter", json={"lora_name": "a", "lora_path": "/p/a", "extra": 1})
    assert loaded.status_code == 200
    assert loaded.json() == {"rid": None, "http_worker_ipc": None, "success": True, "error_message": None,
                             "loaded_adapters": {"a": "/p/a"}}
    again = c.post("/load_lora_adapter", json={"lora_name": "a", "lora_path": "/p/a"})
    assert again.status_code == 400 and again.json()["success"] is False
    assert c.post("/v1/chat/completions", json={**CHAT, "model": "m:a"}).status_code == 200
    assert c.post("/v1/chat/completions", json={**CHAT, "model": "m:zz"}).status_code == 400
    assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["org/sim-model", "a"]
    assert c.post("/unload_lora_adapter", json={"lora_name": "a"}).json()["loaded_adapters"] == {}
    assert c.post("/unload_lora_adapter", json={"lora_name": "a"}).status_code == 400
    assert c.post("/load_lora_adapter", json={"lora_name": "b"}).status_code == 400  # lora_path required
    assert client().post("/load_lora_adapter", json={"lora_name": "b", "lora_path": "/b"}).status_code == 400


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/v1/models", {}, 401),
        ("/v1/models", {"Authorization": "Bearer wrong"}, 401),
        ("/v1/models", {"Authorization": "Bearer key"}, 200),
        ("/health", {}, 200),
        ("/health_generate", {}, 200),
        ("/ready", {}, 200),
        ("/metrics", {}, 200),
        ("/ping", {}, 401),
        ("/flush_cache", {"Authorization": "Bearer key"}, 403),
        ("/flush_cache", {"Authorization": "Bearer admin"}, 200),
        ("/flush_cache", {}, 401),
    ],
)
def test_api_key(path: str, headers: dict[str, str], status: int) -> None:
    c = client("--api-key", "key", "--admin-api-key", "admin", "--enable-metrics")
    response = c.get(path, headers=headers)
    assert response.status_code == status
    if status in (401, 403):
        assert response.json() == {"error": "Unauthorized" if status == 401 else "Forbidden"}


def test_garbage_fault_answers_generation_routes_with_non_json() -> None:
    c = client(VLLM_SHIM_SIM_FAULT="garbage")
    response = c.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        json.loads(response.content)
    assert c.get("/v1/models").status_code == 200
