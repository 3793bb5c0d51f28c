"""vLLM's score request (`text_1`/`text_2`, or `queries`/`documents`) as SGLang's `/v1/rerank` request.

SGLang's own `/v1/score` is a different API (label-token log-probabilities of `query` + `items`); its
cross-encoder scores are served on `/v1/rerank` (`query`, `documents` → `[{score, index}]`), which is what vLLM's
`/score` computes for a cross-encoder: one score per (text_1, text_2[i]) pair. One query against one or many
documents translates exactly. Several queries (vLLM pairs `text_1[i]` with `text_2[i]`) have no one-request
SGLang equivalent: a vLLM-shaped 400 names why rather than a wrong score.
"""

from __future__ import annotations

from typing import Any

from middleware.rewrite.base import Body, RewriteContext, RuleResult, bad_request

_SPELLINGS = (("text_1", "text_2"), ("queries", "documents"), ("data_1", "data_2"))
# Fields of vLLM's ScoreRequest that SGLang's rerank has no use for (dropped; they do not change a score).
_VLLM_ONLY = ("truncate_prompt_tokens", "priority", "request_id", "mm_processor_kwargs", "use_activation",
              "activation", "softmax", "encoding_format", "user")  # fmt: skip


def _texts(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def score_request(body: Body, ctx: RewriteContext) -> RuleResult:
    spelling = next(((a, b) for a, b in _SPELLINGS if a in body or b in body), None)
    if spelling is None:
        return bad_request("Field required: text_1 and text_2 (or queries and documents).", "text_1")
    first, second = spelling
    queries, documents = _texts(body.get(first)), _texts(body.get(second))
    if queries is None or documents is None:
        return bad_request(
            f"`{first}` and `{second}` must each be a non-empty string or list of strings here: SGLang's rerank "
            "scores text only.", first,
        )  # fmt: skip
    if len(queries) > 1:
        return bad_request(
            f"Scoring {len(queries)} `{first}` entries pairwise is not supported by this server: SGLang's rerank "
            f"scores one query per request. Send one request per `{first}` entry.", first,
        )  # fmt: skip
    drop = {first, second, *_VLLM_ONLY}
    out = {k: v for k, v in body.items() if k not in drop}
    out["query"], out["documents"] = queries[0], documents
    return out
