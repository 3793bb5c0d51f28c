"""Rules on `messages` and `tools`: message shapes vLLM accepts and SGLang 0.5.23's pydantic models reject.

SGLang's user message is `content: str | list[part]` (no null) and its part union is text, thinking,
image_url, video_url, audio_url, input_audio and tool_reference, each with an explicit `type`. vLLM's
chat parser (renderers/chat_utils/chat_message.py) also reads plain-string parts, `input_text`,
`output_text` and `refusal` parts as text, `input_image` parts as images, and parts without `type` by
their media key; text parts whose text is null are skipped.
"""

from __future__ import annotations

from typing import Any

from middleware.rewrite.base import Body, RewriteContext, RuleResult, bad_request, map_messages, validation_message
from middleware.rewrite.schema import repair_tools

_TEXT_KEYS = {"text": "text", "input_text": "text", "output_text": "text", "refusal": "refusal"}
_UNTYPED_MEDIA = ("image_url", "audio_url", "video_url", "input_audio")
_URL_MEDIA = frozenset(("image_url", "audio_url", "video_url"))
_DROP_PART = object()


def user_content_null(body: Body, ctx: RewriteContext) -> RuleResult:
    """vLLM reads a user message's `content: null` as empty; SGLang's pydantic model rejects it."""

    def fix(message: Any) -> Any:
        if isinstance(message, dict) and message.get("role") == "user" and "content" in message:
            return {**message, "content": ""} if message["content"] is None else message
        return message

    return map_messages(body, fix)


def content_parts(body: Body, ctx: RewriteContext) -> RuleResult:
    """Spell every content part the way SGLang's part union accepts it (see the module docstring)."""

    def fix(message: Any) -> Any:
        if not isinstance(message, dict) or not isinstance(message.get("content"), list):
            return message
        parts = message["content"]
        is_assistant = message.get("role") == "assistant"
        fixed = [_fix_part(part, is_assistant) for part in parts]
        if all(a is b for a, b in zip(fixed, parts, strict=True)):
            return message
        return {**message, "content": [p for p in fixed if p is not _DROP_PART]}

    return map_messages(body, fix)


def _fix_part(part: Any, is_assistant: bool) -> Any:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, dict):
        return part
    kind = part.get("type")
    if kind in _TEXT_KEYS:
        text = part.get(_TEXT_KEYS[kind])
        if text is None:
            return _DROP_PART  # vLLM skips a text/refusal part with no text
        if kind == "text":
            return part
        rest = {k: v for k, v in part.items() if k not in ("type", "refusal")}
        return {**rest, "type": "text", "text": text}
    if kind == "thinking" and not is_assistant:
        # vLLM reads thinking parts as text anywhere; SGLang only allows them in assistant messages.
        text = part.get("thinking", part.get("text"))
        return {"type": "text", "text": text} if isinstance(text, str) else part
    if kind == "input_image":
        url = part.get("image_url")
        return {"type": "image_url", "image_url": {"url": url}} if isinstance(url, str) else part
    if kind is None:
        return _typed_media(part)
    return part


def _typed_media(part: dict[str, Any]) -> Any:
    """vLLM accepts `{"image_url": "https://..."}` (no `type`); SGLang needs the typed OpenAI form."""
    for key in _UNTYPED_MEDIA:
        if key in part:
            value = part[key]
            if key in _URL_MEDIA and isinstance(value, str):
                value = {"url": value}
            return {**part, "type": key, key: value}
    return part


def assistant_reasoning(body: Body, ctx: RewriteContext) -> RuleResult:
    """vLLM 0.33's assistant-message `reasoning` (it wins over `reasoning_content`) reaches chat templates as
    `reasoning_content`, the only name SGLang reads; without it interleaved-thinking history is lost."""

    def fix(message: Any) -> Any:
        is_assistant = isinstance(message, dict) and message.get("role") == "assistant"
        if is_assistant and isinstance(message.get("reasoning"), str):
            out = {k: v for k, v in message.items() if k != "reasoning"}
            out["reasoning_content"] = message["reasoning"]
            return out
        return message

    return map_messages(body, fix)


def generation_prompt(body: Body, ctx: RewriteContext) -> RuleResult:
    """`add_generation_prompt: false` after a final assistant message is vLLM's prefill idiom; SGLang spells
    it `continue_final_message: true` and ignores `add_generation_prompt` on chat."""
    if "add_generation_prompt" not in body:
        return None
    error = generation_prompt_conflict(body, ctx)
    if error is not None:
        return error
    if body["add_generation_prompt"] is not False:
        return None
    messages = body.get("messages")
    last = messages[-1] if isinstance(messages, list) and messages else None
    if not isinstance(last, dict) or last.get("role") != "assistant":
        return None  # no SGLang equivalent for "render without the assistant header": left as is (ignored)
    out = {k: v for k, v in body.items() if k != "add_generation_prompt"}
    out["continue_final_message"] = True
    return out


def generation_prompt_conflict(body: Body, ctx: RewriteContext) -> RuleResult:
    """vLLM's check_generation_prompt validator."""
    if body.get("continue_final_message") and body.get("add_generation_prompt"):
        message = "Cannot set both `continue_final_message` and `add_generation_prompt` to True."
        return bad_request(validation_message(message))
    return None


def tool_schemas(body: Body, ctx: RewriteContext) -> RuleResult:
    """Repair request-level `tools` and message-level `tools` (system/developer/root messages)."""
    out = body
    if "tools" in body:
        tools = repair_tools(body["tools"])
        if tools is not body["tools"]:
            out = {**body, "tools": tools}

    def fix(message: Any) -> Any:
        if isinstance(message, dict) and "tools" in message:
            tools = repair_tools(message["tools"])
            if tools is not message["tools"]:
                return {**message, "tools": tools}
        return message

    fixed = map_messages(out, fix)
    if fixed is not None:
        return fixed
    return None if out is body else out
