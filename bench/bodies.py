"""Request bodies the benchmark sends: a small chat, an OpenClaw-style 20-tool agent turn, a 1 MB prompt."""

from __future__ import annotations

from typing import Any

import orjson

MODEL = "bench-model"


def small_chat(stream: bool = False) -> bytes:
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello in one short sentence."}],
        "max_tokens": 32,
    }
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


def _tool(i: int, messy: bool) -> dict[str, Any]:
    """An MCP-server-style tool as OpenClaw forwards it: nested objects and arrays, enums, defaults, draft-07
    `$schema`, `strict: true`; a messy one has what SGLang rejects deep inside: a PHP-encoded empty map
    `properties: []` and `required: null` (sgl-project/sglang#35242)."""
    nested: dict[str, Any] = {
        "type": "object",
        "properties": {
            "recursive": {"type": "boolean", "default": False},
            "glob": {"type": "string", "pattern": "^[^\\n]*$"},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            "meta": {"type": "object", "properties": {"owner": {"type": "string"}, "labels": {"type": "object"}}},
        },
        "required": ["recursive"],
        "additionalProperties": False,
    }
    if messy:
        nested["properties"]["meta"]["properties"]["labels"] = {"type": "object", "properties": []}
        nested["properties"]["meta"]["required"] = None
    params = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "path": {"type": "string", "description": f"Absolute path for operation {i}."},
            "mode": {"type": "string", "enum": ["read", "write", "append"], "default": "read"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
            "options": nested,
            "filters": {
                "type": "array",
                "items": {
                    "anyOf": [
                        {"type": "object", "properties": {"field": {"type": "string"}, "op": {"type": "string"}}},
                        {"type": "null"},
                    ]
                },
            },
        },
        "required": ["path", "mode"],
    }
    return {
        "type": "function",
        "function": {"name": f"tool_{i}", "description": f"Tool number {i}.", "parameters": params, "strict": True},
    }


def openclaw_dict(n_tools: int = 20, messy_every: int = 5) -> dict[str, Any]:
    """An OpenClaw agent turn (pi-ai openai-completions shape): long system prompt, tool-call history, tools.

    Every `messy_every`-th tool needs repair before SGLang accepts it (0: none does, 1: all do)."""
    history: list[dict[str, Any]] = [{"role": "system", "content": "You are a personal assistant. " * 200}]
    for turn in range(6):
        history.append({"role": "user", "content": f"Please do step {turn}."})
        call = {"id": f"call_{turn}", "type": "function", "function": {"name": "tool_1", "arguments": '{"path":"/x"}'}}
        history.append({"role": "assistant", "content": None, "tool_calls": [call]})
        history.append({"role": "tool", "tool_call_id": f"call_{turn}", "content": "ok " * 50})
    return {
        "model": MODEL,
        "messages": history,
        "tools": [_tool(i, bool(messy_every) and i % messy_every == 0) for i in range(n_tools)],
        "stream": True,
        "stream_options": {"include_usage": True},
        "store": False,
        "max_completion_tokens": 4096,
        "chat_template_kwargs": {"enable_thinking": True, "preserve_thinking": True},
    }


def openclaw(n_tools: int = 20) -> bytes:
    return orjson.dumps(openclaw_dict(n_tools))


def big_prompt(size: int = 1 << 20) -> bytes:
    """A non-streaming chat whose user message makes the body `size` bytes (plain ASCII prose)."""
    skeleton = orjson.dumps({"model": MODEL, "messages": [{"role": "user", "content": ""}], "max_tokens": 16})
    words = "The quick brown fox jumps over the lazy dog. "
    text = (words * (size // len(words) + 1))[: max(0, size - len(skeleton))]
    return orjson.dumps({"model": MODEL, "messages": [{"role": "user", "content": text}], "max_tokens": 16})
