"""Turn a validated OpenAI request into a `Script`: what each choice will "generate", and how to render it.

All checks that can fail run here, before any byte is sent, so a bad streaming request still gets a plain HTTP
400 (SGLang returns errors raised before the first chunk that way too).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sim.errors import SimError
from sim.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    LegacyStructuralTagResponseFormat,
    ResponseFormat,
    StructuralTagResponseFormat,
    ToolChoice,
)
from sim.scheduler import SeqSpec
from sim.state import SimState
from sim.textgen import chat_prompt, echo_pieces, json_pieces, last_user_text
from sim.validate import Sampling, check_context, check_tools_vs_constraints, resolve_lora, validate_chat

DEFAULT_CHAT_MAX_TOKENS = 32
REASONING_PIECES = ("Let", " me", " think", " about", " it.")


@dataclass(frozen=True)
class Script:
    kind: Literal["chat", "completion"]
    rid: str
    model: str
    created: int
    stream: bool
    specs: tuple[SeqSpec, ...]
    include_usage: bool = False
    continuous_usage: bool = False
    n: int = 1
    tool_name: str | None = None
    reasoning_pieces: int = 0  # how many leading pieces of each choice are reasoning_content
    logprobs: bool = False
    top_logprobs: int = 0
    echo_texts: tuple[str, ...] = ()  # completions with echo: the prompt text of each choice
    cache_report: bool = False


def _rid(requested: str | list[str] | None, state: SimState) -> str:
    rid = requested[0] if isinstance(requested, list) and requested else requested
    if isinstance(rid, str) and rid:
        if state.engine.has_rid(rid):
            raise SimError(f"Duplicate request ID detected: {rid}")
        return rid
    return uuid.uuid4().hex


def _schema_from_format(rf: Any) -> tuple[int, Any]:
    """(constraint count, schema to imitate) for a response_format."""
    if isinstance(rf, ResponseFormat):
        if rf.type == "json_schema" and rf.json_schema is not None:
            return 1, rf.json_schema.schema_
        if rf.type == "json_object":
            return 1, {"type": "object"}
        return 0, None
    if isinstance(rf, StructuralTagResponseFormat | LegacyStructuralTagResponseFormat):
        return 1, None
    return 0, None


def _thinking(req: ChatCompletionRequest, state: SimState) -> bool:
    if not state.cfg.reasoning_parser or not req.separate_reasoning or req.reasoning_effort == "none":
        return False
    kwargs = req.chat_template_kwargs or {}
    return bool(kwargs.get("enable_thinking", kwargs.get("thinking", True)))


def _forced_tool(req: ChatCompletionRequest) -> str | None:
    if not req.tools:
        return None
    if isinstance(req.tool_choice, ToolChoice):
        return req.tool_choice.function.name
    return req.tools[0].function.name if req.tool_choice == "required" else None


def _stops(stop: str | list[str] | None) -> tuple[str, ...]:
    return (stop,) if isinstance(stop, str) else tuple(stop or ())


def _chat_sampling(req: ChatCompletionRequest, max_new: int | None, constraints: int) -> Sampling:
    return Sampling(
        temperature=1.0 if req.temperature is None else req.temperature,
        top_p=1.0 if req.top_p is None else req.top_p,
        top_k=-1 if req.top_k is None else req.top_k,
        min_p=req.min_p or 0.0, frequency_penalty=req.frequency_penalty, presence_penalty=req.presence_penalty,
        repetition_penalty=1.0 if req.repetition_penalty is None else req.repetition_penalty,
        max_new_tokens=max_new, min_new_tokens=req.min_tokens,
        constraints=constraints + bool(req.regex) + bool(req.ebnf),
    )


def _chat_pieces(req: ChatCompletionRequest, choice: int, tool_name: str | None, schema: Any,
                 reasoning: tuple[str, ...]) -> list[str]:
    if tool_name is not None:
        return ['{"name": ', f'"{tool_name}", ', '"arguments": ', "{}}"]
    if schema is not None:
        return json_pieces(schema)
    return [*reasoning, *echo_pieces(last_user_text(req.messages), offset=choice)]


def script_chat(req: ChatCompletionRequest, state: SimState) -> Script:
    cfg = state.cfg
    validate_chat(req, cfg)
    check_tools_vs_constraints(req)
    resolve_lora(req.model, req.lora_path, cfg, state.loras)
    max_new = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    constraints, schema = _schema_from_format(req.response_format)
    _chat_sampling(req, max_new, constraints).verify()
    prompt_ids = tuple(state.vocab.encode(chat_prompt(req.messages)))
    check_context(len(prompt_ids), max_new, cfg)
    rid = _rid(req.rid, state)
    # SGLang parses tool calls only with --tool-call-parser; without one a forced call comes back as text.
    tool_name = _forced_tool(req) if cfg.tool_call_parser else None
    reasoning = REASONING_PIECES if _thinking(req, state) and tool_name is None and schema is None else ()
    limit = max_new if max_new is not None else min(DEFAULT_CHAT_MAX_TOKENS, cfg.context_length - len(prompt_ids))
    n = max(req.n, 1)
    specs = tuple(
        SeqSpec(rid, prompt_ids, _chat_pieces(req, i, tool_name, schema, reasoning), limit, req.stream,
                req.min_tokens, req.ignore_eos, _stops(req.stop))
        for i in range(n)
    )
    options = req.stream_options
    return Script(
        kind="chat", rid=rid, model=req.model, created=int(time.time()), stream=req.stream, specs=specs,
        include_usage=bool(options and options.include_usage),
        continuous_usage=bool(options and options.continuous_usage_stats), n=n, tool_name=tool_name,
        reasoning_pieces=len(reasoning), logprobs=req.logprobs, top_logprobs=req.top_logprobs or 0,
        cache_report=cfg.enable_cache_report,
    )


def _completion_prompts(prompt: Any, state: SimState) -> list[tuple[str, tuple[int, ...]]]:
    """(text, ids) per prompt of a completions request (str, list[str], list[int] or list[list[int]])."""
    if isinstance(prompt, str):
        prompts: list[Any] = [prompt]
    elif prompt and all(isinstance(p, int) for p in prompt):
        prompts = [prompt]
    else:
        prompts = list(prompt)
    out = []
    for p in prompts:
        if isinstance(p, str):
            out.append((p, tuple(state.vocab.encode(p))))
        else:
            out.append((state.vocab.decode(p), tuple(p)))
    return out


def _completion_schema(req: CompletionRequest) -> tuple[int, Any]:
    constraints, schema = _schema_from_format(req.response_format)
    if req.json_schema:
        constraints += 1
        try:
            schema = json.loads(req.json_schema)
        except json.JSONDecodeError:
            schema = {}
    return constraints + bool(req.regex) + bool(req.ebnf), schema


def script_completion(req: CompletionRequest, state: SimState) -> Script:
    cfg = state.cfg
    resolve_lora(req.model, req.lora_path, cfg, state.loras)
    constraints, schema = _completion_schema(req)
    Sampling(
        temperature=req.temperature, top_p=req.top_p, top_k=req.top_k, min_p=req.min_p or 0.0,
        frequency_penalty=req.frequency_penalty, presence_penalty=req.presence_penalty,
        repetition_penalty=1.0 if req.repetition_penalty is None else req.repetition_penalty,
        max_new_tokens=req.max_tokens, min_new_tokens=req.min_tokens, constraints=constraints,
    ).verify()
    prompts = _completion_prompts(req.prompt, state)
    for _, ids in prompts:
        check_context(len(ids), req.max_tokens, cfg)
    rid = _rid(req.rid, state)
    n = max(req.n, 1)
    specs, echoes = [], []
    for text, ids in prompts:
        for i in range(n):
            pieces = json_pieces(schema) if schema is not None else echo_pieces(text, offset=i)
            specs.append(SeqSpec(rid, ids, pieces, req.max_tokens, req.stream, req.min_tokens, req.ignore_eos,
                                 _stops(req.stop)))
            echoes.append(text)
    options = req.stream_options
    return Script(
        kind="completion", rid=rid, model=req.model, created=int(time.time()), stream=req.stream,
        specs=tuple(specs), include_usage=bool(options and options.include_usage),
        continuous_usage=bool(options and options.continuous_usage_stats), n=n,
        echo_texts=tuple(echoes) if req.echo else (), cache_report=cfg.enable_cache_report,
    )
