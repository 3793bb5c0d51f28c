"""vLLM's score API over SGLang's rerank: the request rule and the reply reshaping."""

from __future__ import annotations

import json
from typing import Any

import pytest

from middleware.config import MiddlewareConfig
from middleware.rewrite.route_rules import needs_parse, rewrite
from middleware.score import score_reply

CONFIG = MiddlewareConfig(served_model_names=("qwen3",))


@pytest.mark.parametrize(
    ("body", "sent"),
    [
        ({"text_1": "q", "text_2": ["a", "b"]}, {"query": "q", "documents": ["a", "b"]}),
        ({"text_1": ["q"], "text_2": "a"}, {"query": "q", "documents": ["a"]}),
        ({"queries": "q", "documents": ["a"], "truncate_prompt_tokens": 5}, {"query": "q", "documents": ["a"]}),
    ],
)
def test_one_query_becomes_a_rerank_body(body: dict[str, Any], sent: dict[str, Any]) -> None:
    body = {"model": "qwen3", **body}
    assert needs_parse("/v1/score", json.dumps(body).encode(), CONFIG)
    result = rewrite("/v1/score", body, CONFIG)
    assert result.error is None and result.body == {"model": "qwen3", **sent}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"text_1": ["q1", "q2"], "text_2": ["a", "b"]}, "Scoring 2 `text_1` entries pairwise is not supported"),
        ({"text_1": "q", "text_2": [{"type": "image_url"}]}, "SGLang's rerank scores text only"),
        ({"text_1": "q", "text_2": []}, "must each be a non-empty string"),
        ({"query": "q", "items": ["a"]}, "Field required"),
    ],
)
def test_what_rerank_cannot_answer_is_a_vllm_400(body: dict[str, Any], needle: str) -> None:
    result = rewrite("/v1/score", {"model": "qwen3", **body}, CONFIG)
    assert result.error is not None and result.error.status == 400 and needle in result.error.message


def test_reply_is_vllms_score_response_in_input_order() -> None:
    sglang = [{"score": 0.9, "index": 1, "meta_info": {"prompt_tokens": 4}}, {"score": 0.2, "index": 0,
              "meta_info": {"prompt_tokens": 3}}]  # fmt: skip
    reply = json.loads(score_reply(json.dumps(sglang).encode(), "qwen3", "score-1", 7))
    assert reply == {
        "id": "score-1", "object": "list", "created": 7, "model": "qwen3",
        "data": [{"index": 0, "object": "score", "score": 0.2}, {"index": 1, "object": "score", "score": 0.9}],
        "usage": {"prompt_tokens": 7, "total_tokens": 7, "completion_tokens": 0, "prompt_tokens_details": None},
    }  # fmt: skip


def test_an_error_or_unknown_reply_passes_untouched() -> None:
    for body in (b'{"error": "x"}', b"not json", b"[1, 2]"):
        assert score_reply(body, "m", "i", 0) == body
