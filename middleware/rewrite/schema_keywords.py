"""Per-keyword repairs for JSON Schema 2020-12, the dialect SGLang checks tool schemas against.

SGLang 0.5.23 runs `normalize_json_schema_types` and then `Draft202012Validator.check_schema` on every tool's
`parameters` (serving_chat.py `_validate_request`) and answers 400 on any metaschema violation; vLLM never
checks them. Each entry of `KEYWORDS` takes a keyword's value and returns it unchanged (the same object),
a coerced value, or `DROP`. The policy, in order of preference:
translate to the 2020-12 spelling of the same meaning; coerce an obvious spelling slip ("5" -> 5);
otherwise drop the keyword, which only ever makes the schema more permissive.
Structural rewrites that involve two keywords (draft-07 tuple `items`, draft-04 boolean exclusive bounds,
draft-03 boolean `required`) live in `middleware/rewrite/schema.py`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

DROP: Any = object()  # sentinel: remove the keyword

STANDARD_TYPES = frozenset({"null", "boolean", "object", "array", "number", "string", "integer"})

# SGLang's own alias table (srt/function_call/utils.py): mapping them ourselves yields exactly the schema
# SGLang would build, and keeps our output valid for a plain Draft202012Validator too.
_TYPE_ALIASES = {
    "str": "string", "text": "string", "varchar": "string", "char": "string", "enum": "string",
    "uuid": "string", "date": "string", "datetime": "string", "time": "string", "timestamp": "string",
    "binary": "string", "blob": "string", "bytea": "string", "bytes": "string", "varbinary": "string",
    "bool": "boolean", "bigint": "integer", "smallint": "integer", "tinyint": "integer",
    "double": "number", "decimal": "number", "real": "number", "numeric": "number",
    "arr": "array", "tuple": "array", "set": "array", "map": "object",
}  # fmt: skip
_PREFIX_RULES = (
    (("int", "uint", "long", "short", "unsigned"), "integer"),
    (("num", "float"), "number"),
    (("list",), "array"),
    (("dict",), "object"),
)
_PREFIX_BOUNDARY = frozenset("0123456789[<( \t")
_ID = re.compile(r"^[^#]*#?$")
_ANCHOR = re.compile(r"^[A-Za-z_][-A-Za-z0-9._]*$")


# Client strings are cached only when short, so the caches stay under ~4096 x 1 KB whatever clients send.
CACHED_STRING_CHARS = 1024
# A client `pattern` longer than this counts as one that does not compile (the keyword is dropped, which only
# loosens the schema): re.compile is pure Python, ~2-5 ms per KB of pattern. Large bodies are rewritten off
# the event loop anyway (inbound.OFFLOAD_BYTES), so many patterns cannot stall it either.
MAX_PATTERN_CHARS = 4 * 1024


def normalize_type(raw: str) -> str | None:
    """The standard type SGLang maps `raw` to, or None when SGLang would reject it ("any", typos)."""
    if raw in STANDARD_TYPES:
        return raw
    if len(raw) > CACHED_STRING_CHARS:
        return _normalize_type(raw)
    return _normalize_type_cached(raw)


def _normalize_type(raw: str) -> str | None:
    base = raw.split("(", 1)[0].strip().lower()
    if base in STANDARD_TYPES:
        return base
    if base in _TYPE_ALIASES:
        return _TYPE_ALIASES[base]
    for prefixes, target in _PREFIX_RULES:
        for p in prefixes:
            if base == p or (base.startswith(p) and len(base) > len(p) and base[len(p)] in _PREFIX_BOUNDARY):
                return target
    return None


_normalize_type_cached = functools.lru_cache(maxsize=4096)(_normalize_type)


def compiles(pattern: str) -> bool:
    """jsonschema's `regex` format check is `re.compile`; JS-only syntax (`\\p{L}`, `(?<n>)`) fails it."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return False
    return _compiles(pattern) if len(pattern) > CACHED_STRING_CHARS else _compiles_cached(pattern)


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return False
    return True


_compiles_cached = functools.lru_cache(maxsize=4096)(_compiles)


def as_schema(value: Any) -> Any:
    """A value standing where a subschema belongs: keep schemas, read a bare type name, else DROP."""
    if isinstance(value, (dict, bool)):
        return value
    if isinstance(value, str) and (t := normalize_type(value)) is not None:
        return {"type": t}
    return DROP


def as_member(value: Any) -> Any:
    """Like `as_schema`, for a member of a map or list, where dropping would shift meaning: `{}` (true)."""
    fixed = as_schema(value)
    return {} if fixed is DROP else fixed


def _number(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            return DROP
        if parsed != parsed or parsed in (float("inf"), float("-inf")):
            return DROP
        return int(parsed) if parsed.is_integer() else parsed
    return DROP


def _positive(value: Any) -> Any:
    fixed = _number(value)
    return DROP if fixed is DROP or fixed <= 0 else fixed


def _count(value: Any) -> Any:
    fixed = _number(value)
    if fixed is DROP or fixed < 0 or (isinstance(fixed, float) and not fixed.is_integer()):
        return DROP
    return fixed


def _boolean(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return DROP


def _string(value: Any) -> Any:
    return value if isinstance(value, str) else DROP


def _text(value: Any) -> Any:
    """title/description: a number or bool is still worth showing the model, as text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, (int, float)) else DROP


def _matching(pattern: re.Pattern[str]) -> Callable[[Any], Any]:
    def fix(value: Any) -> Any:
        return value if isinstance(value, str) and pattern.match(value) else DROP

    return fix


def _regex(value: Any) -> Any:
    return value if isinstance(value, str) and compiles(value) else DROP


def _array(value: Any) -> Any:
    """enum/examples: a lone value is read as a one-element list."""
    if isinstance(value, list):
        return value
    return DROP if value is None else [value]


def string_array(value: Any) -> Any:
    """`required`-style lists: unique strings; a lone string is a one-element list."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        return DROP
    out: list[str] = []
    for item in value:
        if isinstance(item, str) and item not in out:
            out.append(item)
    return value if len(out) == len(value) else out


def _type(value: Any) -> Any:
    if isinstance(value, str):
        t = normalize_type(value)
        return DROP if t is None else (value if t == value else t)
    if not isinstance(value, list):
        return DROP
    out: list[str] = []
    for item in value:
        t = normalize_type(item) if isinstance(item, str) else None
        if t is not None and t not in out:
            out.append(t)
    if not out:
        return DROP
    return value if out == value else out


def _map_of(member: Callable[[Any], Any], keep_key: Callable[[str], bool] | None = None) -> Callable[[Any], Any]:
    """An object whose values are fixed by `member` (DROP removes the entry); non-objects are dropped."""

    def fix(value: Any) -> Any:
        if not isinstance(value, dict):
            return DROP
        out: dict[str, Any] | None = None
        for key, item in value.items():
            fixed = member(item) if keep_key is None or keep_key(key) else DROP
            if fixed is not item:
                if out is None:
                    out = dict(value)
                if fixed is DROP:
                    del out[key]
                else:
                    out[key] = fixed
        return value if out is None else out

    return fix


def _schema_list(value: Any) -> Any:
    """allOf/anyOf/oneOf/prefixItems: a non-empty list of schemas; a lone schema is wrapped."""
    if isinstance(value, (dict, bool)):
        return [value]
    if not isinstance(value, list) or not value:
        return DROP
    fixed = [as_member(item) for item in value]
    return value if all(a is b for a, b in zip(fixed, value, strict=True)) else fixed


def _properties(value: Any) -> Any:
    """`properties: []` / `null` (PHP-style empty maps, sglang#35242's cousin) mean "no properties"."""
    return _schema_map(value) if isinstance(value, dict) else {}


def _dependency(value: Any) -> Any:
    """draft-07 `dependencies` members: a schema or a property list."""
    if isinstance(value, (dict, bool)):
        return value
    return string_array(value)


def _vocabulary(value: Any) -> Any:
    ok = isinstance(value, dict) and all(isinstance(v, bool) for v in value.values())
    return value if ok else DROP


_schema_map = _map_of(as_member)

# Keyword -> fix(value). Keywords absent here are unknown to the 2020-12 metaschema and never rejected.
KEYWORDS: dict[str, Callable[[Any], Any]] = {
    "type": _type,
    "properties": _properties,
    "patternProperties": _map_of(as_member, compiles),
    "$defs": _schema_map,
    "definitions": _schema_map,
    "dependentSchemas": _schema_map,
    "dependencies": _map_of(_dependency),
    "dependentRequired": _map_of(string_array),
    "required": string_array,
    **dict.fromkeys(("allOf", "anyOf", "oneOf", "prefixItems"), _schema_list),
    **dict.fromkeys(
        (
            "items",
            "additionalProperties",
            "contains",
            "propertyNames",
            "if",
            "then",
            "else",
            "not",
            "unevaluatedItems",
            "unevaluatedProperties",
            "contentSchema",
        ),
        as_schema,
    ),  # fmt: skip
    **dict.fromkeys(("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"), _number),
    "multipleOf": _positive,
    **dict.fromkeys(
        (
            "minLength",
            "maxLength",
            "minItems",
            "maxItems",
            "minContains",
            "maxContains",
            "minProperties",
            "maxProperties",
        ),
        _count,
    ),  # fmt: skip
    **dict.fromkeys(("uniqueItems", "deprecated", "readOnly", "writeOnly"), _boolean),
    **dict.fromkeys(("title", "description", "$comment"), _text),
    **dict.fromkeys(
        ("format", "contentEncoding", "contentMediaType", "$schema", "$ref", "$dynamicRef", "$recursiveRef"),
        _string,
    ),
    "pattern": _regex,
    "$id": _matching(_ID),
    **dict.fromkeys(("$anchor", "$dynamicAnchor", "$recursiveAnchor"), _matching(_ANCHOR)),
    "$vocabulary": _vocabulary,
    "enum": _array,
    "examples": _array,
}

# Where subschemas sit, for the walker: one schema, an object of schemas, or a list of schemas.
ONE = frozenset(
    ("items", "additionalProperties", "contains", "propertyNames", "if", "then", "else", "not",
     "unevaluatedItems", "unevaluatedProperties", "contentSchema")
)  # fmt: skip
MAP = frozenset(("properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"))
LIST = frozenset(("allOf", "anyOf", "oneOf", "prefixItems"))
