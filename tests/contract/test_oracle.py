"""The oracle can say no: each check here is a known SGLang 0.5.23 rejection (or acceptance).

If these fail, the other contract tests prove nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.conftest import SGLANG_VERSION, SGLangOracle

pytestmark = pytest.mark.contract

USER_HI = [{"role": "user", "content": "hi"}]


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": USER_HI, **fields}


def tool(parameters: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": "f", "description": "d", "parameters": parameters}}


def test_version_and_what_is_compiled(sglang_oracle: SGLangOracle) -> None:
    info = sglang_oracle.info()
    assert info["version"] == SGLANG_VERSION
    assert "+cpu" in info["torch"]
    chat_methods = info["compiled"]["OpenAIServingChat"]
    assert chat_methods["file"].endswith("sglang/srt/entrypoints/openai/serving_chat.py")
    assert "_validate_request" in chat_methods["methods"]
    # The tool-schema check is SGLang's own helpers, not a copy of them.
    assert {"normalize_json_schema_types", "Draft202012Validator"} <= set(chat_methods["module_names"])
    completion_methods = info["compiled"]["OpenAIServingCompletion"]
    assert {"_validate_request", "_build_sampling_params"} <= set(completion_methods["methods"])


# --- the command line -------------------------------------------------------------------------------------


def test_good_argument_list_is_accepted(sglang_oracle: SGLangOracle) -> None:
    argv = "--model-path facebook/opt-125m --host 127.0.0.1 --port 8001 --tp-size 2 --context-length 4096"
    argv += " --mem-fraction-static 0.8 --kv-cache-dtype fp8_e4m3 --enable-metrics --served-model-name opt"
    result = sglang_oracle.parse_args(argv.split())
    assert result["ok"], result["error"]
    args = result["args"]
    assert args["model_path"] == "facebook/opt-125m"
    assert args["tp_size"] == 2
    assert args["context_length"] == 4096
    assert args["mem_fraction_static"] == 0.8
    assert args["kv_cache_dtype"] == "fp8_e4m3"
    assert args["enable_metrics"] is True
    assert args["served_model_name"] == "opt"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model-path", "m", "--pp", "2"], "ambiguous option: --pp"),
        (["--model-path", "m", "--served-model-name", "a", "b"], "unrecognized arguments: b"),
        (["--model-path", "m", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["--model-path", "m", "--kv-cache-dtype", "fp8"], "argument --kv-cache-dtype: invalid choice: 'fp8'"),
        (["--port", "8001"], "the following arguments are required: --model-path"),
        (["--model-path", "m", "--tp-size", "two"], "argument --tp-size"),
    ],
)
def test_bad_argument_lists_are_rejected(sglang_oracle: SGLangOracle, argv: list[str], message: str) -> None:
    result = sglang_oracle.parse_args(argv)
    assert not result["ok"]
    assert message in result["error"]
    assert result["error"].startswith("sglang serve: error:")  # the message, not the 400-line usage


def test_human_readable_context_length(sglang_oracle: SGLangOracle) -> None:
    # SGLang reads 32k as 32000 (and 32Ki as 32768), so a plain integer is the safe spelling.
    assert sglang_oracle.parse_args(["--model-path", "m", "--context-length", "32k"])["args"]["context_length"] == 32000


# --- chat requests ----------------------------------------------------------------------------------------


def test_plain_chat_is_accepted(sglang_oracle: SGLangOracle) -> None:
    result = sglang_oracle.validate_chat(chat(temperature=0.7, max_tokens=16, stream=True))
    assert result == {"ok": True, "status": 200, "error": None, "stage": None, "id": result["id"]}


@pytest.mark.parametrize(
    ("body", "stage", "message"),
    [
        (chat(top_k=0), "sampling_params", "top_k must be -1 (disable) or at least 1"),
        (chat(repetition_penalty=2.5), "sampling_params", "repetition_penalty must be in (0, 2]"),
        (chat(regex="a+", ebnf='root ::= "a"'), "sampling_params", "Only one of json_schema, regex, ebnf"),
        (chat(tools=[tool({"type": "object", "properties": []})]), "_validate_request", "[] is not of type 'object'"),
        (chat(tools=[tool({"type": "object", "required": None})]), "_validate_request", "None is not of type 'array'"),
        (chat(tools=[tool({"type": "any"})]), "_validate_request", "invalid 'parameters' schema"),
        (chat(tools=[tool({"type": "array", "items": [{"type": "string"}]})]), "_validate_request", "is not of type"),
        (chat(tools=[tool({"type": "number", "exclusiveMinimum": True})]), "_validate_request", "True is not of type"),
        (chat(messages=[]), "_validate_request", "Messages cannot be empty."),
        (chat(tool_choice="required"), "_validate_request", "Tools cannot be empty if tool choice is set to required"),
        ({"messages": [{"role": "user", "content": None}]}, "pydantic", "messages.0"),
        (chat(tool_choice="any"), "pydantic", "tool_choice"),
        (chat(top_k=20.5), "pydantic", "top_k"),
    ],
)
def test_bad_chat_is_rejected(sglang_oracle: SGLangOracle, body: dict[str, Any], stage: str, message: str) -> None:
    result = sglang_oracle.validate_chat(body)
    assert not result["ok"]
    assert result["status"] == 400
    assert result["stage"] == stage
    assert message in result["error"]


@pytest.mark.parametrize(
    "parameters",
    [
        {},
        None,
        {"type": "object", "properties": {}},
        {"type": "object", "required": []},
        {"type": ["string", "null"]},
        {"type": "object", "properties": {"n": {"type": "int"}}},
    ],
)
def test_good_tool_schemas_are_accepted(sglang_oracle: SGLangOracle, parameters: Any) -> None:
    result = sglang_oracle.validate_chat(chat(tools=[tool(parameters)]))
    assert result["ok"], result["error"]


def test_stop_strings_and_min_tokens_are_accepted(sglang_oracle: SGLangOracle) -> None:
    # Needs a tokenizer in SamplingParams.normalize (without one SGLang acts as with --skip-tokenizer-init).
    assert sglang_oracle.validate_chat(chat(stop=["\n\n", "END"], min_tokens=2, max_tokens=8))["ok"]
    assert sglang_oracle.validate_completion({"prompt": "x", "stop": "\n", "stop_regex": "a+b"})["ok"]


def test_vllm_only_fields_are_silently_ignored(sglang_oracle: SGLangOracle) -> None:
    # Accepted, and dropped: that is why the middleware must translate them.
    body = chat(guided_json={"type": "object"}, guided_regex="a+", request_id="r1", include_stop_str_in_output=True)
    assert sglang_oracle.validate_chat(body)["ok"]


def test_context_length_check(sglang_oracle: SGLangOracle) -> None:
    result = sglang_oracle.validate_chat(chat(max_tokens=100), context_length=50)
    assert not result["ok"]
    assert "max_completion_tokens is too large" in result["error"]
    assert sglang_oracle.validate_chat(chat(max_tokens=100), context_length=4096)["ok"]


# --- completion requests ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"prompt": "x", "max_tokens": 0}, "max_tokens must be positive"),
        ({"prompt": ""}, "Prompt cannot be empty"),
        ({"prompt": "x", "top_k": 0}, "top_k must be -1 (disable) or at least 1"),
        ({"prompt": "x", "json_schema": "{}", "regex": "a"}, "Only one of json_schema, regex, ebnf"),
        ({"max_tokens": 5}, "prompt"),
    ],
)
def test_bad_completion_is_rejected(sglang_oracle: SGLangOracle, body: dict[str, Any], message: str) -> None:
    result = sglang_oracle.validate_completion(body)
    assert not result["ok"]
    assert message in result["error"]


def test_plain_completion_is_accepted(sglang_oracle: SGLangOracle) -> None:
    assert sglang_oracle.validate_completion({"model": "m", "prompt": "hi", "max_tokens": 8, "regex": "a+"})["ok"]
