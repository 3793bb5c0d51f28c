"""Request models shaped like SGLang 0.5.23's `entrypoints/openai/protocol.py`.

Class names follow SGLang's on purpose: pydantic puts union member names into error locations, and the middleware
sees those in 400 messages. Unknown fields are ignored (pydantic's default, which SGLang keeps), so vLLM-only keys
such as `guided_json` vanish silently, as they do on a real SGLang.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

GENERIC_ROLES = ("system", "assistant", "tool", "function", "developer", "latest_reminder", "root")
TOOL_BEARING_ROLES = ("system", "developer", "root")


def _lower_role(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ChatCompletionMessageContentTextPart(_Part):
    type: Literal["text"]
    text: str


class ChatCompletionMessageContentImagePart(_Part):
    type: Literal["image_url"]
    image_url: Any


class ChatCompletionMessageContentVideoPart(_Part):
    type: Literal["video_url"]
    video_url: Any


class ChatCompletionMessageContentAudioPart(_Part):
    type: Literal["audio_url"]
    audio_url: Any


class InputAudio(_Part):
    data: str
    format: Literal["wav", "mp3"]


class ChatCompletionMessageContentInputAudioPart(_Part):
    type: Literal["input_audio"]
    input_audio: InputAudio


class ChatCompletionMessageContentToolReferencePart(_Part):
    type: Literal["tool_reference"]


class ChatCompletionMessageContentThinkingPart(_Part):
    type: Literal["thinking", "reasoning"]


_USER_PARTS = (
    ChatCompletionMessageContentTextPart
    | ChatCompletionMessageContentImagePart
    | ChatCompletionMessageContentVideoPart
    | ChatCompletionMessageContentAudioPart
    | ChatCompletionMessageContentInputAudioPart
    | ChatCompletionMessageContentToolReferencePart
)
UserContentPart = Annotated[_USER_PARTS, Field(discriminator="type")]
ContentPart = Annotated[_USER_PARTS | ChatCompletionMessageContentThinkingPart, Field(discriminator="type")]


class Function(BaseModel):
    name: str
    description: str | None = None
    parameters: Any = None  # any JSON passes pydantic; the schema check happens in _validate_request
    strict: bool = False


class Tool(BaseModel):
    type: str = "function"
    function: Function


class ChatCompletionMessageGenericParam(BaseModel):
    role: Literal["system", "assistant", "tool", "function", "developer", "latest_reminder", "root"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[Any] | None = None
    reasoning_content: str | None = None
    tools: list[Tool] | None = None

    @field_validator("role", mode="before")
    @classmethod
    def lower_role(cls, value: Any) -> Any:
        return _lower_role(value)


class ChatCompletionMessageUserParam(BaseModel):
    role: Literal["user"]
    content: str | list[UserContentPart]
    name: str | None = None

    @field_validator("role", mode="before")
    @classmethod
    def lower_role(cls, value: Any) -> Any:
        return _lower_role(value)


ChatCompletionMessageParam = ChatCompletionMessageGenericParam | ChatCompletionMessageUserParam


class ToolChoiceFuncName(BaseModel):
    name: str | None = None


class ToolChoice(BaseModel):
    function: ToolChoiceFuncName
    type: Literal["function"] = "function"


class JsonSchemaResponseFormat(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    name: str
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: StrictBool | None = False


class ResponseFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaResponseFormat | None = None


class StructuralTagResponseFormat(BaseModel):
    type: Literal["structural_tag"]
    format: Any


class StructuresResponseFormat(BaseModel):
    begin: str
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    end: str


class LegacyStructuralTagResponseFormat(BaseModel):
    type: Literal["structural_tag"]
    structures: list[StructuresResponseFormat]
    triggers: list[str]


class StreamOptions(BaseModel):
    include_usage: bool | None = False
    continuous_usage_stats: bool | None = False


ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "ultra", "max"]


class _SamplingFields(BaseModel):
    """Fields chat and completions share."""

    model: str = "default"
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    logit_bias: dict[str, float] | None = None
    n: int = 1
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    min_p: float | None = None
    min_tokens: int = 0
    repetition_penalty: float | None = None
    stop_token_ids: list[int] | None = None
    no_stop_trim: bool = False
    ignore_eos: bool = False
    skip_special_tokens: bool = True
    lora_path: str | list[str | None] | None = None
    rid: str | list[str] | None = None
    # P/D disaggregation (sim/disagg.py): the prefill server's bootstrap address and the room both halves share.
    bootstrap_host: str | None = None
    bootstrap_port: int | None = None
    bootstrap_room: int | None = None
    regex: str | None = None
    ebnf: str | None = None
    priority: int | None = None
    response_format: ResponseFormat | StructuralTagResponseFormat | LegacyStructuralTagResponseFormat | None = None


class ChatCompletionRequest(_SamplingFields):
    messages: list[ChatCompletionMessageParam]
    logprobs: bool = False
    top_logprobs: int | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | Literal["auto", "required", "none"] = "none"
    parallel_tool_calls: bool = True
    reasoning_effort: ReasoningEffort | Annotated[float, Field(ge=0, le=0.99)] | None = None
    continue_final_message: bool = False
    separate_reasoning: bool = True
    stream_reasoning: bool = True
    chat_template_kwargs: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def tool_choice_default(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("tool_choice") is None:
            values = {**values, "tool_choice": "none" if values.get("tools") is None else "auto"}
        return values

    @field_validator("logprobs", mode="before")
    @classmethod
    def int_logprobs(cls, value: Any) -> Any:
        return bool(value) if isinstance(value, int) else value


class CompletionRequest(_SamplingFields):
    prompt: list[list[int]] | list[int] | list[str] | str
    best_of: int | None = None
    echo: bool = False
    logprobs: int | None = None
    max_tokens: int | None = 16
    suffix: str | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    json_schema: str | None = None

    @field_validator("max_tokens")
    @classmethod
    def positive_max_tokens(cls, value: int | None) -> int | None:
        if value is not None and value <= 0:
            raise ValueError("max_tokens must be positive")
        return value


class EmbeddingRequest(BaseModel):
    input: list[list[int]] | list[int] | list[str] | str
    model: str = "default"
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None
    rid: str | list[str] | None = None


class V1RerankReqInput(BaseModel):
    query: str
    documents: list[str]
    instruct: str | None = None
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool = True


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = "default"
    prompt: str | list[str] | None = None
    messages: list[ChatCompletionMessageParam] | None = None
    add_special_tokens: bool = True
    add_generation_prompt: bool = True

    @model_validator(mode="after")
    def exactly_one_input(self) -> TokenizeRequest:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("Exactly one of 'prompt' or 'messages' must be provided.")
        return self


class DetokenizeRequest(BaseModel):
    model: str = "default"
    tokens: list[int] | list[list[int]]
    skip_special_tokens: bool = True


class GenerateReqInput(BaseModel):
    text: str | list[str] | None = None
    input_ids: list[int] | list[list[int]] | None = None
    sampling_params: dict[str, Any] | None = None
    stream: bool = False
    rid: str | None = None
    lora_path: str | None = None


class LoadLoRAAdapterReqInput(BaseModel):
    lora_name: str
    lora_path: str
    pinned: bool = False


class UnloadLoRAAdapterReqInput(BaseModel):
    lora_name: str


class AbortReq(BaseModel):
    rid: str = ""
    abort_all: bool = False


class MemoryOccupationReqInput(BaseModel):
    tags: list[str] | None = None


class PauseGenerationReqInput(BaseModel):
    mode: Literal["abort", "retract", "in_place"] = "abort"
