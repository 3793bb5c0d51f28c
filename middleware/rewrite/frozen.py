"""Read-only JSON containers, so one cached object can sit in many requests' rewritten bodies.

A repaired tool schema is cached and handed, as the same object, to every later request that sends the same
schema (re-parsing it per request cost more than the rest of the repair). Sharing is only sound if nothing
mutates it; these subclasses make that a checked fact instead of a convention: every mutating method raises
TypeError (a rule doing so fails closed, a 500, rather than corrupting other requests). They are still `dict`
and `list`, so isinstance checks, `{**d}` / `dict(d)` copies and orjson's serializer treat them as plain JSON.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn


def _refuse(self: object, *args: object, **kwargs: object) -> NoReturn:
    raise TypeError(f"{type(self).__name__} is shared between requests and read-only; copy it to change it")


class FrozenDict(dict[str, Any]):
    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse


class FrozenList(list[Any]):
    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = clear = extend = insert = pop = remove = reverse = sort = _refuse


def freeze(value: Any) -> tuple[Any, int]:
    """A private read-only deep copy of a JSON value and its size in bytes (containers and scalars, as
    `sys.getsizeof` counts them; what a cache holding it should be charged). Iterative: any depth."""
    if not isinstance(value, (dict, list)):
        return value, sys.getsizeof(value)
    size = 0
    # Children are copied before their parent is built, since a frozen container cannot be filled in later:
    # a post-order walk with an explicit stack of (node, frozen children so far).
    root: list[Any] = []
    stack: list[tuple[Any, list[Any], Any]] = [(value, [], iter(_members(value)))]
    while stack:
        node, done, members = stack[-1]
        child = next(members, _END)
        if child is _END:
            stack.pop()
            if isinstance(node, dict):
                built: Any = FrozenDict(zip(node, done, strict=True))
                size += sum(sys.getsizeof(key) for key in node)
            else:
                built = FrozenList(done)
            size += sys.getsizeof(built)
            (stack[-1][1] if stack else root).append(built)
        elif isinstance(child, (dict, list)):
            stack.append((child, [], iter(_members(child))))
        else:
            size += sys.getsizeof(child)
            done.append(child)
    return root[0], size


_END = object()


def _members(node: dict[str, Any] | list[Any]) -> list[Any]:
    return list(node.values()) if isinstance(node, dict) else list(node)

