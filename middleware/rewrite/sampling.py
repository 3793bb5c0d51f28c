"""Rules on sampling and request-option fields: renames, vLLM's own 4xx checks, and value ranges.

Messages follow vLLM 0.33 exactly where vLLM has one: a `VLLMValidationError` renders as
`"<message> (parameter=p, value=v)"` with `param` = p (vllm/exceptions.py, error_response.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from middleware.rewrite.base import (
    Body,
    RewriteContext,
    RuleResult,
    bad_request,
    is_number,
    validation_message,
    without,
)

# SGLang's ceiling for repetition_penalty (sampling_params.py verify(): (0, 2]); vLLM only requires > 0.
SGLANG_MAX_REPETITION_PENALTY = 2.0


def request_id(body: Body, ctx: RewriteContext) -> RuleResult:
    """vLLM's `request_id` is SGLang's `rid`; vLLM ignores `rid`, so `request_id` wins when both are sent."""
    if "request_id" not in body:
        return None
    out = without(body, ("request_id",))
    if body["request_id"] is not None:
        out["rid"] = body["request_id"]
    return out


def stop_str(body: Body, ctx: RewriteContext) -> RuleResult:
    """`include_stop_str_in_output: true` is SGLang's `no_stop_trim: true` (false is both defaults)."""
    if "include_stop_str_in_output" not in body:
        return None
    out = without(body, ("include_stop_str_in_output",))
    if body["include_stop_str_in_output"]:
        out["no_stop_trim"] = True
    return out


def top_k(body: Body, ctx: RewriteContext) -> RuleResult:
    """vLLM disables top-k with 0 (or -1); SGLang only accepts -1 for that and rejects 0."""
    value = body.get("top_k")
    if is_number(value) and value == 0:
        return {**body, "top_k": -1}
    return None


def _top_logprobs_checks(body: Body, ctx: RewriteContext) -> RuleResult:
    """vLLM's chat `check_logprobs` validator, then the engine's `--max-logprobs` cap."""
    if "top_logprobs" not in body or body["top_logprobs"] is None:
        return None
    n = body["top_logprobs"]
    if not isinstance(n, (int, float)):
        return bad_request(validation_message("`top_logprobs` must be an integer.", "top_logprobs", n), "top_logprobs")
    if n < 0 and n != -1:
        message = validation_message("`top_logprobs` must be a positive value or -1.", "top_logprobs", n)
        return bad_request(message, "top_logprobs")
    if (n == -1 or n > 0) and not body.get("logprobs"):
        message = "when using `top_logprobs`, `logprobs` must be set to true."
        return bad_request(validation_message(message, "top_logprobs"), "top_logprobs")
    return _cap(n, ctx)


def _completion_logprobs_checks(body: Body, ctx: RewriteContext) -> RuleResult:
    """vLLM's completions `check_logprobs` (`logprobs` is an int there), then the `--max-logprobs` cap."""
    if "logprobs" not in body or body["logprobs"] is None:
        return None
    n = body["logprobs"]
    if not isinstance(n, (int, float)):
        return bad_request(validation_message("`logprobs` must be an integer.", "logprobs", n), "logprobs")
    if n < 0 and n != -1:
        return bad_request(validation_message("`logprobs` must be a positive value or -1.", "logprobs", n), "logprobs")
    return _cap(n, ctx)


def _cap(n: float, ctx: RewriteContext) -> RuleResult:
    """SamplingParams._validate_logprobs. -1 means the whole vocabulary, which we cannot size, so the
    message names -1 where vLLM would print the vocabulary size."""
    limit = ctx.config.max_logprobs
    if limit == -1 or not n or (n != -1 and n <= limit):
        return None
    shown = int(n) if isinstance(n, float) and n.is_integer() else n
    requested = "-1 (the whole vocabulary)" if n == -1 else f"{shown}"
    message = f"Requested sample logprobs of {requested}, which is greater than max allowed: {limit}"
    return bad_request(validation_message(message, "logprobs", shown), "logprobs")


def chat_logprobs(body: Body, ctx: RewriteContext) -> RuleResult:
    return _top_logprobs_checks(body, ctx)


def completion_logprobs(body: Body, ctx: RewriteContext) -> RuleResult:
    return _completion_logprobs_checks(body, ctx)


def responses_logprobs(body: Body, ctx: RewriteContext) -> RuleResult:
    """Responses has no `logprobs` switch; only the engine cap applies (SGLang has none: sglang#40076)."""
    n = body.get("top_logprobs")
    return _cap(n, ctx) if is_number(n) else None


def repetition_penalty(body: Body, ctx: RewriteContext) -> RuleResult:
    """Values in (0, 2] pass. <= 0 gets vLLM's own 400. Above 2 vLLM samples and SGLang refuses (its
    SamplingParams.verify): the request must work as on vLLM, so the value is clamped to SGLang's 2.0 (the
    strongest penalty it has), which the app logs and counts (`vllm_shim:rewrites_total{rule=...}`)."""
    value = body.get("repetition_penalty")
    if not is_number(value):
        return None
    if value <= 0:
        return bad_request(f"repetition_penalty must be greater than zero, got {float(value)}.")
    if value > SGLANG_MAX_REPETITION_PENALTY:
        return {**body, "repetition_penalty": SGLANG_MAX_REPETITION_PENALTY}
    return None


def stream_options(body: Body, ctx: RewriteContext) -> RuleResult:
    """vLLM's validate_stream_options; SGLang would silently ignore the options instead."""
    if body.get("stream_options") and not body.get("stream"):
        message = validation_message("Stream options can only be defined when `stream=True`.", "stream_options")
        return bad_request(message, "stream_options")
    return None


def truncate_prompt_tokens(body: Body, ctx: RewriteContext) -> RuleResult:
    """No per-request equivalent in SGLang (only the server-wide `--allow-auto-truncate`): dropped."""
    return without(body, ("truncate_prompt_tokens",)) if "truncate_prompt_tokens" in body else None


def rerank_top_n(body: Body, ctx: RewriteContext) -> RuleResult:
    """vLLM's `top_n: 0` (its default) means "all documents"; SGLang rejects top_n < 1 and defaults to all."""
    value = body.get("top_n")
    return without(body, ("top_n",)) if is_number(value) and value == 0 else None


def null_defaults(fields: Iterable[str]) -> Callable[[Body, RewriteContext], RuleResult]:
    """Drop `null` for fields vLLM types as optional (null = default) but SGLang types as required values."""
    names = frozenset(fields)

    def rule(body: Body, ctx: RewriteContext) -> RuleResult:
        nulls = [k for k in names if k in body and body[k] is None]
        return without(body, nulls) if nulls else None

    rule.__name__ = "null_defaults"
    rule.__doc__ = null_defaults.__doc__
    return rule


def describe_nulls(fields: Iterable[str]) -> str:
    return ", ".join(f"`{f}`" for f in sorted(fields))


# vLLM 0.33 types these `X | None` (null = default); SGLang 0.5.23 types them as plain values.
NULLABLE_CHAT = (
    "frequency_penalty", "presence_penalty", "logprobs", "n", "stream", "parallel_tool_calls", "skip_special_tokens",
)  # fmt: skip
NULLABLE_COMPLETION = (
    "echo", "frequency_penalty", "presence_penalty", "max_tokens", "stream", "temperature", "top_p", "top_k",
    "min_p", "repetition_penalty", "skip_special_tokens", "return_token_ids",
)  # fmt: skip
NULLABLE_RESPONSES = ("frequency_penalty", "presence_penalty")


def n_choices(body: Body, ctx: RewriteContext) -> RuleResult:
    """vLLM's SamplingParams._verify_args: `n` below 1 is a 400 (ValueError) before anything runs."""
    value = body.get("n")
    if is_number(value) and isinstance(value, int) and value < 1:
        return bad_request(f"n must be at least 1, got {value}.")
    return None
