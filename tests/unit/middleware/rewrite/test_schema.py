"""Tool-schema repair (`middleware/rewrite/schema.py`): every form SGLang's 2020-12 check rejects but vLLM accepts."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from middleware.rewrite.schema import NO_ARGUMENTS, repair_parameters, repair_schema, repair_tools
from middleware.rewrite.schema_check import is_clean
from middleware.rewrite.schema_keywords import KEYWORDS, normalize_type

CASES: list[tuple[str, Any, Any]] = [
    ("properties-list", {"type": "object", "properties": []}, {"type": "object", "properties": {}}),
    ("properties-null", {"type": "object", "properties": None}, {"type": "object", "properties": {}}),
    ("property-is-type-name", {"properties": {"a": "string", "b": None, "c": 3}},
     {"properties": {"a": {"type": "string"}, "b": {}, "c": {}}}),  # fmt: skip
    ("required-null", {"type": "object", "required": None}, {"type": "object"}),
    ("required-string", {"required": "a"}, {"required": ["a"]}),
    ("required-bool-top", {"required": True}, {}),
    ("required-duplicates", {"required": ["a", "a", 3, "b"]}, {"required": ["a", "b"]}),
    ("required-draft3-lifted", {"properties": {"a": {"type": "string", "required": True}, "b": {"required": False}}},
     {"properties": {"a": {"type": "string"}, "b": {}}, "required": ["a"]}),  # fmt: skip
    ("required-draft3-merged", {"required": ["z"], "properties": {"a": {"required": True}, "z": {"required": True}}},
     {"required": ["z", "a"], "properties": {"a": {}, "z": {}}}),  # fmt: skip
    ("tuple-items", {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
     {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]}),  # fmt: skip
    ("tuple-items-additional", {"items": [{"type": "string"}], "additionalItems": False},
     {"prefixItems": [{"type": "string"}], "items": False}),  # fmt: skip
    ("tuple-items-empty", {"type": "array", "items": []}, {"type": "array"}),
    ("exclusive-min-true", {"minimum": 3, "exclusiveMinimum": True}, {"exclusiveMinimum": 3}),
    ("exclusive-max-false", {"maximum": 3, "exclusiveMaximum": False}, {"maximum": 3}),
    ("exclusive-true-without-bound", {"exclusiveMinimum": True}, {}),
    ("exclusive-numeric-kept", {"exclusiveMinimum": 0}, {"exclusiveMinimum": 0}),
    ("type-any", {"type": "any", "description": "x"}, {"description": "x"}),
    ("type-typo", {"type": "strin"}, {}),
    ("type-null-value", {"type": None}, {}),
    ("type-alias-varchar", {"type": "varchar(20)"}, {"type": "string"}),
    ("type-alias-int", {"type": "int"}, {"type": "integer"}),
    ("type-alias-dict", {"type": "dict"}, {"type": "object"}),
    ("type-uppercase", {"type": "STRING"}, {"type": "string"}),
    ("type-list-mixed", {"type": ["string", "any", "null", "str"]}, {"type": ["string", "null"]}),
    ("type-list-empty", {"type": []}, {}),
    ("anyof-empty", {"anyOf": []}, {}),
    ("anyof-lone-schema", {"oneOf": {"type": "string"}}, {"oneOf": [{"type": "string"}]}),
    ("allof-garbage-member", {"allOf": [{"type": "string"}, 5]}, {"allOf": [{"type": "string"}, {}]}),
    ("pattern-js-only", {"type": "string", "pattern": "^\\p{L}+$"}, {"type": "string"}),
    ("pattern-python-ok", {"pattern": "^[a-z]+$"}, {"pattern": "^[a-z]+$"}),
    ("pattern-properties-bad-key", {"patternProperties": {"(?<n>a)": {}, "^b": {"type": "int"}}},
     {"patternProperties": {"^b": {"type": "integer"}}}),  # fmt: skip
    ("numbers-as-strings", {"minimum": "5", "maxLength": "10"}, {"minimum": 5, "maxLength": 10}),
    ("negative-count", {"minLength": -1, "maxItems": 1.5}, {}),
    ("multiple-of-zero", {"multipleOf": 0}, {}),
    ("bool-as-string", {"uniqueItems": "true"}, {"uniqueItems": True}),
    ("description-number", {"description": 5, "title": None}, {"description": "5"}),
    ("enum-lone", {"enum": "a"}, {"enum": ["a"]}),
    ("examples-null", {"examples": None}, {}),
    ("ref-not-string", {"$ref": 5, "$schema": None}, {}),
    ("id-with-fragment", {"$id": "a#b"}, {}),
    ("anchor-bad", {"$anchor": "1a"}, {}),
    ("defs-not-object", {"$defs": [], "definitions": None}, {}),
    ("dependencies-mixed", {"dependencies": {"a": ["b", "b"], "c": "d", "e": {"type": "any"}, "f": 1}},
     {"dependencies": {"a": ["b"], "c": ["d"], "e": {}}}),  # fmt: skip
    ("dependent-required", {"dependentRequired": {"a": "b", "c": None}}, {"dependentRequired": {"a": ["b"]}}),
    ("items-null", {"type": "array", "items": None}, {"type": "array"}),
    ("items-type-name", {"type": "array", "items": "string"}, {"type": "array", "items": {"type": "string"}}),
    ("nested-everywhere", {
        "properties": {"a": {"items": {"anyOf": [{"properties": []}]}}},
        "$defs": {"d": {"not": {"type": "any"}}},
        "if": {"required": None}, "then": {"exclusiveMaximum": True, "maximum": 1}, "else": {"enum": None},
        "additionalProperties": {"properties": None},
        "dependentSchemas": {"x": {"items": [True]}},
    }, {
        "properties": {"a": {"items": {"anyOf": [{"properties": {}}]}}},
        "$defs": {"d": {"not": {}}},
        "if": {}, "then": {"exclusiveMaximum": 1}, "else": {},
        "additionalProperties": {"properties": {}},
        "dependentSchemas": {"x": {"prefixItems": [True]}},
    }),  # fmt: skip
    ("unknown-keywords-kept", {"nullable": True, "x-order": [1], "strict": "yes"},
     {"nullable": True, "x-order": [1], "strict": "yes"}),  # fmt: skip
]  # fmt: skip


@pytest.mark.parametrize(("schema", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_repair(schema: Any, expected: Any) -> None:
    original = copy.deepcopy(schema)
    fixed = repair_schema(schema)
    assert schema == original, "input mutated"
    assert fixed == expected
    Draft202012Validator.check_schema(fixed)
    assert repair_schema(fixed) is fixed, "repair must be idempotent"
    assert (fixed is schema) == (expected == schema) == is_clean(schema)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param([], NO_ARGUMENTS, id="list"),
        pytest.param("abc", NO_ARGUMENTS, id="string"),
        pytest.param(3, NO_ARGUMENTS, id="number"),
        pytest.param(None, None, id="null-is-valid"),
        pytest.param(True, True, id="bool-is-valid"),
        pytest.param({}, {}, id="empty-object"),
    ],
)
def test_repair_parameters_root(params: Any, expected: Any) -> None:
    assert repair_parameters(params) == expected


def test_untouched_subtrees_are_shared_not_copied() -> None:
    clean_a = {"type": "object", "properties": {"x": {"type": "string"}}}
    clean_b = {"type": "array", "items": {"type": "integer"}}
    schema = {"type": "object", "properties": {"a": clean_a, "b": clean_b, "bad": {"properties": []}}}
    fixed = repair_schema(schema)
    assert fixed is not schema and fixed["properties"] is not schema["properties"]
    assert fixed["properties"]["a"] is clean_a and fixed["properties"]["b"] is clean_b
    assert schema["properties"]["bad"] == {"properties": []}


def test_clean_tools_are_returned_as_is() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    assert repair_tools(tools) is tools
    assert repair_tools("not a list") == "not a list"
    assert repair_tools([None, 3, {"function": "x"}, {"function": {"name": "n"}}])[0] is None


def test_repeated_dirty_schema_is_shared_read_only() -> None:
    """The verdict cache hands every request the same repaired object, so no request may change it."""
    params = {"type": "object", "properties": [], "x-cache-test": 1, "required": ["a"]}
    first, second = repair_parameters(params), repair_parameters(params)
    assert first == second == {"type": "object", "properties": {}, "x-cache-test": 1, "required": ["a"]}
    assert first is second
    mutations = [
        lambda: first.__setitem__("mutated", True), lambda: first.pop("type"), lambda: first.update(x=1),
        lambda: first["properties"].setdefault("p", {}), lambda: first["required"].append("b"),
        lambda: first["required"].__setitem__(0, "b"), lambda: first.clear(),
    ]  # fmt: skip
    for mutate in mutations:
        with pytest.raises(TypeError, match="read-only"):
            mutate()
    assert repair_parameters(params) == {"type": "object", "properties": {}, "x-cache-test": 1, "required": ["a"]}


def test_cached_schema_is_not_corrupted_by_the_first_request_mutating_its_body() -> None:
    """The copy-on-write repair shares untouched subtrees with its input; the cache must not keep those."""
    params = {"type": "object", "properties": {"a": {"type": "string", "enum": ["x"]}, "b": {"properties": []}}}
    first = repair_parameters(params)
    params["properties"]["a"]["enum"].append("corrupted")  # the first request's own body, changed afterwards
    params["properties"]["a"]["type"] = "integer"
    fresh = {"type": "object", "properties": {"a": {"type": "string", "enum": ["x"]}, "b": {"properties": []}}}
    assert repair_parameters(fresh) is first
    assert first == {"type": "object", "properties": {"a": {"type": "string", "enum": ["x"]}, "b": {"properties": {}}}}


def test_shared_schema_serializes_like_a_plain_one() -> None:
    params = {"type": "object", "properties": [], "required": None, "x": [{"y": [1, 2.5, None, True]}]}
    fixed = repair_parameters(params)
    assert orjson.dumps(fixed) == orjson.dumps(orjson.loads(orjson.dumps(fixed)))
    assert json.loads(json.dumps(fixed)) == fixed
    assert {**fixed, "extra": 1}["extra"] == 1 and "extra" not in fixed  # plain copies are mutable


def _deep(depth: int, keyword: str) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "object", "properties": [], "required": None}  # dirty at the bottom
    for _ in range(depth):
        if keyword == "properties":
            node = {"type": "object", "properties": {"child": node}}
        elif keyword == "anyOf":
            node = {"anyOf": [node]}
        else:
            node = {"type": "array", keyword: node}
    return node


@pytest.mark.parametrize("keyword", ["properties", "items", "anyOf", "not"])
def test_ten_thousand_levels(keyword: str) -> None:
    schema = _deep(10_000, keyword)
    started = time.process_time()
    fixed = repair_schema(schema)
    again = repair_schema(fixed)
    elapsed = time.process_time() - started
    assert again is fixed
    step = {"properties": lambda n: n["properties"]["child"], "anyOf": lambda n: n["anyOf"][0]}.get(
        keyword, lambda n: n[keyword]
    )
    node = fixed
    for _ in range(10_000):
        node = step(node)
    assert node == {"type": "object", "properties": {}}
    # CPU time, not wall time: the suite shares two cores with other work. Typically ~0.1 s.
    assert elapsed < 1.0, f"{elapsed:.2f}s of CPU for two passes over 10,000 levels"


def test_deep_clean_schema_is_checked_without_recursion() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(50_000):
        schema = {"type": "array", "items": schema}
    assert is_clean(schema) and repair_schema(schema) is schema


# --- properties over generated messy schemas -------------------------------------------------------------

_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(-3, 3, allow_nan=False, width=32), st.text(max_size=4),
    st.sampled_from(["string", "int", "varchar(9)", "any", "OBJECT", "list[str]", "[a-", "^\\p{L}$", "a#b", "_x"]),
)  # fmt: skip
_KEYS = st.sampled_from([*KEYWORDS, "additionalItems", "nullable", "default", "const", "x-extra"])


def _schema_nodes(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    members = st.dictionaries(st.text(max_size=3), children, max_size=3)
    value = st.one_of(children, _SCALARS, st.lists(children, max_size=3), members)
    return st.dictionaries(_KEYS, value, max_size=5)


MESSY_SCHEMAS = st.recursive(
    st.one_of(_SCALARS, st.dictionaries(_KEYS, _SCALARS, max_size=4)), _schema_nodes, max_leaves=40
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MESSY_SCHEMAS)
def test_any_schema_becomes_valid_2020_12(schema: Any) -> None:
    original = copy.deepcopy(schema)
    fixed = repair_parameters(schema)
    assert schema == original
    if fixed is not None and not isinstance(fixed, bool):
        Draft202012Validator.check_schema(fixed)
    assert repair_parameters(fixed) == fixed
    if isinstance(schema, dict):
        assert is_clean(schema) == (repair_schema(schema) is schema)


@given(st.text(max_size=12))
def test_normalize_type_is_total(raw: str) -> None:
    assert normalize_type(raw) in (None, "string", "integer", "number", "boolean", "object", "array", "null")
