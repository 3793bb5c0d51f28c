"""Tool-schema repair: make every tool `parameters` schema that vLLM accepts also pass SGLang 0.5.23.

vLLM never validates tool schemas; SGLang checks each one against the JSON Schema 2020-12 metaschema and
answers 400 on the first violation (see `schema_keywords` for the per-keyword policy). The walk here is
iterative with an explicit stack, so a 10,000-level schema neither raises RecursionError nor crashes, and it
is copy-on-write: an untouched subtree is returned as the very same object, a repaired node is a new dict,
and only the ancestors of repaired nodes are copied. The input is never mutated.
"""

from __future__ import annotations

from typing import Any

import orjson

from middleware.rewrite.base import map_items
from middleware.rewrite.frozen import freeze
from middleware.rewrite.schema_check import is_clean
from middleware.rewrite.schema_keywords import DROP, KEYWORDS, LIST, MAP, ONE, as_member

# What a tool with unusable `parameters` (a list, a string, a number) gets: "takes no arguments".
NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {}}
_BOUNDS = (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum"))
# Near the root, skip clean subtrees with one flat `is_clean` pass instead of a frame per node. Deeper down
# the pre-check could rescan a long chain once per level (quadratic), so the frames take over there.
_PRECHECK_DEPTH = 3

Slot = tuple[str, Any]  # (keyword, None | property name | list index)

# Agents resend the same tools every turn: remember each `parameters` schema's verdict by its JSON bytes
# (a C-speed dump is ~10x cheaper than even the flat `is_clean` walk). A repaired schema is stored as a private
# read-only copy (`frozen.py`) and that one object goes into every request that sends the schema: re-parsing
# it per request cost as much as the rest of the rewrite, and read-only makes the sharing safe. Bounded in
# entries and in bytes (keys plus `freeze`'s size of each copy); insertion order evicts the oldest.
_CLEAN = object()  # the stored verdict for a schema SGLang accepts as it is
_CACHE: dict[bytes, Any] = {}  # schema bytes -> _CLEAN | frozen repaired schema
_SIZES: dict[bytes, int] = {}  # schema bytes -> bytes charged for its entry
_CACHE_ENTRIES = 512
_MISS = object()
_CACHE_MAX_BYTES = 32 * 1024  # per entry (key); larger schemas are not cached
_CACHE_TOTAL_BYTES = 4 * 1024 * 1024  # keys + stored copies, all entries: the bound in bytes
_cache_bytes = 0


def repair_parameters(params: Any) -> Any:
    """A tool's `parameters`: None and booleans pass SGLang as they are; other non-objects mean "no arguments".

    A repaired schema may be shared with other requests: it is read-only (copy it to change it)."""
    if isinstance(params, dict):
        try:  # the hit, inline: this runs once per tool per request
            key = orjson.dumps(params)
        except TypeError:  # not plain JSON (e.g. an int over 64 bits): no cache
            return repair_schema(params)
        hit = _CACHE.get(key, _MISS)
        if hit is not _MISS:
            return params if hit is _CLEAN else hit
        return _repair_and_remember(params, key)
    if params is None or isinstance(params, bool):
        return params
    return dict(NO_ARGUMENTS, properties={})


def _repair_and_remember(params: dict[str, Any], key: bytes) -> Any:
    fixed = repair_schema(params)
    if len(key) > _CACHE_MAX_BYTES:
        return fixed  # not shared, so this request's own copy-on-write result will do
    if fixed is params:
        _remember(key, _CLEAN, 0)
        return params
    shared, size = freeze(fixed)  # a copy: `fixed` shares untouched subtrees with this request's body
    _remember(key, shared, size)
    return shared


def clear_cache() -> None:
    """Forget every verdict (benchmarks time the first turn with it; tests start from empty)."""
    global _cache_bytes
    _CACHE.clear()
    _SIZES.clear()
    _cache_bytes = 0


def _remember(key: bytes, value: Any, value_size: int) -> None:
    """Store one verdict, evicting the oldest entries past the entry or byte bound."""
    global _cache_bytes
    size = len(key) + value_size
    if size > _CACHE_TOTAL_BYTES // 16 or key in _CACHE:  # one entry never flushes the cache; no double charge
        return
    while _CACHE and (len(_CACHE) >= _CACHE_ENTRIES or _cache_bytes + size > _CACHE_TOTAL_BYTES):
        try:  # a concurrent caller (a rewrite in a worker thread) may evict the same entry
            old_key = next(iter(_CACHE))
            del _CACHE[old_key]
            _cache_bytes -= _SIZES.pop(old_key)
        except (StopIteration, RuntimeError, KeyError):
            continue
    _CACHE[key] = value
    _SIZES[key] = size
    _cache_bytes += size


def repair_tools(tools: Any) -> Any:
    """Repair every tool's schema in a `tools` list; returns `tools` itself when nothing needed fixing."""
    return map_items(tools, _repair_tool) if isinstance(tools, list) else tools


def _repair_tool(tool: Any) -> Any:
    if not isinstance(tool, dict):
        return tool
    function = tool.get("function")
    if isinstance(function, dict):  # chat-completions form {"type": "function", "function": {...}}
        if "parameters" not in function:
            return tool
        params = repair_parameters(function["parameters"])
        return tool if params is function["parameters"] else {**tool, "function": {**function, "parameters": params}}
    if "parameters" in tool:  # Responses-API form {"type": "function", "name", "parameters"}
        params = repair_parameters(tool["parameters"])
        return tool if params is tool["parameters"] else {**tool, "parameters": params}
    return tool


def repair_schema(schema: Any) -> Any:
    """Return `schema` itself when SGLang accepts it, else a repaired copy. Iterative post-order walk."""
    if is_clean(schema):
        return schema
    stack = [_Frame(schema, 0)]
    root_result: Any = schema
    while stack:
        frame = stack[-1]
        if frame.next < len(frame.kids):
            child = frame.kids[frame.next][1]
            frame.next += 1
            if frame.depth >= _PRECHECK_DEPTH or not is_clean(child):
                stack.append(_Frame(child, frame.depth + 1))
            continue
        stack.pop()
        result = frame.finish()
        if stack:
            parent = stack[-1]
            slot, child = parent.kids[parent.next - 1]
            if result is not child:
                parent.changed.append((slot, result))
        else:
            root_result = result
    return root_result


class _Frame:
    """One schema node in the walk: its locally repaired form, its subschemas, and repaired children."""

    __slots__ = ("changed", "depth", "kids", "local", "next", "node")

    def __init__(self, node: dict[str, Any], depth: int) -> None:
        self.node = node
        self.depth = depth
        self.local = _fix_local(node)
        self.kids = _subschemas(self.local)
        self.next = 0
        self.changed: list[tuple[Slot, Any]] = []

    def finish(self) -> dict[str, Any]:
        if not self.changed:
            return self.local
        out = dict(self.local) if self.local is self.node else self.local
        copied: set[str] = set()
        for (key, sub), value in self.changed:
            if sub is None:
                out[key] = value
                continue
            if key not in copied:  # copy each container once, on its first repaired member
                out[key] = list(out[key]) if isinstance(out[key], list) else dict(out[key])
                copied.add(key)
            out[key][sub] = value
        return out


def _subschemas(node: dict[str, Any]) -> list[tuple[Slot, dict[str, Any]]]:
    """Object-valued subschemas to visit (boolean subschemas need no repair)."""
    kids: list[tuple[Slot, dict[str, Any]]] = []
    for key, value in node.items():
        if key in ONE:
            if isinstance(value, dict):
                kids.append(((key, None), value))
        elif key in MAP:
            if isinstance(value, dict):
                kids.extend(((key, name), v) for name, v in value.items() if isinstance(v, dict))
        elif key in LIST and isinstance(value, list):
            kids.extend(((key, i), v) for i, v in enumerate(value) if isinstance(v, dict))
    return kids


def _fix_local(node: dict[str, Any]) -> dict[str, Any]:
    """Repair one node's own keywords (not its subschemas); the same dict if nothing changed."""
    local = _fix_structure(node)
    edits: list[tuple[str, Any]] | None = None
    for key, value in local.items():
        fix = KEYWORDS.get(key)
        if fix is None:
            continue
        fixed = fix(value)
        if fixed is not value:
            if edits is None:
                edits = []
            edits.append((key, fixed))
    if edits is None:
        return local
    out = dict(local) if local is node else local
    for key, fixed in edits:
        if fixed is DROP:
            del out[key]
        else:
            out[key] = fixed
    return out


def _fix_structure(node: dict[str, Any]) -> dict[str, Any]:
    """Rewrites that span keywords: older drafts' spellings of things 2020-12 says differently."""
    out = node
    if isinstance(node.get("items"), list):
        out = _tuple_items(out)
    for exclusive, bound in _BOUNDS:
        if isinstance(out.get(exclusive), bool):
            out = _boolean_bound(out, exclusive, bound)
    props = out.get("properties")
    if isinstance(props, dict) and any(
        isinstance(p, dict) and isinstance(p.get("required"), bool) for p in props.values()
    ):
        out = _lift_required(out, props)
    return out


def _tuple_items(node: dict[str, Any]) -> dict[str, Any]:
    """draft-07 `items: [a, b]` + `additionalItems: c` is 2020-12 `prefixItems: [a, b]` + `items: c`."""
    out = dict(node)
    tuple_items = out.pop("items")
    extra = out.pop("additionalItems", None)
    if tuple_items and "prefixItems" not in out:
        out["prefixItems"] = [as_member(item) for item in tuple_items]
    if isinstance(extra, (dict, bool)):
        out["items"] = extra
    elif extra is not None:
        out["additionalItems"] = extra  # not a schema: leave it where 2020-12 ignores it
    return out


def _boolean_bound(node: dict[str, Any], exclusive: str, bound: str) -> dict[str, Any]:
    """draft-04 `minimum: 5, exclusiveMinimum: true` is `exclusiveMinimum: 5`; `false` just means inclusive."""
    out = dict(node)
    flag = out.pop(exclusive)
    value = out.get(bound)
    if flag and isinstance(value, (int, float)) and not isinstance(value, bool):
        out[exclusive] = out.pop(bound)
    return out


def _lift_required(node: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    """draft-03 `properties: {a: {required: true}}` is `required: ["a"]` on the parent."""
    names = [k for k, p in props.items() if isinstance(p, dict) and p.get("required") is True]
    if not names:
        return node  # only `required: false` members: the children drop their flag themselves
    current = node.get("required")
    merged = list(current) if isinstance(current, list) else [current] if isinstance(current, str) else []
    merged.extend(name for name in names if name not in merged)
    return {**node, "required": merged}
