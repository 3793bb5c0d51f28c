"""What only the engine knows for sure, asked when it matters: the LoRA adapters it has loaded, and the
context length when the command line left it to the model.

Every middleware worker keeps the adapter names the rewrite needs (`model: "<adapter>"` →
`<served>:<adapter>`). A worker that did not serve the /v1/load_lora_adapter call, or one that just
restarted, has an older list; so before answering vLLM's unknown-model 404 it asks SGLang's /v1/models once
(issue 14 item 4). The 404 path is the only one that pays.
"""

from __future__ import annotations

import asyncio
from typing import Any

from middleware import engine_replies, prompt_bound
from middleware.context import AppContext
from middleware.engine.client import UpstreamError
from middleware.errors import VllmError
from middleware.model_cards import engine_adapters, engine_max_model_len


async def fetch_engine_models(ctx: AppContext) -> Any:
    """SGLang's /v1/models answer (None if unusable); refreshes the adapter names the rewrite needs.
    Raises UpstreamError when the engine cannot be reached."""
    reply = await ctx.engine.call("GET", "/v1/models")
    payload = engine_replies.loads_or_none(reply.body) if reply.status == 200 else None
    adapters = engine_adapters(payload)
    if adapters is not None:
        ctx.state.lora_names = frozenset(name for name, _ in adapters)
    return payload


def is_unknown_model(ctx: AppContext, error: VllmError) -> bool:
    """vLLM's model 404, on a deployment where adapters can appear at runtime (so the engine may know better)."""
    return error.status == 404 and error.param == "model" and ctx.config.enable_lora


async def resolve_prompt_bound(ctx: AppContext) -> None:
    """Learn the context length (config, else SGLang's /v1/models) and the tokenizer's longest token (read in
    a thread), once per process; while the engine cannot say, try again on the next request."""
    if ctx.state.prompt_bound is not None:
        return
    max_len = ctx.config.max_model_len
    if max_len is None:
        try:
            max_len = engine_max_model_len(await fetch_engine_models(ctx))
        except UpstreamError:
            return
        if max_len is None:
            return
    chars = await asyncio.to_thread(prompt_bound.max_chars_per_token, ctx.config.model_path)
    ctx.state.prompt_bound = (max_len, chars or prompt_bound.FALLBACK_CHARS_PER_TOKEN)
