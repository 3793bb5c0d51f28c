"""vLLM's `/score` and `/v1/score`: the request is checked and rewritten under the `/v1/score` rules (see
`middleware/rewrite/score.py`), sent to SGLang's `/v1/rerank`, and the answer reshaped into vLLM's
ScoreResponse (`{id, object: "list", created, model, data: [{index, object: "score", score}], usage}`)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from middleware.context import AppContext, Handler
from middleware.engine_replies import loads_or_none
from middleware.inbound import Call, prepare_fresh, read_checked, send_prepared

RULES_ROUTE = "/v1/score"
ENGINE_ROUTE = "/v1/rerank"


def score_reply(body: bytes, model: str, response_id: str, created: int) -> bytes:
    """SGLang's rerank list `[{score, index, meta_info?}]` (best first) → vLLM's ScoreResponse (input order)."""
    payload = loads_or_none(body)
    if not isinstance(payload, list) or not all(isinstance(item, dict) for item in payload):
        return body
    tokens = sum(_prompt_tokens(item) for item in payload)
    data = sorted(({"index": item.get("index"), "object": "score", "score": item.get("score")} for item in payload),
                  key=lambda d: d["index"] if isinstance(d["index"], int) else 0)  # fmt: skip
    return orjson.dumps({
        "id": response_id, "object": "list", "created": created, "model": model, "data": data,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0,
                  "prompt_tokens_details": None},
    })  # fmt: skip


def _prompt_tokens(item: dict[str, Any]) -> int:
    meta = item.get("meta_info")
    tokens = meta.get("prompt_tokens") if isinstance(meta, dict) else None
    return tokens if isinstance(tokens, int) else 0


def score_route(ctx: AppContext) -> Handler:
    def translate(body: bytes, call: Call) -> bytes:
        model = call.state.get("model") or ctx.config.served_model_name
        return score_reply(body, model, f"score-{uuid.uuid4().hex}", int(time.time()))

    async def handle(call: Call) -> None:
        raw = await read_checked(ctx, call, json=True)
        if raw is not None:
            prepared = await prepare_fresh(ctx, RULES_ROUTE, raw)
            await send_prepared(ctx, call, ENGINE_ROUTE, prepared, translate, True)

    return handle
