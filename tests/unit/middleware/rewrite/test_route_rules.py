"""Table-driven tests: one row per behaviour of each rule in `middleware.rewrite.route_rules.ROUTE_RULES`.

Each row is (route, request body, expected). `expected` is the body SGLang must receive, `SAME` (forwarded
untouched), or `Err(...)` (the 4xx vLLM itself answers). Every row is also checked for idempotence and for
`needs_parse` agreeing with the outcome.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from middleware.config import LoraModule, MiddlewareConfig
from middleware.rewrite.route_rules import ROUTE_RULES, dump, needs_parse, rewrite

CHAT, COMPLETIONS, RESPONSES = "/v1/chat/completions", "/v1/completions", "/v1/responses"
CONFIG = MiddlewareConfig(
    served_model_names=("qwen3", "qwen-alias"), lora_modules=(LoraModule("sql-lora", "/adapters/sql"),)
)
SAME = object()


@dataclass(frozen=True)
class Err:
    status: int
    message: str  # exact message
    param: str | None = None
    type: str = "BadRequestError"


USER = [{"role": "user", "content": "hi"}]


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "qwen3", "messages": USER, **fields}


def completion(**fields: Any) -> dict[str, Any]:
    return {"model": "qwen3", "prompt": "Once", **fields}


def schema_rf(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "guided_json", "schema": schema}}


OBJ = {"type": "object", "properties": {"a": {"type": "string"}}}
OBJ_TEXT = orjson.dumps(OBJ).decode()


def tool(parameters: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": "f", "parameters": parameters}}

ONE_KIND = "You can only use one kind of guided decoding ('guided_json', 'guided_regex' or 'guided_choice')."
MULTI = "You can only use one kind of structured outputs constraint but multiple are specified: "

CASES: list[tuple[str, str, dict[str, Any], Any]] = [
    # --- model ---------------------------------------------------------------------------------------
    ("model-served-unchanged", CHAT, chat(), SAME),
    ("model-absent-ok", CHAT, {"messages": USER}, SAME),
    ("model-alias-to-first", CHAT, chat(model="qwen-alias"), chat(model="qwen3")),
    ("model-lora-static", CHAT, chat(model="sql-lora"), chat(model="qwen3:sql-lora")),
    ("model-sglang-form-kept", CHAT, chat(model="qwen3:sql-lora"), SAME),
    (
        "model-unknown-404", CHAT, chat(model="gpt-4"),
        Err(404, "The model `gpt-4` does not exist. Valid aliases: qwen3, qwen-alias.", "model", "NotFoundError"),
    ),
    ("model-unknown-adapter-404", COMPLETIONS, completion(model="qwen3:nope"), Err(404, "", "model", "NotFoundError")),
    ("model-embeddings-alias", "/v1/embeddings", {"model": "qwen-alias", "input": "x"},
     {"model": "qwen3", "input": "x"}),
    ("model-detokenize-404", "/detokenize", {"model": "x", "tokens": [1]}, Err(404, "", "model", "NotFoundError")),
    ("model-rerank-lora", "/rerank", {"model": "sql-lora", "query": "q", "documents": ["d"]},
     {"model": "qwen3:sql-lora", "query": "q", "documents": ["d"]}),  # fmt: skip
    # --- guided_* (vLLM <= 0.11) and structured_outputs ---------------------------------------------------
    ("guided-json-chat", CHAT, chat(guided_json=OBJ), chat(response_format=schema_rf(OBJ))),
    ("guided-json-string-chat", CHAT, chat(guided_json=OBJ_TEXT), chat(response_format=schema_rf(OBJ))),
    ("guided-json-completion", COMPLETIONS, completion(guided_json=OBJ), completion(json_schema=OBJ_TEXT)),
    ("guided-json-string-completion-verbatim", COMPLETIONS, completion(guided_json='{"type": "object"}'),
     completion(json_schema='{"type": "object"}')),  # fmt: skip
    ("guided-regex", CHAT, chat(guided_regex="[0-9]+"), chat(regex="[0-9]+")),
    ("guided-choice", CHAT, chat(guided_choice=["a b", "c|d", "e.f"]), chat(regex="(a b|c\\|d|e\\.f)")),
    ("guided-grammar", COMPLETIONS, completion(guided_grammar="root ::= 'x'"), completion(ebnf="root ::= 'x'")),
    ("guided-options-dropped", CHAT, chat(guided_regex="a", guided_decoding_backend="xgrammar",
                                          guided_whitespace_pattern=" "), chat(regex="a")),  # fmt: skip
    ("guided-null-dropped", CHAT, chat(guided_json=None), chat()),
    ("guided-two-kinds-400", CHAT, chat(guided_json=OBJ, guided_regex="a"), Err(400, ONE_KIND)),
    ("so-json-chat", CHAT, chat(structured_outputs={"json": OBJ}), chat(response_format=schema_rf(OBJ))),
    ("so-regex-completion", COMPLETIONS, completion(structured_outputs={"regex": "x+"}), completion(regex="x+")),
    ("so-choice", COMPLETIONS, completion(structured_outputs={"choice": ["yes", "no"]}), completion(regex="(yes|no)")),
    ("so-grammar", CHAT, chat(structured_outputs={"grammar": "root ::= 'a'"}), chat(ebnf="root ::= 'a'")),
    ("so-json-object", CHAT, chat(structured_outputs={"json_object": True}),
     chat(response_format={"type": "json_object"})),  # fmt: skip
    ("so-structural-tag-string", CHAT, chat(structured_outputs={"structural_tag": '{"structures":[],"triggers":[]}'}),
     chat(response_format={"structures": [], "triggers": [], "type": "structural_tag"})),  # fmt: skip
    ("so-options-dropped", CHAT, chat(structured_outputs={"regex": "a", "disable_any_whitespace": True}),
     chat(regex="a")),
    ("so-null", CHAT, chat(structured_outputs=None), chat()),
    ("so-two-kinds-400", CHAT, chat(structured_outputs={"json": OBJ, "regex": "a"}),
     Err(400, "You can only use one kind of constraints for structured outputs ('json', 'regex' or 'choice').",
         "structured_outputs")),  # fmt: skip
    ("so-grammar-and-regex-400", CHAT, chat(structured_outputs={"grammar": "g", "regex": "a"}),
     Err(400, MULTI + "regex, grammar.")),  # fmt: skip
    ("so-empty-400", CHAT, chat(structured_outputs={}),
     Err(400, "You must use one kind of structured outputs constraint but none are specified.")),  # fmt: skip
    ("so-bad-choice-400", CHAT, chat(structured_outputs={"choice": []}),
     Err(400, "structured_outputs.choice must be a non-empty list of strings.", "structured_outputs")),  # fmt: skip
    ("so-bad-json-string-400", CHAT, chat(structured_outputs={"json": "{nope"}), Err(400, "", "structured_outputs")),
    ("guided-plus-so-400", CHAT, chat(guided_regex="a", structured_outputs={"json": OBJ}),
     Err(400, MULTI + "json, regex.")),
    ("rf-same-kind-wins", CHAT, chat(structured_outputs={"json": OBJ}, response_format=schema_rf({})),
     chat(response_format=schema_rf({}))),  # fmt: skip
    ("rf-other-kind-400", CHAT, chat(guided_regex="a", response_format={"type": "json_object"}),
     Err(400, MULTI + "json_object, regex.")),  # fmt: skip
    ("rf-text-is-no-constraint", CHAT, chat(guided_json=OBJ, response_format={"type": "text"}),
     chat(response_format=schema_rf(OBJ))),  # fmt: skip
    ("rf-alone-untouched", CHAT, chat(response_format=schema_rf(OBJ)), SAME),
    # --- request_id, include_stop_str_in_output, top_k, truncate_prompt_tokens, top_n -----------------------
    ("request-id-to-rid", CHAT, chat(request_id="abc"), chat(rid="abc")),
    ("request-id-beats-rid", COMPLETIONS, completion(rid="old", request_id="new"), completion(rid="new")),
    ("request-id-embeddings", "/v1/embeddings", {"input": "x", "request_id": "r"}, {"input": "x", "rid": "r"}),
    ("request-id-responses-native", RESPONSES, {"input": "x", "request_id": "r"}, SAME),
    ("stop-str-true", CHAT, chat(include_stop_str_in_output=True), chat(no_stop_trim=True)),
    ("stop-str-false-dropped", COMPLETIONS, completion(include_stop_str_in_output=False), completion()),
    ("top-k-zero", CHAT, chat(top_k=0), chat(top_k=-1)),
    ("top-k-zero-float", COMPLETIONS, completion(top_k=0.0), completion(top_k=-1)),
    ("top-k-minus-one-kept", CHAT, chat(top_k=-1), SAME),
    ("top-k-forty-kept", CHAT, chat(top_k=40), SAME),
    ("top-k-responses", RESPONSES, {"input": "x", "top_k": 0}, {"input": "x", "top_k": -1}),
    ("truncate-dropped", "/v1/embeddings", {"input": "x", "truncate_prompt_tokens": 5}, {"input": "x"}),
    ("rerank-top-n-zero", "/v1/rerank", {"query": "q", "documents": ["a"], "top_n": 0},
     {"query": "q", "documents": ["a"]}),
    ("rerank-top-n-kept", "/v1/rerank", {"query": "q", "documents": ["a"], "top_n": 2}, SAME),
    # --- logprobs -------------------------------------------------------------------------------------
    ("top-logprobs-ok", CHAT, chat(logprobs=True, top_logprobs=20), SAME),
    ("top-logprobs-over-max", CHAT, chat(logprobs=True, top_logprobs=21),
     Err(400, "Requested sample logprobs of 21, which is greater than max allowed: 20 (parameter=logprobs, value=21)",
         "logprobs")),  # fmt: skip
    ("top-logprobs-negative", CHAT, chat(logprobs=True, top_logprobs=-2),
     Err(400, "`top_logprobs` must be a positive value or -1. (parameter=top_logprobs, value=-2)", "top_logprobs")),
    ("top-logprobs-without-logprobs", CHAT, chat(top_logprobs=3),
     Err(400, "when using `top_logprobs`, `logprobs` must be set to true. (parameter=top_logprobs)", "top_logprobs")),
    ("top-logprobs-zero-without-logprobs-ok", CHAT, chat(top_logprobs=0), SAME),
    ("top-logprobs-string", CHAT, chat(logprobs=True, top_logprobs="5"),
     Err(400, "`top_logprobs` must be an integer. (parameter=top_logprobs, value=5)", "top_logprobs")),
    ("top-logprobs-all-vocab", CHAT, chat(logprobs=True, top_logprobs=-1), Err(400, "", "logprobs")),
    ("completion-logprobs-over-max", COMPLETIONS, completion(logprobs=50),
     Err(400, "Requested sample logprobs of 50, which is greater than max allowed: 20 (parameter=logprobs, value=50)",
         "logprobs")),  # fmt: skip
    ("completion-logprobs-negative", COMPLETIONS, completion(logprobs=-5),
     Err(400, "`logprobs` must be a positive value or -1. (parameter=logprobs, value=-5)", "logprobs")),
    ("completion-logprobs-ok", COMPLETIONS, completion(logprobs=5), SAME),
    ("responses-top-logprobs-over-max", RESPONSES, {"input": "x", "top_logprobs": 99}, Err(400, "", "logprobs")),
    # --- repetition_penalty, stream_options -------------------------------------------------------------
    ("repetition-ok", CHAT, chat(repetition_penalty=2), SAME),
    ("repetition-over-sglang-limit-clamped", CHAT, chat(repetition_penalty=2.5), chat(repetition_penalty=2.0)),
    ("n-zero-vllm-400", CHAT, chat(n=0), Err(400, "n must be at least 1, got 0.")),
    ("n-negative-vllm-400", COMPLETIONS, completion(n=-2), Err(400, "n must be at least 1, got -2.")),
    ("n-two-ok", CHAT, chat(n=2), SAME),
    # --- vLLM's SamplingParams._verify_args / check_tool_usage ------------------------------------------
    ("presence-over-2", CHAT, chat(presence_penalty=3), Err(400, "presence_penalty must be in [-2, 2], got 3.0.")),
    ("frequency-under-minus-2", COMPLETIONS, completion(frequency_penalty=-2.5),
     Err(400, "frequency_penalty must be in [-2, 2], got -2.5.")),
    ("penalties-at-bounds-ok", CHAT, chat(presence_penalty=-2, frequency_penalty=2.0), SAME),
    ("temperature-negative", CHAT, chat(temperature=-1),
     Err(400, "temperature must be non-negative, got -1.0. (parameter=temperature, value=-1.0)", "temperature")),
    ("temperature-above-2-ok", CHAT, chat(temperature=2.5), SAME),
    ("top-p-zero", COMPLETIONS, completion(top_p=0),
     Err(400, "top_p must be in (0, 1], got 0.0. (parameter=top_p, value=0.0)", "top_p")),
    ("top-p-over-1", CHAT, chat(top_p=1.5),
     Err(400, "top_p must be in (0, 1], got 1.5. (parameter=top_p, value=1.5)", "top_p")),
    ("top-k-minus-2", CHAT, chat(top_k=-2), Err(400, "top_k must be 0 (disable), or at least 1, got -2.")),
    ("min-p-over-1", COMPLETIONS, completion(min_p=1.5), Err(400, "min_p must be in [0, 1], got 1.5.")),
    ("max-tokens-zero-completion", COMPLETIONS, completion(max_tokens=0),
     Err(400, "max_tokens must be at least 1, got 0. (parameter=max_tokens, value=0)", "max_tokens")),
    ("max-completion-tokens-zero-falls-through", CHAT, chat(max_completion_tokens=0, max_tokens=4), SAME),
    ("max-completion-tokens-negative", CHAT, chat(max_completion_tokens=-3),
     Err(400, "max_tokens must be at least 1, got -3. (parameter=max_tokens, value=-3)", "max_tokens")),
    ("min-tokens-negative", CHAT, chat(min_tokens=-1),
     Err(400, "min_tokens must be greater than or equal to 0, got -1.")),
    ("min-tokens-over-max", COMPLETIONS, completion(min_tokens=5, max_tokens=4),
     Err(400, "min_tokens must be less than or equal to max_tokens=4, got 5.")),
    ("stop-empty-string", CHAT, chat(stop=["a", ""]), Err(400, "stop cannot contain an empty string.")),
    ("greedy-n-2", CHAT, chat(temperature=0, n=2), Err(400, "n must be 1 when using greedy sampling, got 2.")),
    ("greedy-n-1-ok", CHAT, chat(temperature=0, n=1), SAME),
    ("tool-choice-without-tools", CHAT, chat(tool_choice="auto"),
     Err(400, "When using `tool_choice`, `tools` must be set.")),
    ("tool-choice-none-without-tools-ok", CHAT, chat(tool_choice="none"), SAME),
    ("repetition-zero-vllm-400", COMPLETIONS, completion(repetition_penalty=0),
     Err(400, "repetition_penalty must be greater than zero, got 0.0.")),  # fmt: skip
    ("stream-options-without-stream", CHAT, chat(stream_options={"include_usage": True}),
     Err(400, "Stream options can only be defined when `stream=True`. (parameter=stream_options)", "stream_options")),
    ("stream-options-with-stream", CHAT, chat(stream=True, stream_options={"include_usage": True}), SAME),
    ("stream-options-null-ok", COMPLETIONS, completion(stream_options=None), SAME),
    ("stream-options-empty-ok", COMPLETIONS, completion(stream_options={}), SAME),
    # --- generation prompt ---------------------------------------------------------------------------
    ("agp-false-final-assistant", CHAT,
     chat(messages=[*USER, {"role": "assistant", "content": "Sure,"}], add_generation_prompt=False),
     chat(messages=[*USER, {"role": "assistant", "content": "Sure,"}], continue_final_message=True)),  # fmt: skip
    ("agp-false-final-user-left", CHAT, chat(add_generation_prompt=False), SAME),
    ("agp-true-left", CHAT, chat(add_generation_prompt=True), SAME),
    ("agp-and-continue-400", CHAT, chat(add_generation_prompt=True, continue_final_message=True),
     Err(400, "Cannot set both `continue_final_message` and `add_generation_prompt` to True.")),  # fmt: skip
    ("agp-tokenize-native", "/tokenize", {"messages": USER, "add_generation_prompt": False}, SAME),
    ("agp-tokenize-conflict", "/tokenize", {"messages": USER, "add_generation_prompt": True,
                                            "continue_final_message": True}, Err(400, "")),  # fmt: skip
    # --- nulls -------------------------------------------------------------------------------------------
    ("nulls-chat", CHAT, chat(n=None, presence_penalty=None, temperature=None), chat(temperature=None)),
    ("nulls-completion", COMPLETIONS, completion(max_tokens=None, top_p=None, top_k=None, seed=None),
     completion(seed=None)),  # fmt: skip
    ("nulls-responses", RESPONSES, {"input": "x", "frequency_penalty": None}, {"input": "x"}),
    # --- messages --------------------------------------------------------------------------------------
    ("user-content-null", CHAT, chat(messages=[{"role": "user", "content": None}]),
     chat(messages=[{"role": "user", "content": ""}])),  # fmt: skip
    ("assistant-content-null-kept", CHAT,
     chat(messages=[*USER, {"role": "assistant", "content": None, "tool_calls": []}]), SAME),  # fmt: skip
    ("tokenize-user-content-null", "/tokenize", {"messages": [{"role": "user", "content": None}]},
     {"messages": [{"role": "user", "content": ""}]}),  # fmt: skip
    ("parts-input-text", CHAT, chat(messages=[{"role": "user", "content": [{"type": "input_text", "text": "a"}]}]),
     chat(messages=[{"role": "user", "content": [{"type": "text", "text": "a"}]}])),  # fmt: skip
    ("parts-refusal", CHAT,
     chat(messages=[*USER, {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]}]),
     chat(messages=[*USER, {"role": "assistant", "content": [{"type": "text", "text": "no"}]}])),  # fmt: skip
    ("parts-plain-string", CHAT, chat(messages=[{"role": "user", "content": ["a", {"type": "text", "text": "b"}]}]),
     chat(messages=[{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}])),
    ("parts-null-text-dropped", CHAT, chat(messages=[{"role": "user", "content": [{"type": "text", "text": None}]}]),
     chat(messages=[{"role": "user", "content": []}])),  # fmt: skip
    ("parts-untyped-image", CHAT, chat(messages=[{"role": "user", "content": [{"image_url": "http://i/x.png"}]}]),
     chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://i/x.png"}}]}])),
    ("parts-input-image", CHAT,
     chat(messages=[{"role": "user", "content": [{"type": "input_image", "image_url": "http://i/x.png"}]}]),
     chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://i/x.png"}}]}])),
    ("parts-thinking-outside-assistant", CHAT,
     chat(messages=[{"role": "user", "content": [{"type": "thinking", "thinking": "hm"}]}]),
     chat(messages=[{"role": "user", "content": [{"type": "text", "text": "hm"}]}])),  # fmt: skip
    ("parts-thinking-in-assistant-kept", CHAT,
     chat(messages=[*USER, {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm"}]}]), SAME),
    ("parts-image-kept", CHAT,
     chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]), SAME),
    ("assistant-reasoning-renamed", CHAT,
     chat(messages=[*USER, {"role": "assistant", "content": "a", "reasoning": "why"}, *USER]),
     chat(messages=[*USER, {"role": "assistant", "content": "a", "reasoning_content": "why"}, *USER])),
    ("assistant-reasoning-wins", "/tokenize",
     {"messages": [{"role": "assistant", "reasoning_content": "old", "reasoning": "new"}]},
     {"messages": [{"role": "assistant", "reasoning_content": "new"}]}),
    ("assistant-reasoning-content-kept", CHAT,
     chat(messages=[*USER, {"role": "assistant", "content": "a", "reasoning_content": "why"}]), SAME),
    # --- tool schemas (request-level, message-level, Responses flat form) -----------------------------------
    ("tools-properties-list", CHAT,
     chat(tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": []}}}]),
     chat(tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}])),
    ("tools-required-null", CHAT,
     chat(tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "required": None}}}]),
     chat(tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])),  # fmt: skip
    ("tools-parameters-list", CHAT, chat(tools=[{"type": "function", "function": {"name": "f", "parameters": []}}]),
     chat(tools=[{"type": "function", "function": {"name": "f",
                                                   "parameters": {"type": "object", "properties": {}}}}])),  # fmt: skip
    ("tools-clean-untouched", CHAT, chat(tools=[tool(OBJ)]), SAME),
    ("tools-message-level", CHAT,
     chat(messages=[{"role": "system", "content": "s", "tools": [{"type": "function", "function": {
         "name": "g", "parameters": {"type": "any"}}}]}, *USER]),
     chat(messages=[{"role": "system", "content": "s", "tools": [{"type": "function", "function": {
         "name": "g", "parameters": {}}}]}, *USER])),  # fmt: skip
    ("tools-responses-flat", RESPONSES,
     {"input": "x", "tools": [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": None}}]},
     {"input": "x", "tools": [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}]}),
    ("tools-tokenize", "/tokenize",
     {"messages": USER, "tools": [{"type": "function", "function": {"name": "f", "parameters": "nope"}}]},
     {"messages": USER, "tools": [tool({"type": "object", "properties": {}})]}),
    # --- routes and garbage ---------------------------------------------------------------------------------
    ("invocations-is-chat", "/invocations", chat(top_k=0, model="qwen-alias"), chat(top_k=-1)),
    ("unknown-route-untouched", "/v1/models", {"model": "whatever", "top_k": 0}, SAME),
    ("garbage-messages", CHAT, {"model": "qwen3", "messages": 5, "tools": "x"}, SAME),
    ("garbage-message-items", CHAT, {"messages": [1, None, "x", {"role": 3}], "tools": [None, 1, {"function": 2}]},
     SAME),
]  # fmt: skip


@pytest.mark.parametrize(("route", "body", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule(route: str, body: dict[str, Any], expected: Any) -> None:
    original = copy.deepcopy(body)
    result = rewrite(route, body, CONFIG)
    assert body == original, "the input must never be mutated"
    if isinstance(expected, Err):
        assert result.error is not None, result
        assert (result.error.status, result.error.param, result.error.type) == (
            expected.status, expected.param, expected.type,
        )  # fmt: skip
        if expected.message:
            assert result.error.message == expected.message
        assert not result.changed and len(result.rules) == 1
        return
    assert result.error is None, result.error
    if expected is SAME:
        assert not result.changed and result.rules == () and result.body is body
    else:
        assert result.changed and result.rules
        assert result.body == expected
        assert orjson.loads(dump(result.body)) == expected
        again = rewrite(route, result.body, CONFIG)
        assert not again.changed and again.error is None, "rewrite must be idempotent"
    assert needs_parse(route, dump(body), CONFIG) or (expected is SAME)


def test_rules_report_their_names_in_order() -> None:
    body = chat(model="sql-lora", request_id="r", top_k=0, guided_regex="a")
    result = rewrite(CHAT, body, CONFIG)
    assert result.rules == ("guided_legacy", "structured_outputs", "model", "request_id", "top_k")


def test_runtime_lora_names() -> None:
    body = chat(model="runtime-adapter")
    unknown = rewrite(CHAT, body, CONFIG).error
    assert unknown is not None and (unknown.status, unknown.param) == (404, "model")
    result = rewrite(CHAT, body, CONFIG, frozenset({"runtime-adapter"}))
    assert result.body["model"] == "qwen3:runtime-adapter"


def test_skip_model_name_validation() -> None:
    config = MiddlewareConfig(served_model_names=("m",), skip_model_name_validation=True)
    result = rewrite(CHAT, chat(model="anything"), config)
    assert result.error is None and not result.changed


def test_max_logprobs_from_config() -> None:
    config = MiddlewareConfig(served_model_names=("qwen3",), max_logprobs=5)
    too_many = rewrite(CHAT, chat(logprobs=True, top_logprobs=6), config).error
    assert too_many is not None and (too_many.status, too_many.param) == (400, "logprobs")
    unlimited = MiddlewareConfig(served_model_names=("qwen3",), max_logprobs=-1)
    assert rewrite(CHAT, chat(logprobs=True, top_logprobs=5000), unlimited).error is None


def test_served_name_with_colon_is_not_an_adapter() -> None:
    config = MiddlewareConfig(served_model_names=("s3://bucket/model",))
    assert not rewrite(CHAT, chat(model="s3://bucket/model"), config).changed


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(b'{"model":"qwen3","messages":[{"role":"user","content":"hi"}]}', False, id="served-name"),
        pytest.param(b'{"model" : "qwen3","messages":[]}', False, id="served-name-spaced"),
        pytest.param(b'{"messages":[{"role":"user","content":"hi"}],"max_tokens":5}', False, id="no-model"),
        pytest.param(b'{"model":"qwen-alias","messages":[]}', True, id="alias"),
        pytest.param(b'{"model":"qwen3x","messages":[]}', True, id="name-prefix"),
        pytest.param(b'{"model":"qwen3","top_k":0}', True, id="top-k-zero"),
        pytest.param(b'{"model":"qwen3","top_k":40}', False, id="top-k-forty"),
        pytest.param(b'{"model":"qwen3","top_k":-0.0}', True, id="top-k-negative-zero"),
        pytest.param(b'{"model":"qwen3","to\\u0070_k":0}', True, id="escaped-key"),
        pytest.param(b'{"model":"qwen3","messages":[{"role":"user","content":["a"]}]}', True, id="content-list"),
        pytest.param(b'{"model":"qwen3","content":"\\u4f60\\u597d"}', False, id="escaped-cjk-is-fine"),
    ],
)
def test_needs_parse(raw: bytes, expected: bool) -> None:
    assert needs_parse(CHAT, raw, CONFIG) is expected


def test_needs_parse_without_config_treats_model_as_trigger() -> None:
    assert needs_parse(CHAT, b'{"model":"qwen3"}') is True
    assert needs_parse(CHAT, b'{"messages":[]}') is False
    assert needs_parse("/v1/models", b'{"model":"x","top_k":0}') is False


def test_every_route_has_rules_and_unique_order() -> None:
    for route, rules in ROUTE_RULES.items():
        assert rules, route
        assert len({id(r) for r in rules}) == len(rules), route
        for rule in rules:
            assert rule.triggers or rule.prefilter is not None, f"{rule.name} must declare what triggers it"


def test_dump_handles_what_orjson_refuses() -> None:
    big = {"seed": 2**70, "x": [1.5, None, "é"]}
    assert orjson.loads(dump(big).replace(b"1180591620717411303424", b"0")) == {**big, "seed": 0}
    nested: Any = "leaf"
    for _ in range(5_000):  # deeper than orjson (254) and the C json encoder's recursion limit
        nested = {"k": [nested]}
    raw = dump(nested)
    assert raw.startswith(b'{"k":[{"k":[') and raw.count(b"[") == raw.count(b"]") == 5_000


def test_ten_thousand_level_tool_schema_through_rewrite() -> None:
    schema: dict[str, Any] = {"type": "object", "properties": []}
    for _ in range(10_000):
        schema = {"type": "object", "properties": {"child": schema}}
    body = chat(tools=[tool(schema)])
    assert needs_parse(CHAT, b'{"tools":[{"function":{"parameters":{}}}]}', CONFIG)
    result = rewrite(CHAT, body, CONFIG)
    assert result.error is None and result.rules == ("tool_schemas",)
    assert body["tools"][0]["function"]["parameters"] is schema  # input untouched
    assert dump(result.body).count(b'"properties":{}') == 1
