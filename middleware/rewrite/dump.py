"""Serialize a rewritten body: orjson, with fallbacks for the two things orjson refuses.

orjson stops at 254 levels of nesting (the proxy's parser accepts 1,024) and at integers over 64 bits;
`json.dumps` handles big integers but recurses in C, so the last resort is an explicit-stack encoder.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dump(body: Any) -> bytes:
    try:
        return orjson.dumps(body)
    except TypeError:  # orjson.JSONEncodeError: too deep, too big an integer, or not JSON at all
        pass
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    except RecursionError:
        return _dump_iterative(body).encode()


def _scalar(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _dump_iterative(value: Any) -> str:
    """Compact JSON for any nesting depth. Stack items are values to encode or literal text to emit."""
    out: list[str] = []
    stack: list[tuple[bool, Any]] = [(False, value)]  # (is literal text, item)
    while stack:
        literal, item = stack.pop()
        if literal:
            out.append(item)
        elif isinstance(item, dict):
            out.append("{")
            stack.append((True, "}"))
            entries = list(item.items())
            for i in range(len(entries) - 1, -1, -1):  # reversed, so the first entry pops first
                key, member = entries[i]
                stack.append((False, member))
                stack.append((True, ("," if i else "") + _scalar(str(key)) + ":"))
        elif isinstance(item, (list, tuple)):
            out.append("[")
            stack.append((True, "]"))
            for i in range(len(item) - 1, -1, -1):
                stack.append((False, item[i]))
                if i:
                    stack.append((True, ","))
        else:
            out.append(_scalar(item))
    return "".join(out)
