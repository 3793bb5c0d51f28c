"""Tool `parameters` schema checks as SGLang 0.5.23 runs them (`srt/function_call/utils.py` + `serving_chat.py`).

SGLang first rewrites DB/ORM-style type names (`varchar(20)`, `int`, `dict`, ...) to JSON Schema types, then runs
`Draft202012Validator.check_schema`. So `{"type": "varchar(20)"}` passes, while draft-07 tuple `items: [...]`,
`required: null` or `properties: []` fail with a 400 that vLLM would never give.
"""

from __future__ import annotations

import copy
from typing import Any

from jsonschema import Draft202012Validator, SchemaError

_STANDARD = frozenset({"null", "boolean", "object", "array", "number", "string", "integer"})
_ALIASES = {
    **dict.fromkeys(("str", "text", "varchar", "char", "enum", "uuid", "date", "datetime", "time", "timestamp",
                     "binary", "blob", "bytea", "bytes", "varbinary"), "string"),
    "bool": "boolean",
    **dict.fromkeys(("bigint", "smallint", "tinyint"), "integer"),
    **dict.fromkeys(("double", "decimal", "real", "numeric"), "number"),
    **dict.fromkeys(("arr", "tuple", "set"), "array"),
    "map": "object",
}
# A prefix counts only when followed by a digit/bracket/space, so `int32` maps but `internal` does not.
_PREFIXES = ((("int", "uint", "long", "short", "unsigned"), "integer"), (("num", "float"), "number"),
             (("list",), "array"), (("dict",), "object"))
_BOUNDARY = frozenset("0123456789[<( \t")
_NAMED_SUBSCHEMAS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_LISTED_SUBSCHEMAS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SINGLE_SUBSCHEMAS = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
                      "unevaluatedItems", "unevaluatedProperties")


def _normalize_type(raw: Any) -> Any:
    if not isinstance(raw, str) or raw in _STANDARD:
        return raw
    base = raw.split("(", 1)[0].strip().lower()
    if base in _STANDARD:
        return base
    if base in _ALIASES:
        return _ALIASES[base]
    for prefixes, target in _PREFIXES:
        if any(base == p or (base.startswith(p) and base[len(p)] in _BOUNDARY) for p in prefixes):
            return target
    return raw


def normalize_json_schema_types(schema: Any) -> None:
    """Rewrite non-standard `type` values in place, at any depth; unknown names are left for the check to reject."""
    if isinstance(schema, list):
        for item in schema:
            normalize_json_schema_types(item)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if isinstance(kind, str):
        schema["type"] = _normalize_type(kind)
    elif isinstance(kind, list):
        unique: list[Any] = []
        for item in map(_normalize_type, kind):
            if item not in unique:  # items may be unhashable junk; the check reports those
                unique.append(item)
        schema["type"] = unique
    for key in _NAMED_SUBSCHEMAS:
        if isinstance(schema.get(key), dict):
            for sub in schema[key].values():
                normalize_json_schema_types(sub)
    for key in _LISTED_SUBSCHEMAS:
        if isinstance(schema.get(key), list):
            normalize_json_schema_types(schema[key])
    for key in _SINGLE_SUBSCHEMAS:
        if key in schema:
            normalize_json_schema_types(schema[key])


def tool_schema_error(index: int, parameters: Any) -> str | None:
    """SGLang's message for tool `index` if its parameters schema is rejected, else None."""
    if parameters is None:
        return None
    schema = copy.deepcopy(parameters)
    try:
        normalize_json_schema_types(schema)
        Draft202012Validator.check_schema(schema)
    except SchemaError as e:
        return f"Tool {index} function has invalid 'parameters' schema: {e}"
    except RecursionError:
        return f"Tool {index} function 'parameters' schema is too deeply nested or contains a cycle."
    return None
