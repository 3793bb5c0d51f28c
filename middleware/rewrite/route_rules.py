"""Pure request translation, vLLM -> SGLang 0.5.23: one ordered table of rules per route (`ROUTE_RULES`).

`rewrite(route, body, config)` runs a route's rules in order over a parsed body and returns a new body (the
input is never mutated), whether anything changed, which rules changed it, or the 4xx vLLM itself would
answer. `needs_parse(route, raw)` is the byte-level pre-check that lets the proxy forward untouched bytes
without parsing. The table is rendered into docs/request-translation.md (`middleware/rewrite/docs.py`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from middleware.config import MiddlewareConfig
from middleware.errors import VllmError
from middleware.rewrite import guided, messages, sampling, sampling_checks, schema_limits, score
from middleware.rewrite.base import RewriteContext, RewriteRule, context_for, regex_prefilter
from middleware.rewrite.dump import dump
from middleware.rewrite.failure import rule_failure
from middleware.rewrite.model import model, model_prefilter
from middleware.rewrite.sampling import describe_nulls, null_defaults

__all__ = [
    "ROUTE_RULES", "RewriteContext", "RewriteResult", "RewriteRule", "dump", "has_rules", "needs_parse", "rewrite",
]


@dataclass(frozen=True)
class RewriteResult:
    # What to send to SGLang; a new object whenever `changed`. Repaired tool schemas in it are shared with other
    # requests and read-only (`frozen.py`): dump it, or copy before changing anything inside.
    body: dict[str, Any]
    changed: bool  # False => forward the original bytes untouched
    rules: tuple[str, ...]  # rules that changed something, in order; on error, the rule that rejected
    error: VllmError | None  # the 4xx vLLM itself would answer; `body` is then irrelevant
    # Set when a rule raised: `error` is then the 400/500 `failure.rule_failure` chose, `rules` names the rule.
    failure: BaseException | None = None


MODEL = RewriteRule(
    "model", model, "`model`: a served-name alias / a LoRA adapter name / an unknown name",
    "the first served name / `<served>:<adapter>` / vLLM's 404 NotFoundError (`param: model`)",
    prefilter=model_prefilter,
)  # fmt: skip
STREAM_OPTIONS = RewriteRule(
    "stream_options", sampling.stream_options, "`stream_options` without `stream: true`",
    "vLLM's 400 (SGLang would ignore the options)", (b"stream_options",),
)  # fmt: skip
CHAT_LOGPROBS = RewriteRule(
    "logprobs", sampling.chat_logprobs, "`top_logprobs` (< 0, without `logprobs`, > `--max-logprobs`)",
    "vLLM's 400 (SGLang has no cap: sglang#40076)", (b"logprobs",),
)  # fmt: skip
COMPLETION_LOGPROBS = RewriteRule(
    "logprobs", sampling.completion_logprobs, "`logprobs` (int; < 0 or > `--max-logprobs`)",
    "vLLM's 400 (SGLang has no cap)", (b"logprobs",),
)  # fmt: skip
RESPONSES_LOGPROBS = RewriteRule(
    "logprobs", sampling.responses_logprobs, "`top_logprobs` > `--max-logprobs`", "vLLM's 400", (b"logprobs",)
)
REPETITION_PENALTY = RewriteRule(
    "repetition_penalty", sampling.repetition_penalty, "`repetition_penalty` <= 0 or > 2",
    "<= 0: vLLM's 400; > 2: clamped to SGLang's limit 2.0, logged and counted (SGLang refuses > 2)",
    (b"repetition_penalty",),
)  # fmt: skip
GENERATION_PROMPT = RewriteRule(
    "generation_prompt", messages.generation_prompt,
    "`add_generation_prompt: false` with a final assistant message; both it and `continue_final_message` true",
    "`continue_final_message: true` (prefill); vLLM's 400. Other `false` cases: unchanged (SGLang ignores)",
    (b"add_generation_prompt",),
)  # fmt: skip
GENERATION_PROMPT_CONFLICT = RewriteRule(
    "generation_prompt", messages.generation_prompt_conflict,
    "`add_generation_prompt` and `continue_final_message` both true", "vLLM's 400 (both are native here)",
    (b"add_generation_prompt",),
)  # fmt: skip
GUIDED_LEGACY = RewriteRule(
    "guided_legacy", guided.guided_legacy,
    "`guided_json`, `guided_regex`, `guided_choice`, `guided_grammar`, `structural_tag` (vLLM <= 0.11); "
    "`guided_decoding_backend`, `guided_whitespace_pattern`",
    "folded into `structured_outputs` (next rule); backend/whitespace knobs dropped; two kinds: vLLM's 400",
    (b"guided_", b'"structural_tag"'),
)  # fmt: skip
STRUCTURED_CHAT = RewriteRule(
    "structured_outputs", guided.structured_outputs_chat,
    "`structured_outputs.{json,regex,choice,grammar,json_object,structural_tag}`",
    "`response_format` json_schema {name, schema} / `regex` / `regex` `(a|b)` / `ebnf` / `response_format` "
    "json_object / `response_format` structural_tag; conflicts: vLLM's 400",
    (b"structured_outputs",),
)  # fmt: skip
STRUCTURED_COMPLETION = RewriteRule(
    "structured_outputs", guided.structured_outputs_completion,
    "`structured_outputs.{json,regex,choice,grammar,json_object,structural_tag}`",
    "`json_schema` (a JSON string) / `regex` / `regex` `(a|b)` / `ebnf` / `response_format` json_object / "
    "`response_format` structural_tag; conflicts: vLLM's 400",
    (b"structured_outputs",),
)  # fmt: skip
REQUEST_ID = RewriteRule(
    "request_id", sampling.request_id, "`request_id`", "`rid` (replaces a client `rid`)", (b"request_id",)
)
STOP_STR = RewriteRule(
    "include_stop_str_in_output", sampling.stop_str, "`include_stop_str_in_output`",
    "`no_stop_trim: true` when true; dropped when false", (b"include_stop_str_in_output",),
)  # fmt: skip
TOP_K = RewriteRule(
    "top_k", sampling.top_k, "`top_k: 0` (disabled)", "`top_k: -1` (SGLang rejects 0)",
    prefilter=regex_prefilter(rb'"top_k"\s*:\s*-?0(?![0-9])'),
)  # fmt: skip
N_CHOICES = RewriteRule(
    "n", sampling.n_choices, "`n` < 1", "vLLM's 400 `n must be at least 1, got N.`", (b'"n"',),
)  # fmt: skip
_RANGES_VLLM = (
    "`presence_penalty`/`frequency_penalty` outside [-2, 2], `temperature` < 0 or not finite, `top_p` outside "
    "(0, 1], `top_k` < -1, `min_p` outside [0, 1], `max_tokens` < 1, `min_tokens` < 0 or > `max_tokens`, an empty "
    "`stop` string, `n` > 1 with `temperature` < 1e-5"
)
_RANGES_SGLANG = "vLLM's 400 with its `SamplingParams` message (SGLang accepts some of these, words others its own way)"
CHAT_RANGES = RewriteRule(
    "sampling_ranges", sampling_checks.chat_ranges, _RANGES_VLLM, _RANGES_SGLANG,
    prefilter=regex_prefilter(sampling_checks.SAMPLING_PREFILTER),
)  # fmt: skip
COMPLETION_RANGES = RewriteRule(
    "sampling_ranges", sampling_checks.completion_ranges, _RANGES_VLLM, _RANGES_SGLANG,
    prefilter=regex_prefilter(sampling_checks.SAMPLING_PREFILTER),
)  # fmt: skip
TOOL_CHOICE = RewriteRule(
    "tool_choice", sampling_checks.tool_choice_needs_tools, "`tool_choice` other than `none` without `tools`",
    "vLLM's 400: When using `tool_choice`, `tools` must be set. (SGLang ignores the choice)",
    (b'"tool_choice"',),
)  # fmt: skip
SCHEMA_LIMITS = RewriteRule(
    "schema_limits", schema_limits.structured_schema_limits,
    "a `response_format` / `structured_outputs` JSON schema with keywords SGLang's xgrammar refuses (`if`/`then`/"
    "`else`, `not`, `contains`, `multipleOf`, `uniqueItems`, `dependent*`, unknown string `format`s, `format`/"
    "`pattern`/lengths together)",
    "the schema without them (looser output, never refused; `pattern` kept over `format` over lengths), logged "
    "with each JSON pointer", schema_limits.SCHEMA_TRIGGERS,
)  # fmt: skip
SCORE_REQUEST = RewriteRule(
    "score_request", score.score_request, "vLLM's score body: `text_1`/`text_2` (or `queries`/`documents`)",
    "SGLang's rerank body `{query, documents}` (sent to `/v1/rerank`); several queries: vLLM-shaped 400 naming "
    "why; the answer becomes vLLM's ScoreResponse", prefilter=lambda raw, ctx: True,
)  # fmt: skip
TRUNCATE = RewriteRule(
    "truncate_prompt_tokens", sampling.truncate_prompt_tokens, "`truncate_prompt_tokens`",
    "dropped: SGLang has only the server-wide `--allow-auto-truncate`", (b"truncate_prompt_tokens",),
)  # fmt: skip
USER_CONTENT_NULL = RewriteRule(
    "user_content_null", messages.user_content_null, "a `user` message with `content: null`",
    '`content: ""` (vLLM reads null as empty; SGLang rejects it)', (b"null",),
)  # fmt: skip
CONTENT_PARTS = RewriteRule(
    "content_parts", messages.content_parts,
    "content parts: plain strings, `input_text`/`output_text`/`refusal`, text parts with null text, `thinking` "
    "outside assistant messages, `input_image`, media parts without `type`",
    "`text` parts; null-text parts removed; `image_url` parts; typed `image_url`/`audio_url`/`video_url`/"
    "`input_audio` parts",
    prefilter=regex_prefilter(rb'"content"\s*:\s*\['),
)  # fmt: skip
ASSISTANT_REASONING = RewriteRule(
    "assistant_reasoning", messages.assistant_reasoning, "assistant message `reasoning` (vLLM 0.33's name)",
    "`reasoning_content` (what SGLang and chat templates read)", (b'"reasoning"',),
)  # fmt: skip
TOOL_SCHEMAS = RewriteRule(
    "tool_schemas", messages.tool_schemas,
    "`tools[].function.parameters` (and message-level `tools`) schemas SGLang's 2020-12 check rejects",
    "repaired schemas, see 'Tool-schema repair' below", (b'"parameters"',),
)  # fmt: skip
RERANK_TOP_N = RewriteRule(
    "top_n", sampling.rerank_top_n, "`top_n: 0` (vLLM: all documents)", "dropped (SGLang rejects < 1)",
    (b'"top_n"',),
)  # fmt: skip


# Rules whose change alters what the engine computes (not just its spelling): the app logs a note for each
# request they change, besides counting it in vllm_shim:rewrites_total{rule}.
NOTES: Mapping[str, str] = MappingProxyType({
    "repetition_penalty": "repetition_penalty above SGLang's limit clamped to 2.0",
})


def _nulls(fields: tuple[str, ...]) -> RewriteRule:
    return RewriteRule(
        "null_defaults", null_defaults(fields), f"`null` for {describe_nulls(fields)}",
        "the field omitted, i.e. the default (SGLang types these as non-nullable)", (b"null",),
    )  # fmt: skip


_CHAT = (
    STREAM_OPTIONS, CHAT_LOGPROBS, GENERATION_PROMPT, GUIDED_LEGACY, STRUCTURED_CHAT, MODEL, REPETITION_PENALTY,
    REQUEST_ID, STOP_STR, TOP_K, N_CHOICES, CHAT_RANGES, TOOL_CHOICE, TRUNCATE, _nulls(sampling.NULLABLE_CHAT),
    USER_CONTENT_NULL, CONTENT_PARTS, ASSISTANT_REASONING, TOOL_SCHEMAS, SCHEMA_LIMITS,
)  # fmt: skip
_COMPLETION = (
    STREAM_OPTIONS, COMPLETION_LOGPROBS, GUIDED_LEGACY, STRUCTURED_COMPLETION, MODEL, REPETITION_PENALTY,
    REQUEST_ID, STOP_STR, TOP_K, N_CHOICES, COMPLETION_RANGES, TRUNCATE, _nulls(sampling.NULLABLE_COMPLETION),
    SCHEMA_LIMITS,
)  # fmt: skip
_RERANK = (MODEL, RERANK_TOP_N, TRUNCATE)

ROUTE_RULES: Mapping[str, tuple[RewriteRule, ...]] = MappingProxyType({
    "/v1/chat/completions": _CHAT,
    "/invocations": _CHAT,  # SageMaker; SGLang serves it as chat
    "/v1/completions": _COMPLETION,
    "/v1/responses": (
        RESPONSES_LOGPROBS, MODEL, REPETITION_PENALTY, TOP_K, _nulls(sampling.NULLABLE_RESPONSES), TOOL_SCHEMAS,
    ),
    "/v1/embeddings": (MODEL, REQUEST_ID, TRUNCATE),
    "/tokenize": (
        GENERATION_PROMPT_CONFLICT, MODEL, USER_CONTENT_NULL, CONTENT_PARTS, ASSISTANT_REASONING, TOOL_SCHEMAS,
    ),
    "/detokenize": (MODEL,),
    "/v1/rerank": _RERANK,
    "/rerank": _RERANK,
    # Routes that name a model and need nothing else: vLLM's unknown-model 404 (and alias/adapter names).
    "/v1/score": (MODEL, SCORE_REQUEST),  # rules for /score and /v1/score; the engine path is /v1/rerank
    "/v1/classify": (MODEL,),
    "/v1/messages": (MODEL,),
    "/v1/messages/count_tokens": (MODEL,),
})  # fmt: skip


def rewrite(
    route: str, body: dict[str, Any], config: MiddlewareConfig | RewriteContext, lora_names: Collection[str] = ()
) -> RewriteResult:
    """Translate one parsed request body for `route`. Never raises; unknown routes and non-object bodies pass.

    Fails closed: a rule that raises ends the rewrite with an error answer (`failure.py`), never a body
    forwarded without that rule's change.

    `config` may be a prebuilt `RewriteContext` (cheapest); `lora_names` adds adapters loaded at runtime.
    """
    rules = ROUTE_RULES.get(route)
    if not rules or not isinstance(body, dict):
        return RewriteResult(body, False, (), None)
    ctx = context_for(config, lora_names)
    current = body
    applied: list[str] = []
    for rule in rules:
        try:
            out = rule.apply(current, ctx)
        except Exception as exc:  # answered and logged by the caller, never skipped
            return RewriteResult(body, False, (rule.name,), rule_failure(rule.name, exc), exc)
        if out is None:
            continue
        if isinstance(out, VllmError):
            return RewriteResult(body, False, (rule.name,), out)
        current = out
        applied.append(rule.name)
    return RewriteResult(current, bool(applied), tuple(applied), None)


@dataclass(frozen=True)
class _Prefilter:
    triggers: tuple[bytes, ...]
    prefiltered: tuple[RewriteRule, ...]


# A body spelling an ASCII letter or `_` as `\u00XX` could hide a trigger key from substring search.
_ESCAPED_ASCII = re.compile(rb"\\u00[4-7][0-9a-fA-F]")


def _prefilter(rules: tuple[RewriteRule, ...]) -> _Prefilter:
    triggers = sorted({t for rule in rules if rule.prefilter is None for t in rule.triggers})
    return _Prefilter(tuple(triggers), tuple(rule for rule in rules if rule.prefilter is not None))


_PREFILTERS = {route: _prefilter(rules) for route, rules in ROUTE_RULES.items()}


def has_rules(route: str) -> bool:
    """Whether any rule applies to the engine path `route` (a route without any is never parsed)."""
    return route in ROUTE_RULES


def needs_parse(route: str, raw: bytes, config: MiddlewareConfig | RewriteContext | None = None) -> bool:
    """False only if `rewrite(route, parse(raw), config)` would surely change nothing and raise no error.

    Without `config` the model check cannot compare names, so any `"model"` key means "parse".
    """
    prefilter = _PREFILTERS.get(route)
    if prefilter is None:
        return False
    data = bytes(raw) if not isinstance(raw, (bytes, bytearray)) else raw
    if (b"\\u00" in data and _ESCAPED_ASCII.search(data)) or any(t in data for t in prefilter.triggers):
        return True
    ctx = None if config is None else context_for(config)
    return any(rule.prefilter is not None and rule.prefilter(data, ctx) for rule in prefilter.prefiltered)
