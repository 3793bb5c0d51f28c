"""Shared vocabulary of the request rewrite: the `RewriteRule` record, the per-deployment `RewriteContext`, and
copy-on-write helpers.

A rule is a pure function `(body, ctx) -> new body | VllmError | None`. `None` means "nothing to do", a new
dict means "send this instead" (the input is never mutated), a `VllmError` means "vLLM itself would answer
this request with that 4xx". Rules live in `middleware/rewrite/route_rules.py`'s `ROUTE_RULES`, one ordered
tuple per route.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import orjson

from middleware.config import MiddlewareConfig
from middleware.errors import VllmError

Body = dict[str, Any]
RuleResult = Body | VllmError | None


@dataclass(frozen=True)
class RewriteContext:
    """What rules need to know about the deployment, derived once from `MiddlewareConfig`.

    `lora_names` are adapters loaded at runtime through `/v1/load_lora_adapter`; the app passes the current set.
    """

    config: MiddlewareConfig
    lora_names: frozenset[str] = frozenset()
    served: str = field(init=False)
    aliases: frozenset[str] = field(init=False)
    adapters: frozenset[str] = field(init=False)
    served_literal: bytes = field(init=False)
    skip_model_check: bool = field(init=False)

    def __post_init__(self) -> None:
        cfg = self.config
        names = tuple(cfg.served_model_names) or ("default",)
        setter = object.__setattr__  # frozen dataclass: derived fields are set once, here
        setter(self, "served", names[0])
        setter(self, "aliases", frozenset(names[1:]) - {names[0]})
        setter(self, "adapters", frozenset(m.name for m in cfg.lora_modules) | self.lora_names)
        setter(self, "served_literal", orjson.dumps(names[0]))
        # vLLM's VLLM_SKIP_MODEL_NAME_VALIDATION; MiddlewareConfig has no field for it yet, so it rides in `extra`.
        setter(self, "skip_model_check", cfg.skip_model_name_validation)


# The app uses one config for life, with a handful of runtime-adapter sets; MiddlewareConfig holds a dict,
# so it is unhashable: entries are keyed by identity and checked with `is`.
_contexts: dict[tuple[int, frozenset[str]], RewriteContext] = {}


def context_for(config: MiddlewareConfig | RewriteContext, lora_names: Collection[str] = ()) -> RewriteContext:
    """Build (or reuse) the context for `config` plus runtime `lora_names`."""
    if isinstance(config, RewriteContext):
        return config if not lora_names else RewriteContext(config.config, config.lora_names | frozenset(lora_names))
    names = frozenset(lora_names)
    key = (id(config), names)
    ctx = _contexts.get(key)
    if ctx is None or ctx.config is not config:
        if len(_contexts) >= 16:
            _contexts.clear()
        ctx = _contexts[key] = RewriteContext(config, names)
    return ctx


@dataclass(frozen=True)
class RewriteRule:
    """One row of a route's rewrite table; `vllm`/`sglang` are the documentation columns.

    `triggers` are byte strings at least one of which occurs in any raw body this rule could change, so a
    body containing none of them is forwarded without parsing. `prefilter`, when set, replaces substring
    search with a finer byte-level test (it must still never answer False for a body the rule would change).
    """

    name: str
    apply: Callable[[Body, RewriteContext], RuleResult]
    vllm: str
    sglang: str
    triggers: tuple[bytes, ...] = ()
    prefilter: Callable[[bytes, RewriteContext | None], bool] | None = None

    def may_change(self, raw: bytes, ctx: RewriteContext | None) -> bool:
        """False proves `apply` returns None for the body `raw` encodes (unless a key is `\\u`-escaped)."""
        if self.prefilter is not None:
            return self.prefilter(raw, ctx)
        return any(t in raw for t in self.triggers)


def regex_prefilter(pattern: bytes) -> Callable[[bytes, RewriteContext | None], bool]:
    """A prefilter that fires when `pattern` matches anywhere in the raw body."""
    compiled = re.compile(pattern)

    def prefilter(raw: bytes, ctx: RewriteContext | None) -> bool:
        return compiled.search(raw) is not None

    return prefilter


def without(body: Body, keys: Iterable[str]) -> Body:
    """A copy of `body` without `keys`."""
    drop = frozenset(keys)
    return {k: v for k, v in body.items() if k not in drop}


def is_number(value: Any) -> TypeGuard[int | float]:
    """JSON number (bool is an int subclass in Python but a distinct JSON type)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def bad_request(message: str, param: str | None = None) -> VllmError:
    """vLLM's `VLLMValidationError` rendering: 400 BadRequestError; the message carries `(parameter=...)`."""
    return VllmError(400, message, "BadRequestError", param)


def validation_message(message: str, parameter: str | None = None, value: Any = None) -> str:
    """`str(VLLMValidationError)`: the message plus `(parameter=p, value=v)` when those are known."""
    extras = [f"{k}={v}" for k, v in (("parameter", parameter), ("value", value)) if v is not None]
    return f"{message} ({', '.join(extras)})" if extras else message


def map_items(items: list[Any], fix: Callable[[Any], Any]) -> list[Any]:
    """`fix` applied to every item, copy-on-write: `items` itself when `fix` returned every item unchanged."""
    out: list[Any] | None = None
    for i, item in enumerate(items):
        fixed = fix(item)
        if fixed is not item:
            if out is None:
                out = list(items)
            out[i] = fixed
    return items if out is None else out


def map_messages(body: Body, fix: Callable[[Any], Any]) -> Body | None:
    """Apply `fix` to every message; a new body if any message changed (`fix` returns the same object if not)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    out = map_items(messages, fix)
    return None if out is messages else {**body, "messages": out}
