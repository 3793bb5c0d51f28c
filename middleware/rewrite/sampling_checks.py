"""vLLM's own 400s for sampling values and tool options that SGLang 0.5.23 forwards or answers differently.

Copied from vLLM's `SamplingParams._verify_args` / `_verify_greedy_sampling` (vllm/sampling_params.py) and the
chat request's `check_tool_usage` validator, in vLLM's order and with its messages. SGLang accepts some of these
(`max_tokens: 0`, `n > 1` with `temperature: 0`, `tool_choice` without `tools`, an empty stop string) and
refuses others with its own wording; either way the client must see what vLLM answers. vLLM's newer
`temperature` ceiling (> 2) is not copied: not every vLLM version has it.
"""

from __future__ import annotations

import math
from typing import Any

from middleware.rewrite.base import Body, RewriteContext, RuleResult, bad_request, is_number, validation_message

_SAMPLING_EPS = 1e-5  # vLLM: temperature below this is greedy sampling


def _float(body: Body, key: str) -> float | None:
    value = body.get(key)
    return float(value) if is_number(value) else None


def _with_param(message: str, key: str, value: Any) -> RuleResult:
    """A `VLLMValidationError` that names its parameter (rendered `... (parameter=p, value=v)`)."""
    return bad_request(validation_message(message, key, value), key)


def _penalties_and_temperature(body: Body) -> RuleResult:
    for key in ("presence_penalty", "frequency_penalty"):
        value = _float(body, key)
        if value is not None and not -2.0 <= value <= 2.0:
            return bad_request(f"{key} must be in [-2, 2], got {value}.")
    temperature = _float(body, "temperature")
    if temperature is not None and not math.isfinite(temperature):
        return _with_param(f"temperature must be a finite number, got {temperature}.", "temperature", temperature)
    if temperature is not None and temperature < 0.0:
        return _with_param(f"temperature must be non-negative, got {temperature}.", "temperature", temperature)
    return None


def _top_values(body: Body) -> RuleResult:
    top_p = _float(body, "top_p")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        return _with_param(f"top_p must be in (0, 1], got {top_p}.", "top_p", top_p)
    top_k = body.get("top_k")
    if is_number(top_k) and isinstance(top_k, int) and top_k < -1:
        return bad_request(f"top_k must be 0 (disable), or at least 1, got {top_k}.")
    min_p = _float(body, "min_p")
    if min_p is not None and not 0.0 <= min_p <= 1.0:
        return bad_request(f"min_p must be in [0, 1], got {min_p}.")
    return None


def _max_tokens(body: Body, chat: bool) -> Any:
    """The value vLLM verifies: chat takes `max_completion_tokens or max_tokens` (so a 0 in the first falls
    through to the second), completions take `max_tokens`."""
    value = (body.get("max_completion_tokens") or body.get("max_tokens")) if chat else body.get("max_tokens")
    return value if is_number(value) and isinstance(value, int) else None


def _token_counts(body: Body, chat: bool) -> RuleResult:
    max_tokens = _max_tokens(body, chat)
    if max_tokens is not None and max_tokens < 1:
        return _with_param(f"max_tokens must be at least 1, got {max_tokens}.", "max_tokens", max_tokens)
    min_tokens = body.get("min_tokens")
    if not (is_number(min_tokens) and isinstance(min_tokens, int)):
        return None
    if min_tokens < 0:
        return bad_request(f"min_tokens must be greater than or equal to 0, got {min_tokens}.")
    if max_tokens is not None and min_tokens > max_tokens:
        return bad_request(f"min_tokens must be less than or equal to max_tokens={max_tokens}, got {min_tokens}.")
    return None


def _stop_and_greedy(body: Body) -> RuleResult:
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    if any(s == "" for s in stops):
        return bad_request("stop cannot contain an empty string.")
    temperature, n = _float(body, "temperature"), body.get("n")
    greedy = temperature is not None and temperature < _SAMPLING_EPS
    if greedy and is_number(n) and isinstance(n, int) and n > 1:
        return bad_request(f"n must be 1 when using greedy sampling, got {n}.")
    return None


def _ranges(body: Body, chat: bool) -> RuleResult:
    return (
        _penalties_and_temperature(body) or _top_values(body) or _token_counts(body, chat) or _stop_and_greedy(body)
    )


def chat_ranges(body: Body, ctx: RewriteContext) -> RuleResult:
    return _ranges(body, chat=True)


def completion_ranges(body: Body, ctx: RewriteContext) -> RuleResult:
    return _ranges(body, chat=False)


def tool_choice_needs_tools(body: Body, ctx: RewriteContext) -> RuleResult:
    """vLLM's chat `check_tool_usage`: any `tool_choice` but "none" needs `tools` (SGLang just ignores it)."""
    choice = body.get("tool_choice")
    if choice is not None and choice != "none" and body.get("tools") is None:
        return bad_request(validation_message("When using `tool_choice`, `tools` must be set."))
    return None


# Fires on values that may be out of range: negatives, exponents, NaN/Infinity, zeros, penalties >= 2,
# top_p/min_p >= 1, near-zero temperatures (greedy with n > 1), any min_tokens, empty or listed stops.
SAMPLING_PREFILTER = (
    rb'"(?:presence_penalty|frequency_penalty|temperature|top_p|top_k|min_p|max_tokens|max_completion_tokens)"'
    rb"\s*:\s*(?:-|[0-9.]*[eE]|[NI]|0(?:\.0*)?(?![0-9.eE]))"
    rb'|"(?:presence_penalty|frequency_penalty)"\s*:\s*(?:[2-9]|[1-9][0-9])'
    rb'|"(?:top_p|min_p)"\s*:\s*[1-9]|"temperature"\s*:\s*0\.0000|"min_tokens"|"stop"\s*:\s*(?:""|\[)'
)
