"""Native `/generate`, embeddings, rerank, tokenize and detokenize."""

from __future__ import annotations

import base64
import struct
import time
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from sim.errors import Endpoint, JSONBytesResponse, NativeError, SimError, parse_body
from sim.protocol import DetokenizeRequest, EmbeddingRequest, GenerateReqInput, TokenizeRequest, V1RerankReqInput
from sim.replies import DONE, sse
from sim.routes_openai import HANG_AFTER_CHUNKS, hang_after, until_disconnect
from sim.scheduler import Finish, SeqSpec, TokenEvent, merge
from sim.state import SimState, get_state
from sim.textgen import chat_prompt, echo_pieces, embedding, overlap_score, token_id
from sim.validate import Sampling, check_context

DEFAULT_MAX_NEW_TOKENS = 128  # SamplingParams default
DEFAULT_EMBEDDING_DIMS = 256

# -- /generate -----------------------------------------------------------------------------------------------------
def _generate_prompt(req: GenerateReqInput, state: SimState) -> tuple[str, tuple[int, ...]]:
    text, input_ids = req.text, req.input_ids
    if isinstance(text, list) or (input_ids and isinstance(input_ids[0], list)):
        raise NativeError("The simulator's /generate takes one prompt per request; use /v1/completions for batches.")
    if text is not None:
        return text, tuple(state.vocab.encode(text))
    if input_ids is None:
        raise NativeError("Either text, input_ids or input_embeds should be provided.")
    ids = tuple(i for i in input_ids if isinstance(i, int))
    return state.vocab.decode(ids), ids


def _generate_spec(req: GenerateReqInput, state: SimState) -> tuple[SeqSpec, float]:
    text, ids = _generate_prompt(req, state)
    params = req.sampling_params or {}
    max_new = params.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)
    try:
        Sampling(temperature=params.get("temperature", 1.0), top_p=params.get("top_p", 1.0),
                 top_k=params.get("top_k", -1), min_p=params.get("min_p", 0.0),
                 repetition_penalty=params.get("repetition_penalty", 1.0), max_new_tokens=max_new,
                 min_new_tokens=params.get("min_new_tokens", 0),
                 constraints=sum(params.get(k) is not None for k in ("json_schema", "regex", "ebnf"))).verify()
        check_context(len(ids), max_new, state.cfg)
    except SimError as e:
        raise NativeError(e.message) from None
    stop = params.get("stop") or ()
    spec = SeqSpec(req.rid or uuid.uuid4().hex, ids, echo_pieces(text), max_new, req.stream,
                   params.get("min_new_tokens", 0), bool(params.get("ignore_eos")),
                   (stop,) if isinstance(stop, str) else tuple(stop))
    return spec, time.monotonic()


def _generate_body(spec: SeqSpec, pieces: list[str], finish: Finish | None, started: float) -> dict[str, Any]:
    reason: Any = None
    if finish is not None:
        reason = {"type": finish.reason}
        if finish.reason == "length":
            reason["length"] = finish.completion_tokens
        elif finish.reason == "stop":
            reason["matched"] = finish.matched_stop
    meta = {"id": spec.rid, "finish_reason": reason, "prompt_tokens": len(spec.prompt_ids),
            "weight_version": "default", "completion_tokens": len(pieces),
            "cached_tokens": finish.cached_tokens if finish else 0, "e2e_latency": time.monotonic() - started}
    return {"text": "".join(pieces), "output_ids": [token_id(p.strip()) for p in pieces], "meta_info": meta}


Progress = tuple[list[str], Finish | None]


async def _generate_events(spec: SeqSpec, state: SimState) -> AsyncGenerator[Progress, None]:
    pieces: list[str] = []
    async with aclosing(merge([state.engine.generate(spec)])) as events:
        async for _, event in events:
            if isinstance(event, TokenEvent):
                pieces.append(event.text)
                yield pieces, None
            else:
                yield pieces, event


async def _generate_stream(spec: SeqSpec, state: SimState, started: float) -> AsyncGenerator[bytes, None]:
    # Native streaming sends the cumulative text so far in every chunk.
    async with aclosing(_generate_events(spec, state)) as events:
        async for pieces, finish in events:
            yield sse(_generate_body(spec, pieces, finish, started))
    yield DONE


async def _generate_once(spec: SeqSpec, state: SimState, started: float) -> dict[str, Any]:
    body: dict[str, Any] = {}
    async with aclosing(_generate_events(spec, state)) as events:
        async for pieces, finish in events:
            body = _generate_body(spec, pieces, finish, started)
    return body


async def generate(request: Request) -> Response:
    state = get_state(request)
    req = await parse_body(request, GenerateReqInput, Endpoint("generate_request", 1253, json_only=False))
    spec, started = _generate_spec(req, state)
    if req.stream:
        chunks = _generate_stream(spec, state, started)
        if state.fault.kind == "hang_mid_stream":
            chunks = hang_after(chunks, HANG_AFTER_CHUNKS, request)
        return StreamingResponse(chunks, media_type="text/event-stream")
    body = await until_disconnect(request, _generate_once(spec, state, started))
    return JSONBytesResponse(body) if body is not None else Response(status_code=499)


# -- embeddings, rerank ----------------------------------------------------------------------------------------------
def _texts(inputs: Any, state: SimState) -> list[str]:
    if isinstance(inputs, str):
        return [inputs]
    if inputs and all(isinstance(i, int) for i in inputs):
        return [state.vocab.decode(inputs)]
    return [i if isinstance(i, str) else state.vocab.decode(i) for i in inputs]


async def embeddings(request: Request) -> Response:
    state = get_state(request)
    req = await parse_body(request, EmbeddingRequest, Endpoint("openai_v1_embeddings", 1906))
    texts = _texts(req.input, state)
    if not texts:
        raise SimError("Input cannot be empty")
    dims = req.dimensions or DEFAULT_EMBEDDING_DIMS
    data = []
    for i, text in enumerate(texts):
        vector = embedding(text, dims, state.cfg.random_seed)
        encoded: Any = vector
        if req.encoding_format == "base64":
            encoded = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
        data.append({"object": "embedding", "embedding": encoded, "index": i})
    tokens = sum(len(t.split()) for t in texts)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0,
             "prompt_tokens_details": None, "reasoning_tokens": 0}
    return JSONBytesResponse({"data": data, "model": req.model, "object": "list", "usage": usage})


async def rerank(request: Request) -> Response:
    req = await parse_body(request, V1RerankReqInput, Endpoint("v1_rerank_request", 1960))
    scored = sorted(((overlap_score(req.query, d), i, d) for i, d in enumerate(req.documents)), key=lambda t: -t[0])
    results = []
    for score, index, document in scored[: req.top_n or len(scored)]:
        item: dict[str, Any] = {"score": score, "index": index}
        if req.return_documents:
            item["document"] = document
        results.append(item)
    return JSONBytesResponse(results)


# -- tokenize ---------------------------------------------------------------------------------------------------------
async def tokenize(request: Request) -> Response:
    state = get_state(request)
    req = await parse_body(request, TokenizeRequest, Endpoint("openai_v1_tokenize", 2004))
    prompt = chat_prompt(req.messages) if req.messages is not None else req.prompt
    if isinstance(prompt, list):
        tokens: Any = [state.vocab.encode(p) for p in prompt]
        count: Any = [len(t) for t in tokens]
    else:
        tokens = state.vocab.encode(prompt or "")
        count = len(tokens)
    return JSONBytesResponse({"tokens": tokens, "count": count, "max_model_len": state.cfg.context_length})


async def detokenize(request: Request) -> Response:
    state = get_state(request)
    req = await parse_body(request, DetokenizeRequest, Endpoint("openai_v1_detokenize", 2018))
    tokens: list[Any] = req.tokens
    if tokens and isinstance(tokens[0], list):
        return JSONBytesResponse({"text": [state.vocab.decode(t) for t in tokens]})
    return JSONBytesResponse({"text": state.vocab.decode(tokens)})
