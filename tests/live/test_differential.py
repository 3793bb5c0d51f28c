"""Differential: the same requests through the stack to the simulator and to real SGLang (scripted scheduler).

Both must answer with the same status, the same error shape and the same response structure; ids, timestamps,
token text and token counts may differ (the two tokenize differently). A difference here is a bug in `sim/`
(or, for shapes the middleware builds, in the middleware's handling of one engine).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.live.engines import READY_TIMEOUT, engine_environ, live_engines
from tests.live.stack import Stack, start_stack

KEY = "sk-differential"
HEADERS = {"Authorization": f"Bearer {KEY}"}
# Values that are part of the contract, not of the generated content: compared as values, not only as types.
VALUE_KEYS = frozenset({"object", "finish_reason", "role", "type", "code", "param"})
CHAT = "/v1/chat/completions"
USER = [{"role": "user", "content": "where is the city of Paris"}]
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}  # fmt: skip
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

CASES: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "models": ("GET", "/v1/models", None),
    "chat": ("POST", CHAT, {"model": "test-model", "messages": USER, "max_tokens": 5}),
    "chat-natural-stop": ("POST", CHAT, {"model": "test-model", "messages": USER, "max_tokens": 200}),
    "chat-stream-usage": ("POST", CHAT, {"model": "test-model", "messages": USER, "max_tokens": 4, "stream": True,
                                         "stream_options": {"include_usage": True}}),
    "chat-logprobs": ("POST", CHAT, {"model": "test-model", "messages": USER, "max_tokens": 3, "logprobs": True,
                                     "top_logprobs": 2}),
    "chat-json-schema": ("POST", CHAT, {"model": "test-model", "messages": USER, "max_tokens": 60,
                                        "response_format": {"type": "json_schema",
                                                            "json_schema": {"name": "c", "schema": SCHEMA}}}),
    "chat-tool-required": ("POST", CHAT, {"model": "test-model", "messages": USER, "max_tokens": 80,
                                          "tools": [TOOL], "tool_choice": "required"}),
    "chat-stop-string": ("POST", CHAT, {"model": "test-model", "messages": USER, "max_tokens": 30,
                                        "stop": ["city"]}),
    "completion": ("POST", "/v1/completions", {"model": "test-model", "prompt": "one two three", "max_tokens": 4}),
    "completion-stream": ("POST", "/v1/completions", {"model": "test-model", "prompt": "one two", "max_tokens": 3,
                                                      "stream": True}),
    "tokenize": ("POST", "/tokenize", {"model": "test-model", "prompt": "one two three"}),
    "bad-messages": ("POST", CHAT, {"model": "test-model", "messages": "not a list"}),
    "unknown-model": ("POST", CHAT, {"model": "no-such-model", "messages": USER}),
    "too-many-logprobs": ("POST", CHAT, {"model": "test-model", "messages": USER, "logprobs": True,
                                         "top_logprobs": 10}),
    "over-context": ("POST", CHAT, {"model": "test-model", "messages": USER, "max_tokens": 100000}),
    "bad-temperature": ("POST", CHAT, {"model": "test-model", "messages": USER, "temperature": -1}),
}  # fmt: skip


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Stack]]:
    if live_engines() != ["sim", "sglang"]:
        pytest.skip("the differential test needs both engines (VLLM_SHIM_LIVE_ENGINES)")
    args = ("--api-key", KEY, "--max-model-len", "4096", "--max-logprobs", "5")
    started = {engine: start_stack(tmp_path_factory.mktemp(f"diff-{engine}"), *args, **engine_environ(engine))
               for engine in ("sglang", "sim")}  # fmt: skip
    try:
        for engine, stack in started.items():  # both start at once: the real server's start-up hides the sim's
            stack.wait_health(200, timeout=READY_TIMEOUT[engine])
        yield started
    finally:
        for stack in started.values():
            stack.stop()


def shape(value: Any, key: str = "") -> Any:
    """The structure of a JSON value: keys, and types for leaves, except contract values (VALUE_KEYS)."""
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0], key)] if value else []
    if key in VALUE_KEYS:
        return value
    return "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__


def answer(stack: Stack, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
    reply = httpx.request(method, stack.url + path, json=body, headers=HEADERS, timeout=60)
    if not reply.headers.get("content-type", "").startswith("text/event-stream"):
        return reply.status_code, shape(reply.json())
    events = [line[len("data: "):] for line in reply.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]", events
    chunks = [shape(json.loads(event)) for event in events[:-1]]
    # Chunk counts differ with tokenization: compare the first and last chunks and every distinct shape.
    distinct = {json.dumps(c, sort_keys=True): "seen" for c in chunks}
    return reply.status_code, {"first": chunks[0], "last": chunks[-1], "distinct": distinct}


def differences(sim: Any, real: Any, path: str = "") -> Iterator[str]:
    """Where two shapes differ, one line per place: what a failure needs to say."""
    if isinstance(sim, dict) and isinstance(real, dict):
        for key in sorted(set(sim) | set(real)):
            if key not in real:
                yield f"{path}.{key}: only sim has it ({sim[key]!r})"
            elif key not in sim:
                yield f"{path}.{key}: only sglang has it ({real[key]!r})"
            else:
                yield from differences(sim[key], real[key], f"{path}.{key}")
    elif isinstance(sim, list) and isinstance(real, list) and len(sim) == len(real):
        for i, (a, b) in enumerate(zip(sim, real, strict=True)):
            yield from differences(a, b, f"{path}[{i}]")
    elif sim != real:
        yield f"{path}: sim {sim!r} != sglang {real!r}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_sim_and_sglang_answer_alike(stacks: dict[str, Stack], case: str) -> None:
    method, path, body = CASES[case]
    real = answer(stacks["sglang"], method, path, body)
    simulated = answer(stacks["sim"], method, path, body)
    found = list(differences(list(simulated), list(real)))
    assert not found, "\n".join(found)
