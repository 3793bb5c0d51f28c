"""Table tests for middleware/engine_replies.py: engine bodies in, vLLM bodies out."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from middleware import engine_replies
from tests.unit.middleware.conftest import SGLANG_VALIDATION_400, SSE_ERROR_EVENT

JSONSCHEMA_DUMP = (
    "Tool 0 function has invalid 'parameters' schema: [] is not of type 'object'\n\n"
    "Failed validating 'type' in metaschema['allOf'][3]['properties']['properties']:\n"
    "    {'type': 'object', 'additionalProperties': {'$dynamicRef': '#meta'}, 'default': {}}\n\n"
    "On schema['properties']:\n    []"
)

ERROR_CASES: list[tuple[str, int, Any, int, dict[str, Any] | None]] = [
    # name, engine status, engine body, expected status, expected error (None = body passes untouched)
    (
        "flat-validation-dump",
        400,
        SGLANG_VALIDATION_400,
        400,
        {"message": "1 validation error: tools.0.function: Field required", "type": "Bad Request",
         "param": "tools.0.function", "code": 400},
    ),
    (
        "flat-jsonschema-dump",
        400,
        {"object": "error", "message": JSONSCHEMA_DUMP, "type": "BadRequestError", "param": None, "code": 400},
        400,
        {"message": "Tool 0 function has invalid 'parameters' schema: [] is not of type 'object'",
         "type": "BadRequestError", "param": None, "code": 400},
    ),
    (
        "flat-http-exception-numeric-type",
        404,
        {"object": "error", "message": "nope", "type": "404", "param": None, "code": 404},
        404,
        {"message": "nope", "type": "NotFoundError", "param": None, "code": 404},
    ),
    (
        "nested-openai-style",
        404,
        {"error": {"message": "The model 'x' does not exist", "type": "invalid_request_error", "param": "model",
                   "code": "model_not_found"}},
        404,
        {"message": "The model 'x' does not exist", "type": "NotFoundError", "param": "model", "code": 404},
    ),
    (
        "native-generate-error",
        400,
        {"error": {"message": "bad sampling params"}},
        400,
        {"message": "bad sampling params", "type": "BadRequestError", "param": None, "code": 400},
    ),
    (
        "fastapi-404",
        404,
        {"detail": "Not Found"},
        404,
        {"message": "Not Found", "type": "Not Found", "param": None, "code": 404},
    ),
    (
        "fastapi-405",
        405,
        {"detail": "Method Not Allowed"},
        405,
        {"message": "Method Not Allowed", "type": "Method Not Allowed", "param": None, "code": 405},
    ),
    (
        "fastapi-422-becomes-400",
        422,
        {"detail": [{"type": "missing", "loc": ["body", "query"], "msg": "Field required"}]},
        400,
        {"message": "1 validation error: query: Field required", "type": "Bad Request", "param": "query",
         "code": 400},
    ),
    (
        "internal-500",
        500,
        {"object": "error", "message": "CUDA error", "type": "InternalServerError", "param": None, "code": 500},
        500,
        {"message": "CUDA error", "type": "InternalServerError", "param": None, "code": 500},
    ),
    (
        "priority-503",
        503,
        {"object": "error", "message": "Using priority is disabled", "type": "ServiceUnavailable", "param": None,
         "code": 503},
        503,
        {"message": "Using priority is disabled", "type": "ServiceUnavailable", "param": None, "code": 503},
    ),
    ("unauthorized-untouched", 401, {"error": "Unauthorized"}, 401, None),
    ("anthropic-untouched", 400, {"type": "error", "error": {"type": "invalid_request_error", "message": "m"}}, 400,
     None),
    ("json-list-body", 500, [1, 2], 500, {"message": "Internal Server Error", "type": "InternalServerError",
                                          "param": None, "code": 500}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "status", "body", "want_status", "want"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES]
)
def test_translate_error(name: str, status: int, body: Any, want_status: int, want: dict[str, Any] | None) -> None:
    raw = orjson.dumps(body)
    got_status, got_body = engine_replies.translate_error(status, raw)
    assert got_status == want_status
    if want is None:
        assert got_body == raw
    else:
        assert orjson.loads(got_body) == {"error": want}


@pytest.mark.parametrize(
    ("status", "raw", "message"),
    [
        (500, b"Internal Server Error", "Internal Server Error"),
        (502, b"", "Bad Gateway"),
        (500, b'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: boom', "ValueError: boom"),
        (400, b"\xff\xfe not utf-8", "\ufffd\ufffd not utf-8"),
    ],
)
def test_translate_error_non_json(status: int, raw: bytes, message: str) -> None:
    got_status, body = engine_replies.translate_error(status, raw)
    assert got_status == status
    assert orjson.loads(body)["error"]["message"] == message


def test_validation_dump_with_json_decode_context() -> None:
    message = (
        "1 validation error:\n  {'type': 'json_invalid', 'loc': ('body', 1), 'msg': 'JSON decode error', 'input': {},"
        " 'ctx': {'error': 'Expecting value'}}\n\n  Endpoint: POST /v1/completions [...]"
    )
    assert engine_replies.short_message(message) == ("1 validation error: 1: JSON decode error (Expecting value)", "1")


def test_validation_dump_with_non_literal_input_falls_back_to_regex() -> None:
    message = "2 validation errors:\n  {'type': 'x', 'loc': ('body', 'top_k'), 'msg': 'bad', 'input': <object>}"
    assert engine_replies.short_message(message) == ("2 validation errors: top_k: bad", "top_k")


def test_long_message_is_capped() -> None:
    message, _ = engine_replies.short_message("x" * 5000)
    assert len(message) == engine_replies.MAX_MESSAGE_CHARS


SSE_CASES = [
    ("plain-token-untouched", b'data: {"choices":[]}\n\n', b'data: {"choices":[]}\n\n'),
    ("done-untouched", b"data: [DONE]\n\n", b"data: [DONE]\n\n"),
    (
        "error-event",
        SSE_ERROR_EVENT,
        b'data: {"error":{"message":"boom","type":"BadRequest","param":null,"code":400}}\n\n',
    ),
    (
        "error-after-token-in-one-chunk",
        b'data: {"choices":[]}\n\n' + SSE_ERROR_EVENT + b"data: [DONE]\n\n",
        b'data: {"choices":[]}\n\ndata: {"error":{"message":"boom","type":"BadRequest","param":null,"code":400}}'
        b"\n\ndata: [DONE]\n\n",
    ),
    ("already-vllm-shape", b'data: {"error":{"message":"m","type":"T","param":null,"code":400}}\n\n',
     b'data: {"error":{"message":"m","type":"T","param":null,"code":400}}\n\n'),
    ("truncated-json-untouched", b'data: {"error": {"message": "cut', b'data: {"error": {"message": "cut'),
]  # fmt: skip


@pytest.mark.parametrize(("name", "chunk", "want"), SSE_CASES, ids=[c[0] for c in SSE_CASES])
def test_translate_sse_chunk(name: str, chunk: bytes, want: bytes) -> None:
    assert engine_replies.translate_sse_chunk(chunk) == want


SHAPE_CASES = [
    ("tokenize", engine_replies.tokenize, {"tokens": [1], "count": 1, "max_model_len": 8},
     {"tokens": [1], "count": 1, "max_model_len": 8, "token_strs": None}),
    ("tokenize-keeps-token-strs", engine_replies.tokenize, {"tokens": [1], "token_strs": ["a"]},
     {"tokens": [1], "token_strs": ["a"]}),
    ("detokenize", engine_replies.detokenize, {"text": "hello"}, {"prompt": "hello"}),
    ("detokenize-unknown-shape", engine_replies.detokenize, {"prompt": "x"}, {"prompt": "x"}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "fn", "body", "want"), SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_shapes(name: str, fn: Any, body: Any, want: Any) -> None:
    assert orjson.loads(fn(orjson.dumps(body))) == want


def test_rerank_shape() -> None:
    sglang = [
        {"score": 0.9, "document": "b", "index": 1, "meta_info": {"prompt_tokens": 7}},
        {"score": 0.1, "index": 0},
    ]
    got = orjson.loads(engine_replies.rerank(orjson.dumps(sglang), "m", "rerank-1"))
    assert got == {
        "id": "rerank-1",
        "model": "m",
        "usage": {"total_tokens": 7},
        "results": [
            {"index": 1, "document": {"text": "b"}, "relevance_score": 0.9},
            {"index": 0, "document": None, "relevance_score": 0.1},
        ],
    }


@pytest.mark.parametrize("raw", [b"not json", b'{"results": []}', b"[1, 2]"])
def test_rerank_unknown_shapes_pass_untouched(raw: bytes) -> None:
    assert engine_replies.rerank(raw, "m", "id") == raw
