"""SGLang's semantic request checks, in the order and with the messages of 0.5.23 (sglang.md §2.3).

Three layers, each with its own error `type`, because the middleware sees all three:
- `_validate_request` (serving_chat.py): type "BadRequestError".
- ValueErrors while converting the request (LoRA selection, tools + constraints): type "BadRequest".
- `SamplingParams.verify()` and the tokenizer manager's context check: type "BadRequestError".
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.errors import SimError
from sim.grammar import json_grammar_error
from sim.protocol import (
    TOOL_BEARING_ROLES,
    ChatCompletionRequest,
    ResponseFormat,
    Tool,
    ToolChoice,
)
from sim.schema import tool_schema_error
from sim.sglang_options import SimConfig

CHAT_TEMPLATE_NOT_ALLOWED = (
    "Request-supplied chat_template is not allowed. Launch the server with --trust-request-chat-template to "
    "allow it."
)
TEXT_ONLY_PART_TYPES = ("text", "thinking", "reasoning", "tool_reference")
TOOLS_WITH_CONSTRAINT = (
    "tool_choice 'required' or a named tool cannot be combined with response_format, regex, or ebnf; "
    "use tool_choice 'auto' instead."
)


def effective_tools(req: ChatCompletionRequest) -> list[Tool]:
    """Request-level tools plus the `tools` carried by system/developer/root messages."""
    tools = list(req.tools or [])
    for message in req.messages:
        if message.role in TOOL_BEARING_ROLES:
            tools.extend(getattr(message, "tools", None) or [])
    return tools


def _empty_messages(req: ChatCompletionRequest, cfg: SimConfig) -> str | None:
    return None if req.messages else "Messages cannot be empty."


def _tool_choice_error(req: ChatCompletionRequest, cfg: SimConfig) -> str | None:
    if req.tool_choice == "required" and not req.tools:
        return "Tools cannot be empty if tool choice is set to required."
    if isinstance(req.tool_choice, ToolChoice):
        if not req.tools:
            return "Tools cannot be empty if tool choice is set to a specific tool."
        name = req.tool_choice.function.name
        if not any(tool.function.name == name for tool in req.tools):
            return f"Tool '{name}' not found in tools list."
    return None


def _tool_schemas(req: ChatCompletionRequest, cfg: SimConfig) -> str | None:
    for i, tool in enumerate(effective_tools(req)):
        error = tool_schema_error(i, tool.function.parameters)
        if error:
            return error
    return None


def _chat_template(req: ChatCompletionRequest, cfg: SimConfig) -> str | None:
    requested = (req.chat_template_kwargs or {}).get("chat_template")
    return CHAT_TEMPLATE_NOT_ALLOWED if requested and not cfg.trust_request_chat_template else None


def _max_tokens(req: ChatCompletionRequest, cfg: SimConfig) -> str | None:
    max_output = req.max_completion_tokens or req.max_tokens
    if max_output and max_output > cfg.context_length and not cfg.allow_auto_truncate:
        return (f"max_completion_tokens is too large: {max_output}."
                f"This model supports at most {cfg.context_length} completion tokens.")
    return None


def _json_schema_format(req: ChatCompletionRequest, cfg: SimConfig) -> str | None:
    rf = req.response_format
    if not isinstance(rf, ResponseFormat) or rf.type != "json_schema":
        return None
    has_schema = rf.json_schema is not None and rf.json_schema.schema_ is not None
    if not has_schema:
        return "schema_ is required for json_schema response format request."
    return json_grammar_error(rf.json_schema.schema_ if rf.json_schema else None)


def _media_error(req: ChatCompletionRequest, cfg: SimConfig) -> str | None:
    """The simulated model is text-only, like most models behind this shim."""
    for message in req.messages:
        for part in message.content if isinstance(message.content, list) else ():
            if part.type not in TEXT_ONLY_PART_TYPES:
                return f"Model only supports text input; received unsupported content type '{part.type}'."
    return None


_CHAT_CHECKS = (_empty_messages, _tool_choice_error, _tool_schemas, _chat_template, _max_tokens, _json_schema_format,
                _media_error)


def validate_chat(req: ChatCompletionRequest, cfg: SimConfig) -> None:
    """`OpenAIServingChat._validate_request`: the first failing check, in SGLang's order."""
    for check in _CHAT_CHECKS:
        error = check(req, cfg)
        if error:
            raise SimError(error)


def check_tools_vs_constraints(req: ChatCompletionRequest) -> None:
    forced = req.tool_choice == "required" or isinstance(req.tool_choice, ToolChoice)
    if forced and req.tools and (req.response_format is not None or req.regex or req.ebnf):
        raise SimError(TOOLS_WITH_CONSTRAINT, "BadRequest")


def resolve_lora(model: str, lora_path: str | list[str | None] | None, cfg: SimConfig,
                 loaded: dict[str, str]) -> str | None:
    """`model: "<base>:<adapter>"` or `lora_path` selects an adapter; a bare adapter name does not."""
    if isinstance(lora_path, list):
        lora_path = next((p for p in lora_path if p), None)
    adapter = lora_path or (model.split(":", 1)[1] if ":" in model else None)
    if not adapter:
        return None
    if not cfg.enable_lora:
        raise SimError(f"LoRA adapter '{adapter}' was requested, but LoRA is not enabled. Please launch the "
                       "server with --enable-lora flag and preload adapters using --lora-paths or "
                       "/load_lora_adapter endpoint.", "BadRequest")
    if adapter not in loaded:
        raise SimError(f"The following requested LoRA adapters are not loaded: {adapter}\n"
                       f"Loaded adapters: {loaded}")
    return adapter


@dataclass(frozen=True)
class Sampling:
    """The SamplingParams fields `verify()` looks at, with SGLang's defaults applied."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    min_p: float = 0.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    repetition_penalty: float = 1.0
    max_new_tokens: int | None = None
    min_new_tokens: int = 0
    constraints: int = 0  # how many of json_schema / regex / ebnf / structural_tag are set

    def verify(self) -> None:
        checks = (
            (self.temperature < 0.0, f"temperature must be non-negative, got {self.temperature}."),
            (not 0.0 < self.top_p <= 1.0, f"top_p must be in (0, 1], got {self.top_p}."),
            (not 0.0 <= self.min_p <= 1.0, f"min_p must be in [0, 1], got {self.min_p}."),
            (self.top_k < 1 and self.top_k != -1, f"top_k must be -1 (disable) or at least 1, got {self.top_k}."),
            (not -2.0 <= self.frequency_penalty <= 2.0,
             f"frequency_penalty must be in [-2, 2], got {self.frequency_penalty}."),
            (not -2.0 <= self.presence_penalty <= 2.0,
             f"presence_penalty must be in [-2, 2], got {self.presence_penalty}."),
            (not 0.0 < self.repetition_penalty <= 2.0,
             f"repetition_penalty must be in (0, 2], got {self.repetition_penalty}."),
            (self.min_new_tokens < 0, f"min_new_tokens must be in [0, max_new_tokens], got {self.min_new_tokens}."),
            (self.max_new_tokens is not None and self.max_new_tokens < 0,
             f"max_new_tokens must be at least 0, got {self.max_new_tokens}."),
            (self.max_new_tokens is not None and self.min_new_tokens > self.max_new_tokens,
             f"min_new_tokens must be in [0, max_new_tokens({self.max_new_tokens})], got {self.min_new_tokens}."),
            (self.constraints > 1, "Only one of json_schema, regex, ebnf, or structural_tag can be set."),
        )
        for failed, message in checks:
            if failed:
                raise SimError(message)


def check_context(prompt_tokens: int, max_new_tokens: int | None, cfg: SimConfig) -> None:
    """The tokenizer manager's length check (skipped entirely with --allow-auto-truncate)."""
    if cfg.allow_auto_truncate:
        return
    ctx = cfg.context_length
    if prompt_tokens >= ctx:
        raise SimError(f"The input ({prompt_tokens} tokens) is longer than the model's context length ({ctx} "
                       "tokens).")
    if max_new_tokens is not None and max_new_tokens + prompt_tokens >= ctx:
        raise SimError(
            f"Requested token count exceeds the model's maximum context length of {ctx} tokens. You requested a "
            f"total of {max_new_tokens + prompt_tokens} tokens: {prompt_tokens} tokens from the input messages and "
            f"{max_new_tokens} tokens for the completion. Please reduce the number of tokens in the input "
            "messages or the completion to fit within the limit."
        )
