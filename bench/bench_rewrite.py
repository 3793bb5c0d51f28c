"""Time `needs_parse`, `orjson.loads` and `rewrite` on an OpenClaw-style chat body with 20 MCP-style tools.

Run: `python bench/bench_rewrite.py [--tools N] [--repeat R]`. Prints microseconds per call (best of R
rounds, each averaged over many calls). No thresholds are asserted anywhere; this is for people.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from middleware.config import MiddlewareConfig
from middleware.rewrite import dump, needs_parse, rewrite
from middleware.rw_base import RewriteContext

ROUTE = "/v1/chat/completions"


def tool(i: int, *, messy: bool) -> dict[str, Any]:
    """An MCP-server-like tool schema: nested objects, arrays, enums, defaults, draft-07 `$schema`."""
    params: dict[str, Any] = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "path": {"type": "string", "description": f"Absolute path for operation {i}."},
            "mode": {"type": "string", "enum": ["read", "write", "append"], "default": "read"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
            "options": {
                "type": "object",
                "properties": {
                    "recursive": {"type": "boolean"},
                    "glob": {"type": "string", "pattern": "^[^\\n]*$"},
                    "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                },
                "required": ["recursive"],
            },
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
        "required": ["path"],
    }
    if messy:
        params["properties"]["options"]["properties"]["extra"] = {"type": "object", "properties": []}
        params["properties"]["options"]["required"] = None
    return {
        "type": "function",
        "function": {"name": f"tool_{i}", "description": f"Tool number {i}.", "parameters": params},
    }


def openclaw_body(n_tools: int = 20, *, messy: bool = False) -> dict[str, Any]:
    history: list[dict[str, Any]] = [{"role": "system", "content": "You are a personal assistant. " * 200}]
    for turn in range(6):
        history.append({"role": "user", "content": f"Please do step {turn}."})
        call = {"id": f"call_{turn}", "type": "function", "function": {"name": "tool_1", "arguments": '{"path":"/x"}'}}
        history.append({"role": "assistant", "content": None, "tool_calls": [call]})
        history.append({"role": "tool", "tool_call_id": f"call_{turn}", "content": "ok " * 50})
    return {
        "model": "qwen3",
        "messages": history,
        "tools": [tool(i, messy=messy) for i in range(n_tools)],
        "stream": True,
        "stream_options": {"include_usage": True},
        "store": False,
        "max_completion_tokens": 4096,
        "chat_template_kwargs": {"enable_thinking": True, "preserve_thinking": True},
    }


def per_call_us(fn: Any, repeat: int) -> float:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tools", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ctx = RewriteContext(MiddlewareConfig(served_model_names=("qwen3",)))
    plain = {"model": "qwen3", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 64}
    cases = {
        "plain chat (no tools)": plain,
        f"openclaw {args.tools} tools, clean": openclaw_body(args.tools),
        f"openclaw {args.tools} tools, messy": openclaw_body(args.tools, messy=True),
    }
    for name, body in cases.items():
        raw = dump(body)
        result = rewrite(ROUTE, body, ctx)
        print(f"{name}: {len(raw)} bytes, needs_parse={needs_parse(ROUTE, raw, ctx)}, changed={result.changed}")
        print(f"  needs_parse  {per_call_us(lambda raw=raw: needs_parse(ROUTE, raw, ctx), args.repeat):8.1f} us")
        print(f"  orjson.loads {per_call_us(lambda raw=raw: orjson.loads(raw), args.repeat):8.1f} us")
        print(f"  rewrite      {per_call_us(lambda body=body: rewrite(ROUTE, body, ctx), args.repeat):8.1f} us")
        if result.changed:
            print(f"  dump         {per_call_us(lambda b=result.body: dump(b), args.repeat):8.1f} us")


if __name__ == "__main__":
    main()
