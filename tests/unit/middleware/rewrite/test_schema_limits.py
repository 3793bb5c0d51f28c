"""Structured-output schemas SGLang's xgrammar check refuses are loosened, never refused (schema_limits.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from middleware.config import MiddlewareConfig
from middleware.rewrite.route_rules import needs_parse, rewrite
from middleware.rewrite.schema_limits import loosen, needs_loosening

CONFIG = MiddlewareConfig(served_model_names=("qwen3",))
CHAT, COMPLETIONS = "/v1/chat/completions", "/v1/completions"

# (schema SGLang 0.5.23 refuses, what it becomes, the notes). tests/contract/test_schema_limits_contract.py
# checks every "before" against SGLang's own validator (refused) and every "after" (accepted).
CASES: list[tuple[dict[str, Any], dict[str, Any], list[str]]] = [
    ({"type": "integer", "multipleOf": 5}, {"type": "integer"}, ["#: dropped multipleOf"]),
    ({"type": "object", "properties": {"tags": {"type": "array", "uniqueItems": True, "items": {"type": "string"}}}},
     {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}}},
     ["#/properties/tags: dropped uniqueItems"]),
    ({"if": {"properties": {"a": {}}}, "then": {"required": ["b"]}, "else": {}, "type": "object"},
     {"type": "object"}, ["#: dropped else, if, then"]),
    ({"type": "string", "format": "phone"}, {"type": "string"}, ["#: dropped format"]),
    ({"type": "string", "format": "email", "maxLength": 40}, {"type": "string", "format": "email"},
     ["#: dropped maxLength"]),
    ({"type": "string", "pattern": "^[a-z]+$", "format": "uuid", "minLength": 1},
     {"type": "string", "pattern": "^[a-z]+$"}, ["#: dropped format, minLength"]),
    ({"anyOf": [{"type": "string"}, {"not": {"type": "null"}}], "$defs": {"n": {"type": "number", "multipleOf": 2}}},
     {"anyOf": [{"type": "string"}, {}], "$defs": {"n": {"type": "number"}}},
     ["#/$defs/n: dropped multipleOf", "#/anyOf/1: dropped not"]),
]  # fmt: skip
CLEAN = [
    {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}}, "required": ["name"]},
    {"type": "string", "format": "date-time"},
    {"type": "object", "properties": {"not": {"type": "string"}, "if": {"type": "integer"}}},  # property names
    {"type": "integer", "minimum": 1, "maximum": 3},
]


@pytest.mark.parametrize(("before", "after", "notes"), CASES)
def test_refused_schema_is_loosened(before: dict[str, Any], after: dict[str, Any], notes: list[str]) -> None:
    snapshot = json.dumps(before)
    loosened, got = loosen(before)
    assert loosened == after and sorted(got) == sorted(notes)
    assert json.dumps(before) == snapshot  # the client's body is never mutated
    assert needs_loosening(before) and not needs_loosening(loosened)


@pytest.mark.parametrize("schema", CLEAN)
def test_accepted_schema_is_the_same_object(schema: dict[str, Any]) -> None:
    assert loosen(schema) == (schema, []) and loosen(schema)[0] is schema and not needs_loosening(schema)


def test_any_depth_is_walked_without_recursion() -> None:
    schema: dict[str, Any] = {"type": "integer", "multipleOf": 3}
    for _ in range(5000):
        schema = {"type": "array", "items": schema}
    loosened, notes = loosen(schema)
    assert notes == ["#" + "/items" * 5000 + ": dropped multipleOf"]
    while "items" in loosened:
        loosened = loosened["items"]
    assert loosened == {"type": "integer"}


def test_chat_response_format_and_structured_outputs_are_loosened(caplog: pytest.LogCaptureFixture) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 7}}}
    base: dict[str, Any] = {"model": "qwen3", "messages": [{"role": "user", "content": "hi"}]}
    for body in ({**base, "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}},
                 {**base, "structured_outputs": {"json": schema}}):
        assert needs_parse(CHAT, json.dumps(body).encode(), CONFIG)
        with caplog.at_level("INFO"):
            result = rewrite(CHAT, body, CONFIG)
        assert result.error is None and "schema_limits" in result.rules
        sent = result.body["response_format"]["json_schema"]["schema"]
        assert sent == {"type": "object", "properties": {"n": {"type": "integer"}}}
        assert "#/properties/n: dropped multipleOf" in caplog.text


def test_completion_json_schema_text_is_loosened() -> None:
    schema = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    for body in ({"model": "qwen3", "prompt": "p", "structured_outputs": {"json": schema}},
                 {"model": "qwen3", "prompt": "p", "json_schema": json.dumps(schema)}):
        assert needs_parse(COMPLETIONS, json.dumps(body).encode(), CONFIG)
        result = rewrite(COMPLETIONS, body, CONFIG)
        assert result.error is None and "schema_limits" in result.rules
        assert json.loads(result.body["json_schema"]) == {"type": "array", "items": {"type": "string"}}


def test_schema_text_that_is_not_json_is_left_to_sglang() -> None:
    body = {"model": "qwen3", "prompt": "p", "json_schema": "{not json multipleOf"}
    assert rewrite(COMPLETIONS, body, CONFIG).error is None
