"""Structured-output JSON schemas loosened to what SGLang 0.5.23's xgrammar backend accepts.

vLLM accepts any JSON schema in `response_format` / `structured_outputs.json` (its `auto` backend falls back
to guidance for what xgrammar cannot enforce). SGLang 0.5.23 refuses the whole request instead
(sglang/srt/constrained/json_schema_validation.py, `validate_xgrammar_json_schema`) when a subschema has a
keyword xgrammar would ignore, a string `format` it does not implement, or more than one of `format`,
`pattern` and `minLength/maxLength` on one string. The request must work as on vLLM, so those constraints are
dropped (the output is then looser than asked, never refused): `pattern` is kept over `format`, `format` over
the lengths. What was loosened is returned for the log line; the rule is counted in `rewrites_total`.

The walk visits exactly the schema-bearing keywords SGLang's check visits, iteratively (any depth is safe),
on a private copy of the schema (the input is never mutated).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from middleware.rewrite.base import Body, RewriteContext, RuleResult
from middleware.rewrite.dump import dump

log = logging.getLogger(__name__)

UNSUPPORTED_KEYWORDS = frozenset((
    "contains", "dependentRequired", "dependentSchemas", "else", "if", "maxContains", "minContains", "multipleOf",
    "not", "then", "uniqueItems",
))  # fmt: skip
STRING_FORMATS = frozenset((
    "date", "date-time", "duration", "email", "hostname", "ipv4", "ipv6", "json-pointer", "relative-json-pointer",
    "time", "uri", "uri-reference", "uri-template", "uuid",
))  # fmt: skip
_ONE = ("additionalItems", "additionalProperties", "contains", "contentSchema", "else", "if", "items", "not",
        "propertyNames", "then", "unevaluatedItems", "unevaluatedProperties")  # fmt: skip
_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAPS = ("$defs", "definitions", "dependentSchemas", "patternProperties", "properties", "dependencies")
_LENGTHS = ("minLength", "maxLength")


def _copy(value: Any) -> Any:
    """A deep copy of JSON containers without recursion (any depth)."""
    if not isinstance(value, (dict, list)):
        return value
    root: Any = dict(value) if isinstance(value, dict) else list(value)
    stack = [root]
    while stack:
        node = stack.pop()
        keys = node.keys() if isinstance(node, dict) else range(len(node))
        for key in keys:
            child = node[key]
            if isinstance(child, (dict, list)):
                node[key] = dict(child) if isinstance(child, dict) else list(child)
                stack.append(node[key])
    return root


def _describes_string(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    return kind is None or kind == "string" or (isinstance(kind, list) and "string" in kind)


def _loosen_node(node: dict[str, Any]) -> list[str]:
    """Drop what SGLang refuses from one subschema (in place); the dropped keywords."""
    dropped = sorted(UNSUPPORTED_KEYWORDS.intersection(node))
    if _describes_string(node):
        fmt = node.get("format")
        known = isinstance(fmt, str) and fmt in STRING_FORMATS
        if "format" in node and (not known or "pattern" in node):
            dropped.append("format")
        kept = "pattern" in node or ("format" in node and "format" not in dropped)
        if kept and any(k in node for k in _LENGTHS):
            dropped += [k for k in _LENGTHS if k in node]
    for key in dropped:
        del node[key]
    return dropped


def _children(node: dict[str, Any], pointer: str) -> list[tuple[Any, str]]:
    out: list[tuple[Any, str]] = []
    for key in _ONE:
        child = node.get(key)
        if isinstance(child, dict):
            out.append((child, f"{pointer}/{key}"))
        elif key == "items" and isinstance(child, list):
            out += [(item, f"{pointer}/items/{i}") for i, item in enumerate(child)]
    for key in _LISTS:
        if isinstance(node.get(key), list):
            out += [(item, f"{pointer}/{key}/{i}") for i, item in enumerate(node[key])]
    for key in _MAPS:
        if isinstance(node.get(key), dict):
            out += [(item, f"{pointer}/{key}/{name}") for name, item in node[key].items()]
    return out


def needs_loosening(schema: Any) -> bool:
    """Read-only twin of `loosen`: True when SGLang's xgrammar check would refuse `schema`."""
    return bool(loosen(schema, dry_run=True)[1])


def loosen(schema: Any, dry_run: bool = False) -> tuple[Any, list[str]]:
    """(`schema` loosened to what SGLang accepts, ["<json pointer>: dropped k1, k2", ...]).

    The very same object comes back when nothing had to go."""
    if not isinstance(schema, dict):
        return schema, []
    work = schema if dry_run else _copy(schema)
    notes: list[str] = []
    stack: list[tuple[Any, str]] = [(work, "#")]
    while stack:
        node, pointer = stack.pop()
        if not isinstance(node, dict):
            continue
        dropped = _loosen_node(dict(node) if dry_run else node)
        if dropped:
            notes.append(f"{pointer}: dropped {', '.join(dropped)}")
            if dry_run:
                return schema, notes
        stack += _children(node, pointer)
    return (work, notes) if notes else (schema, [])


def _loosen_logged(schema: Any) -> Any:
    loosened, notes = loosen(schema)
    if notes:
        log.info("structured-output schema loosened for SGLang's xgrammar: %s", "; ".join(notes))
    return loosened


def structured_schema_limits(body: Body, ctx: RewriteContext) -> RuleResult:
    """Loosen `response_format.json_schema.schema` (chat) and the `json_schema` text (completions, after the
    structured_outputs rules put it there) to what SGLang accepts."""
    out = body
    fmt = body.get("response_format")
    spec = fmt.get("json_schema") if isinstance(fmt, dict) and fmt.get("type") == "json_schema" else None
    if isinstance(spec, dict) and isinstance(spec.get("schema"), dict):
        schema = _loosen_logged(spec["schema"])
        if schema is not spec["schema"]:
            out = {**out, "response_format": {**fmt, "json_schema": {**spec, "schema": schema}}}  # type: ignore[dict-item]
    text = body.get("json_schema")
    if isinstance(text, str) and needs_loosening(_parsed(text)):
        out = {**out, "json_schema": dump(_loosen_logged(_parsed(text))).decode()}
    return None if out is body else out


def _parsed(text: str) -> Any:
    """The schema text as JSON, or None when it is not JSON orjson reads (then SGLang, which parses it with
    the same or a smaller depth limit, answers for it)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


# Key spellings in a body and inside a JSON-string schema (`\"if\"`); the prefilter is only a pre-check.
SCHEMA_TRIGGERS = (
    b"ontains", b"dependent", b"multipleOf", b"uniqueItems", b"format", b'"if', b'"then', b'"else', b'"not', b"Length",
)
