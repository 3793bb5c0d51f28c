"""Fast read-only test: would `repair_schema` leave this schema untouched?

Almost every tool schema a client sends is already valid, and agents resend the same tools every turn, so
the common case must cost one flat pass: no frames, no copies, an explicit stack (any depth is safe). The
invariant, property-tested in tests/unit/middleware/rewrite/test_schema.py: `is_clean(s)` iff `repair_schema(s) is s`.
Common keywords get an inline check; the rest defer to the keyword's own fixer from `schema_keywords`.
"""

from __future__ import annotations

from typing import Any

from middleware.rewrite.schema_keywords import KEYWORDS, ONE, STANDARD_TYPES, compiles, string_array

_SCHEMA_MAPS = frozenset(("properties", "$defs", "definitions", "dependentSchemas"))
_SCHEMA_LISTS = frozenset(("allOf", "anyOf", "oneOf", "prefixItems"))
_TEXT = frozenset(("description", "title", "$comment", "format", "$schema", "$ref"))
# One dict lookup per key decides the check; the codes are ordered by how often they occur in real schemas.
_TEXT_CODE, _TYPE_CODE, _MAP_CODE, _ONE_CODE, _REQUIRED_CODE, _LIST_CODE, _OTHER_CODE = range(7)
_CODES = {
    **dict.fromkeys(KEYWORDS, _OTHER_CODE),
    **dict.fromkeys(_TEXT, _TEXT_CODE),
    "type": _TYPE_CODE,
    **dict.fromkeys(_SCHEMA_MAPS, _MAP_CODE),
    **dict.fromkeys(ONE, _ONE_CODE),
    "required": _REQUIRED_CODE,
    **dict.fromkeys(_SCHEMA_LISTS, _LIST_CODE),
}


def is_clean(schema: Any) -> bool:
    """True when no keyword anywhere in `schema` needs repair (non-objects are trivially clean)."""
    if not isinstance(schema, dict):
        return True
    stack = [schema]
    push = stack.append
    codes = _CODES
    while stack:
        for key, value in stack.pop().items():
            code = codes.get(key)
            if code is None:
                continue
            cls = value.__class__
            if code == _TEXT_CODE:
                if cls is not str:
                    return False
            elif code == _TYPE_CODE:
                if cls is str:
                    if value not in STANDARD_TYPES:
                        return False
                elif KEYWORDS["type"](value) is not value:
                    return False
            elif code == _MAP_CODE:
                if cls is not dict or not _members_ok(value.values(), push):
                    return False
            elif code == _ONE_CODE:
                if cls is dict:
                    push(value)
                elif cls is not bool:
                    return False
            elif code == _REQUIRED_CODE:
                if cls is not list or string_array(value) is not value:
                    return False
            elif code == _LIST_CODE:
                if cls is not list or not value or not _members_ok(value, push):
                    return False
            elif not _other_ok(key, value, push):
                return False
    return True


def _members_ok(members: Any, push: Any) -> bool:
    for member in members:
        if member.__class__ is dict:
            push(member)
        elif member.__class__ is not bool:
            return False
    return True


def _other_ok(key: str, value: Any, push: Any) -> bool:
    """Keywords with subschemas in unusual places, then everything else via its fixer."""
    if key == "patternProperties":
        if value.__class__ is not dict or not all(compiles(k) for k in value):
            return False
        return _members_ok(value.values(), push)
    if key == "dependencies":
        if value.__class__ is not dict:
            return False
        for member in value.values():
            if member.__class__ is dict:
                push(member)
            elif member.__class__ is not bool and string_array(member) is not member:
                return False
        return True
    fix = KEYWORDS.get(key)
    return fix is None or fix(value) is value
