"""Response bodies and SSE chunks in SGLang's OpenAI shapes (nulls included, as SGLang dumps them)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from sim.scheduler import Event, Finish, TokenEvent
from sim.script import Script
from sim.textgen import token_id

DONE = b"data: [DONE]\n\n"


def sse(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


@dataclass
class Choice:
    """What one choice has produced so far."""

    pieces: list[str] = field(default_factory=list)
    finish: Finish | None = None
    started: bool = False  # the role chunk went out

    def add(self, event: Event) -> None:
        if isinstance(event, TokenEvent):
            self.pieces.append(event.text)
        else:
            self.finish = event

    def split(self, script: Script) -> tuple[str | None, str]:
        """(reasoning_content, content) of the pieces so far."""
        cut = script.reasoning_pieces
        return ("".join(self.pieces[:cut]) if cut else None), "".join(self.pieces[cut:])

    def calls_tool(self, script: Script) -> bool:
        return script.tool_name is not None and self.finish is not None and self.finish.reason == "stop"


def finish_fields(script: Script, choice: Choice) -> dict[str, Any]:
    fin = choice.finish
    if fin is None:
        return {"finish_reason": None, "matched_stop": None}
    if choice.calls_tool(script):
        return {"finish_reason": "tool_calls", "matched_stop": None}
    return {"finish_reason": fin.reason, "matched_stop": fin.matched_stop}


def usage(script: Script, choices: Sequence[Choice]) -> dict[str, Any]:
    """Prompt (and cached) tokens count once per prompt, completion tokens once per choice, as in SGLang."""
    finishes = [c.finish for c in choices if c.finish is not None]
    per_prompt = [f for i, f in enumerate(finishes) if i % script.n == 0]
    prompt = sum(f.prompt_tokens for f in per_prompt)
    completion = sum(f.completion_tokens for f in finishes)
    reasoning = sum(min(script.reasoning_pieces, f.completion_tokens) for f in finishes)
    details = {"cached_tokens": sum(f.cached_tokens for f in per_prompt)} if script.cache_report else None
    return {"prompt_tokens": prompt, "total_tokens": prompt + completion, "completion_tokens": completion,
            "prompt_tokens_details": details, "reasoning_tokens": reasoning, "completion_tokens_details": None}


def running_usage(script: Script, choice: Choice) -> dict[str, Any]:
    prompt = len(script.specs[0].prompt_ids)
    return {"prompt_tokens": prompt, "total_tokens": prompt + len(choice.pieces),
            "completion_tokens": len(choice.pieces), "prompt_tokens_details": None, "reasoning_tokens": 0}


def logprob_entry(piece: str, top: int) -> dict[str, Any]:
    lp = -round((token_id(piece.strip() or piece) % 997) / 1000 + 0.001, 4)
    alternatives = [(piece, lp)] + [(f" alt{k}", lp - k) for k in range(1, top)]
    return {"token": piece, "bytes": list(piece.encode()), "logprob": lp,
            "top_logprobs": [{"token": t, "bytes": list(t.encode()), "logprob": v} for t, v in alternatives[:top]]}


def tool_call(script: Script, index: int, arguments: str | None = "{}", with_header: bool = True) -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if with_header:
        call = {"id": f"call_{uuid.uuid4().hex[:24]}", "index": index, "type": "function",
                "function": {"name": script.tool_name, "arguments": arguments}}
    return call


def chat_message(script: Script, choice: Choice) -> dict[str, Any]:
    reasoning, content = choice.split(script)
    if choice.calls_tool(script):
        return {"role": "assistant", "content": None, "reasoning_content": reasoning,
                "tool_calls": [tool_call(script, 0)]}
    return {"role": "assistant", "content": content, "reasoning_content": reasoning}  # SGLang omits tool_calls


def chat_response(script: Script, choices: Sequence[Choice]) -> dict[str, Any]:
    out = []
    for i, c in enumerate(choices):
        logprobs = {"content": [logprob_entry(p, script.top_logprobs) for p in c.pieces]} if script.logprobs else None
        out.append({"index": i, "message": chat_message(script, c), "logprobs": logprobs, **finish_fields(script, c)})
    return {"id": script.rid, "object": "chat.completion", "created": script.created, "model": script.model,
            "choices": out, "usage": usage(script, choices), "metadata": {"weight_version": "default"}}


def delta(role: str | None = None, content: str | None = None, reasoning: str | None = None,
          tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """As SGLang 0.5.23 sends a delta: reasoning_content always (null), the other fields only when set."""
    out: dict[str, Any] = {"reasoning_content": reasoning}
    optional = {"role": role, "content": content, "tool_calls": tool_calls}
    return {**out, **{key: value for key, value in optional.items() if value is not None}}


def chat_chunk(script: Script, index: int, delta_: dict[str, Any], finish: dict[str, Any] | None = None,
               logprobs: Any = None, usage_: Any = None) -> dict[str, Any]:
    fields = finish or {"finish_reason": None, "matched_stop": None}
    chunk = {"id": script.rid, "object": "chat.completion.chunk", "created": script.created, "model": script.model,
             "choices": [{"index": index, "delta": delta_, "logprobs": logprobs, **fields}]}
    return {**chunk, "usage": usage_} if usage_ is not None else chunk  # SGLang sends no `usage: null`


def usage_chunk(script: Script, choices: Sequence[Choice]) -> dict[str, Any]:
    obj = "chat.completion.chunk" if script.kind == "chat" else "text_completion"
    return {"id": script.rid, "object": obj, "created": script.created, "model": script.model, "choices": [],
            "usage": usage(script, choices)}


def completion_response(script: Script, choices: Sequence[Choice]) -> dict[str, Any]:
    out = []
    for i, c in enumerate(choices):
        text = (script.echo_texts[i] if script.echo_texts else "") + "".join(c.pieces)
        out.append({"index": i, "text": text, "logprobs": None, **finish_fields(script, c)})
    return {"id": script.rid, "object": "text_completion", "created": script.created, "model": script.model,
            "choices": out, "usage": usage(script, choices), "metadata": {"weight_version": "default"}}


def completion_chunk(script: Script, index: int, text: str, finish: dict[str, Any] | None = None,
                     usage_: Any = None) -> dict[str, Any]:
    fields = finish or {"finish_reason": None, "matched_stop": None}
    return {"id": script.rid, "object": "text_completion", "created": script.created, "model": script.model,
            "choices": [{"index": index, "text": text, "logprobs": None, **fields}], "usage": usage_}
