"""What every handler shares: configuration, the engine connection, the observer, the /metrics page and the
state the middleware itself owns (in-flight count for /load, sleep tags for /is_sleeping: shared_state.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from middleware.asgi import Call
from middleware.config import MiddlewareConfig
from middleware.engine.client import Engine
from middleware.errors import VllmError
from middleware.observer import Observer
from middleware.shared_state import SharedState

Handler = Callable[[Call], Awaitable[None]]
# Turns a successful engine body into vLLM's shape (tokenize, detokenize, rerank).
SuccessTranslator = Callable[[bytes, Call], bytes]


class MetricsPage(Protocol):
    """What serves GET /metrics: `middleware.metrics.bridge.MetricsBridge`, fed the engine's page by `fetch`."""

    content_type: str

    async def render(self, fetch: Callable[[], Awaitable[str]]) -> bytes: ...


class RewriteResult(Protocol):
    """Read-only, as the rewrite's frozen result is."""

    @property
    def body(self) -> dict[str, Any]: ...
    @property
    def changed(self) -> bool: ...
    @property
    def rules(self) -> tuple[str, ...]: ...
    @property
    def error(self) -> VllmError | None: ...


class Rewriter(Protocol):
    """What the app calls to rewrite a body: `middleware.rewrite.route_rules` (tests pass fakes); `route` is the
    engine path."""

    def has_rules(self, route: str) -> bool: ...

    def needs_parse(self, route: str, raw: bytes, config: MiddlewareConfig) -> bool: ...

    def rewrite(
        self, route: str, body: dict[str, Any], config: MiddlewareConfig, lora_names: frozenset[str]
    ) -> RewriteResult: ...

    def dump(self, body: dict[str, Any]) -> bytes: ...


@dataclass
class AppState:
    # Shared by every worker and kept across middleware restarts: memory released by /sleep and not yet
    # resumed by /wake_up (non-empty means "sleeping"), and the in-flight count /load reports.
    shared: SharedState = field(default_factory=lambda: SharedState(None))
    # LoRA adapters the engine has loaded (refreshed from its /v1/models and on load/unload), so the rewrite
    # can turn vLLM's `model: "<adapter>"` into SGLang's `<served>:<adapter>`.
    lora_names: frozenset[str] = frozenset()
    # (max_model_len, tokenizer's longest token in chars) for vLLM's prompt-length bound, once known
    # (middleware/prompt_bound.py, resolved by engine_state.resolve_prompt_bound).
    prompt_bound: tuple[int, int] | None = None


@dataclass
class AppContext:
    config: MiddlewareConfig
    engine: Engine
    observer: Observer
    rewriter: Rewriter
    metrics: MetricsPage
    state: AppState = field(default_factory=AppState)
