"""SGLang 0.5.23's xgrammar-backend schema check (constrained/json_schema_validation.py), keywords part.

A schema with a keyword xgrammar would ignore is refused when the grammar is compiled: the scheduler aborts
the request with 400 `Failed to compile json grammar: JSON Schema at <pointer> is not supported by xgrammar:
keyword(s) <k> would be ignored`. Only the keyword check is simulated (formats and string groups are not).
"""

from __future__ import annotations

from typing import Any

_IGNORED = frozenset(("contains", "dependentRequired", "dependentSchemas", "else", "if", "maxContains",
                      "minContains", "multipleOf", "not", "then", "uniqueItems"))  # fmt: skip
_ONE = ("additionalItems", "additionalProperties", "contains", "contentSchema", "else", "if", "items", "not",
        "propertyNames", "then", "unevaluatedItems", "unevaluatedProperties")  # fmt: skip
_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAPS = ("$defs", "definitions", "dependentSchemas", "patternProperties", "properties")


def json_grammar_error(schema: Any) -> str | None:
    stack: list[tuple[Any, str]] = [(schema, "#")]
    while stack:
        node, pointer = stack.pop()
        if not isinstance(node, dict):
            continue
        ignored = sorted(_IGNORED.intersection(node))
        if ignored:
            return (f"Failed to compile json grammar: JSON Schema at {pointer} is not supported by xgrammar: "
                    f"keyword(s) {', '.join(ignored)} would be ignored")  # fmt: skip
        children = [(node[k], f"{pointer}/{k}") for k in _ONE if isinstance(node.get(k), dict)]
        for key in _LISTS:
            children += [(v, f"{pointer}/{key}/{i}") for i, v in enumerate(node.get(key) or []) if isinstance(v, dict)]
        for key in _MAPS:
            if isinstance(node.get(key), dict):
                children += [(v, f"{pointer}/{key}/{name}") for name, v in node[key].items()]
        stack += reversed(children)  # depth first, in SGLang's order: one-schema keywords, lists, maps
    return None
