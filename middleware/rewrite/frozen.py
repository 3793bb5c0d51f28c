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
    """A private read-only deep copy of a JSON value and its size in bytes (containers, keys and scalars, as
    `sys.getsizeof` counts them: what a cache holding it should be charged).

    Recursive, so only for values orjson could serialize (it refuses past 254 levels): a callers' cache key is
    that serialization. An explicit-stack walk cost twice as much, on every cache miss."""
    if isinstance(value, dict):
        size = sys.getsizeof(value)
        members: dict[str, Any] = {}
        for key, member in value.items():
            members[key], member_size = freeze(member)
            size += member_size + sys.getsizeof(key)
        return FrozenDict(members), size
    if isinstance(value, list):
        size = sys.getsizeof(value)
        items = []
        for item in value:
            frozen, item_size = freeze(item)
            items.append(frozen)
            size += item_size
        return FrozenList(items), size
    return value, sys.getsizeof(value)
