"""Request validation exactly as SGLang 0.5.23 answers it (sglang.md §2.3 and §3), table-driven."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from sim.app import create_app
from sim.knobs import Settings
from sim.sglang_argv import parse_args

BASE = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
FAST = {"VLLM_SHIM_SIM_WARMUP_SECONDS": "0", "VLLM_SHIM_SIM_TOKENS_PER_SECOND": "0"}


@pytest.fixture(scope="module")
def c() -> TestClient:
    return TestClient(create_app(parse_args(["--model-path", "m", "--context-length", "1000"]),
                                 Settings.from_env(FAST)))


def _tool(parameters: Any = None, omit: bool = False, **extra: Any) -> dict[str, Any]:
    function: dict[str, Any] = {"name": "f"} if omit else {"name": "f", "parameters": parameters}
    return {"type": "function", "function": function, **extra}


# (id, parameters, first line of the jsonschema message) -- every failing schema listed in sglang.md §2.3.
FAILING_SCHEMAS = [
    ("properties-list", {"type": "object", "properties": []}, "[] is not of type 'object'"),
    ("properties-null", {"type": "object", "properties": None}, "None is not of type 'object'"),
    ("required-null", {"type": "object", "required": None}, "None is not of type 'array'"),
    ("required-string", {"type": "object", "required": "a"}, "'a' is not of type 'array'"),
    ("draft3-required-true", {"type": "object", "properties": {"a": {"type": "string", "required": True}}},
     "True is not of type 'array'"),
    ("draft7-tuple-items", {"type": "array", "items": [{"type": "string"}]},
     "[{'type': 'string'}] is not of type 'object', 'boolean'"),
    ("draft4-exclusive-minimum", {"type": "number", "minimum": 0, "exclusiveMinimum": True},
     "True is not of type 'number'"),
    ("type-any", {"type": "any"}, "'any' is not valid under any of the given schemas"),
    ("type-typo", {"type": "object", "properties": {"a": {"type": "strin"}}},
     "'strin' is not valid under any of the given schemas"),
    ("parameters-list", [], "[] is not of type 'object', 'boolean'"),
    ("parameters-string", "abc", "'abc' is not of type 'object', 'boolean'"),
]

PASSING_TOOLS = [
    ("empty", _tool({})),
    ("null", _tool(None)),
    ("omitted", _tool(omit=True)),
    ("true", _tool(True)),
    ("empty-properties", _tool({"type": "object", "properties": {}})),
    ("empty-required", _tool({"type": "object", "required": []})),
    ("no-additional", _tool({"type": "object", "additionalProperties": False})),
    ("type-list", _tool({"type": "object", "properties": {"a": {"type": ["string", "null"]}}})),
    ("nullable", _tool({"type": "object", "properties": {"a": {"type": "string", "nullable": True}}})),
    ("empty-enum", _tool({"type": "object", "properties": {"a": {"enum": []}}})),
    ("draft7-refs", _tool({"$schema": "http://json-schema.org/draft-07/schema#",
                           "definitions": {"s": {"type": "string"}},
                           "type": "object", "properties": {"a": {"$ref": "#/definitions/s"}}})),
    ("db-aliases", _tool({"type": "object", "properties": {"a": {"type": "varchar(20)"}, "b": {"type": "int"},
                                                           "c": {"type": "dict", "properties": {
                                                               "d": {"type": "bigint"}}}}})),
    ("no-type", _tool({"properties": {"a": {"description": "anything"}}})),
    ("code-interpreter", {"type": "code_interpreter", "function": {"name": "f"}}),
]


@pytest.mark.parametrize(("parameters", "first_line"), [p[1:] for p in FAILING_SCHEMAS],
                         ids=[p[0] for p in FAILING_SCHEMAS])
@pytest.mark.parametrize("where", ["request", "system-message", "developer-message"])
def test_invalid_tool_schema_is_400(c: TestClient, parameters: Any, first_line: str, where: str) -> None:
    tools = [_tool({}), _tool(parameters)]
    if where == "request":
        body = {**BASE, "tools": tools}
    else:
        role = where.split("-")[0]
        body = {**BASE, "messages": [{"role": role, "content": "s", "tools": tools}, *BASE["messages"]]}
    response = c.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "BadRequestError" and error["code"] == 400 and error["param"] is None
    first, *rest = error["message"].split("\n")
    assert first == f"Tool 1 function has invalid 'parameters' schema: {first_line}"
    assert rest, "SGLang keeps jsonschema's multi-line metaschema dump"


@pytest.mark.parametrize("tool", [p[1] for p in PASSING_TOOLS], ids=[p[0] for p in PASSING_TOOLS])
def test_accepted_tool_schema(c: TestClient, tool: dict[str, Any]) -> None:
    assert c.post("/v1/chat/completions", json={**BASE, "tools": [tool]}).status_code == 200


# (id, patch to the base chat body, substring of the message, error type)
SEMANTIC_400 = [
    ("empty-messages", {"messages": []}, "Messages cannot be empty.", "BadRequestError"),
    ("required-without-tools", {"tool_choice": "required"},
     "Tools cannot be empty if tool choice is set to required.", "BadRequestError"),
    ("named-tool-missing", {"tools": [_tool({})], "tool_choice": {"type": "function", "function": {"name": "g"}}},
     "Tool 'g' not found in tools list.", "BadRequestError"),
    ("request-chat-template", {"chat_template_kwargs": {"chat_template": "{{x}}"}},
     "Request-supplied chat_template is not allowed", "BadRequestError"),
    ("max-tokens-over-context", {"max_tokens": 5000},
     "max_completion_tokens is too large: 5000.This model supports at most 1000 completion tokens.",
     "BadRequestError"),
    ("json-schema-without-schema", {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
     "schema_ is required for json_schema response format request.", "BadRequestError"),
    ("image-on-text-model", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]},
     "Model only supports text input; received unsupported content type 'image_url'.", "BadRequestError"),
    ("top-k-zero", {"top_k": 0}, "top_k must be -1 (disable) or at least 1", "BadRequestError"),
    ("repetition-penalty-high", {"repetition_penalty": 2.5}, "repetition_penalty must be in (0, 2]",
     "BadRequestError"),
    ("repetition-penalty-zero", {"repetition_penalty": 0}, "repetition_penalty must be in (0, 2]",
     "BadRequestError"),
    ("temperature-negative", {"temperature": -1}, "temperature must be non-negative", "BadRequestError"),
    ("top-p-zero", {"top_p": 0}, "top_p must be in (0, 1]", "BadRequestError"),
    ("min-p-high", {"min_p": 2}, "min_p must be in [0, 1]", "BadRequestError"),
    ("presence-penalty", {"presence_penalty": 3}, "presence_penalty must be in [-2, 2]", "BadRequestError"),
    ("min-over-max", {"min_tokens": 5, "max_tokens": 2}, "min_new_tokens must be in [0, max_new_tokens",
     "BadRequestError"),
    ("two-constraints", {"regex": "a+", "ebnf": "root ::= 'a'"},
     "Only one of json_schema, regex, ebnf, or structural_tag can be set.", "BadRequestError"),
    ("json-plus-regex", {"regex": "a", "response_format": {"type": "json_object"}}, "Only one of", "BadRequestError"),
    ("tools-required-plus-regex", {"tools": [_tool({})], "tool_choice": "required", "regex": "a"},
     "cannot be combined with response_format, regex, or ebnf", "BadRequest"),
    ("prompt-plus-max-over-context", {"messages": [{"role": "user", "content": "w " * 500}], "max_tokens": 600},
     "Requested token count exceeds the model's maximum context length of 1000 tokens.", "BadRequestError"),
    ("lora-not-enabled", {"model": "m:adapter"}, "LoRA adapter 'adapter' was requested, but LoRA is not enabled",
     "BadRequest"),
]


@pytest.mark.parametrize(("patch", "message", "err_type"), [s[1:] for s in SEMANTIC_400],
                         ids=[s[0] for s in SEMANTIC_400])
def test_semantic_errors(c: TestClient, patch: dict[str, Any], message: str, err_type: str) -> None:
    response = c.post("/v1/chat/completions", json={**BASE, **patch})
    assert response.status_code == 400, response.text
    error = response.json()
    assert set(error) == {"object", "message", "type", "param", "code"}
    assert error["object"] == "error" and error["type"] == err_type and error["code"] == 400
    assert message in error["message"]


@pytest.mark.parametrize("case", ["empty-messages", "top-k-zero", "tools-required-plus-regex",
                                  "prompt-plus-max-over-context"])
def test_streaming_requests_fail_before_the_first_chunk(c: TestClient, case: str) -> None:
    patch = next(s[1] for s in SEMANTIC_400 if s[0] == case)
    response = c.post("/v1/chat/completions", json={**BASE, **patch, "stream": True})
    assert response.status_code == 400 and response.headers["content-type"] == "application/json"
    assert response.json()["object"] == "error"


# (id, patch, substring expected in the pydantic dump)
PYDANTIC_400 = [
    ("tool-without-function", {"tools": [{"type": "function"}]}, "('body', 'tools', 0, 'function')"),
    ("function-without-name", {"tools": [{"type": "function", "function": {"parameters": {}}}]},
     "'name'"),
    ("tool-choice-any", {"tool_choice": "any"}, "'tool_choice'"),
    ("json-schema-without-name", {"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
     "'response_format'"),
    ("structural-tag-without-format", {"response_format": {"type": "structural_tag"}}, "'format'"),
    ("top-k-fractional", {"top_k": 20.5}, "int_from_float"),
    ("temperature-text", {"temperature": "hot"}, "'temperature'"),
    ("reasoning-effort", {"reasoning_effort": "extreme"}, "'reasoning_effort'"),
    ("role-robot", {"messages": [{"role": "robot", "content": "x"}]}, "'role'"),
    ("user-content-null", {"messages": [{"role": "user", "content": None}]}, "'content'"),
    ("refusal-part", {"messages": [{"role": "user", "content": [{"type": "refusal", "refusal": "no"}]}]},
     "'refusal'"),
    ("messages-missing", {"messages": None}, "'messages'"),
]


@pytest.mark.parametrize(("patch", "needle"), [p[1:] for p in PYDANTIC_400], ids=[p[0] for p in PYDANTIC_400])
def test_pydantic_errors_are_flat_400(c: TestClient, patch: dict[str, Any], needle: str) -> None:
    body = {k: v for k, v in {**BASE, **patch}.items() if v is not None}
    error = c.post("/v1/chat/completions", json=body).json()
    assert error["code"] == 400 and error["type"] == "Bad Request" and error["object"] == "error"
    assert needle in error["message"]
    # SGLang's dump names its own source file; the middleware has to shorten it.
    assert 'http_server.py", line 1870, in openai_v1_chat_completions' in error["message"]
    assert "POST /v1/chat/completions" in error["message"]


def test_unsupported_media_type_and_invalid_json(c: TestClient) -> None:
    media = c.post("/v1/chat/completions", content=b"{}", headers={"content-type": "text/plain"})
    assert media.status_code == 400 and "Unsupported Media Type: Only 'application/json' is allowed" in \
        media.json()["message"]
    broken = c.post("/v1/completions", content=b"{nope", headers={"content-type": "application/json"})
    assert broken.status_code == 400 and "json_invalid" in broken.json()["message"]


@pytest.mark.parametrize(
    "patch",
    [
        pytest.param({"guided_json": {"type": "object"}, "request_id": "x", "echo": True}, id="vllm-only-keys"),
        pytest.param({"logprobs": 1, "top_logprobs": 5}, id="int-logprobs"),
        pytest.param({"messages": [{"role": "SYSTEM", "content": "s"}, {"role": "user", "content": "u"}]},
                     id="role-case"),
        pytest.param({"messages": [{"role": "assistant", "content": None}, {"role": "user", "content": "u"}]},
                     id="assistant-null-content"),
        pytest.param({"top_k": -1, "repetition_penalty": 2.0, "min_p": 0.1}, id="sglang-extras-in-range"),
        pytest.param({"response_format": {"type": "structural_tag", "format": {"type": "any_text"}}},
                     id="structural-tag"),
        pytest.param({"reasoning_effort": 0.5}, id="float-effort"),
        pytest.param({"tools": [_tool({})], "tool_choice": "auto", "regex": "a"}, id="auto-tools-plus-regex"),
    ],
)
def test_accepted_requests(c: TestClient, patch: dict[str, Any]) -> None:
    response = c.post("/v1/chat/completions", json={**BASE, **patch})
    assert response.status_code == 200, response.text


def test_completions_validation(c: TestClient) -> None:
    zero = c.post("/v1/completions", json={"prompt": "x", "max_tokens": 0}).json()
    assert zero["type"] == "Bad Request" and "max_tokens must be positive" in zero["message"]
    top_k = c.post("/v1/completions", json={"prompt": "x", "top_k": 0}).json()
    assert top_k["type"] == "BadRequestError" and "top_k must be -1" in top_k["message"]
    both = c.post("/v1/completions", json={"prompt": "x", "json_schema": "{}", "regex": "a"})
    assert both.status_code == 400

