"""The middleware's /metrics: SGLang's numbers under vLLM's names, for the vLLM production stack.

The production-stack router, KEDA, the operator and the Grafana dashboards only know `vllm:*` names. A page is
three blocks:

1. vLLM-named families translated from SGLang's (`metrics.translate`, mapping in docs/metrics.md);
2. SGLang's own `sglang:*` families, SGLang's text as it came, so dashboards built on them keep working;
3. the middleware's own series (`vllm_shim:*`).

Blocks 1 and 3 are rendered by prometheus_client's `generate_latest` on private registries (never the default
one, and never multiprocess mode: the chart sets PROMETHEUS_MULTIPROC_DIR=/tmp for vLLM, and SGLang reads that
directory too, so counters of ours kept there would leak into SGLang's page). Block 2 is not re-rendered:
SGLang's own prometheus_client wrote it, and rendering its ~1,000 samples again cost ~25 ms of CPU per scrape.
`parse.split_page` checks its layout first; a page it refuses is read in full and re-rendered.

Blocks 1 and 2 come from one upstream scrape, shared by every scrape within `cache_seconds`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator

from prometheus_client import CollectorRegistry, exposition, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from middleware.metrics.parse import Unusual, parse, split_page
from middleware.metrics.shared_counts import FLUSH_SECONDS, CountStore
from middleware.metrics.translate import SOURCES, StopLedger, translate, translate_families

__all__ = ["MetricsBridge", "translate"]

logger = logging.getLogger(__name__)

# generate_latest writes the 0.0.4 text format; newer clients made CONTENT_TYPE_LATEST mean 1.0.0.
CONTENT_TYPE = getattr(exposition, "CONTENT_TYPE_PLAIN_0_0_4", exposition.CONTENT_TYPE_LATEST)
# name, help, label names; counters are exposed with `_total`.
OWN_COUNTERS = {
    "request": ("vllm_shim:requests", "HTTP requests answered by the middleware, by route and status.",
                ("route", "status")),
    "rewrite": ("vllm_shim:rewrites", "Request/response rewrites applied, by rule.", ("rule",)),
    "upstream_error": ("vllm_shim:upstream_errors",
                       "Failed calls to SGLang, by kind (metrics_fetch and metrics_parse are /metrics scrapes).",
                       ("kind",)),
    "disconnect": ("vllm_shim:client_disconnects", "Clients that went away before the response ended, by route.",
                   ("route",)),
    "pd_room": ("vllm_shim:pd_rooms",
                "Prefill/decode bootstrap rooms: on a prefill pod started, completed, failed, timed_out; on a decode "
                "pod joined.", ("role", "event")),
    "rule_failure": ("vllm_shim:rewrite_failures",
                     "Requests refused because a rewrite rule raised (fail closed), by rule and answered status.",
                     ("rule", "status")),
}
ENGINE_UP = ("vllm_shim:engine_metrics_up",
             "1 if SGLang's /metrics answered the latest scrape, so the vllm:* series on this page are current; "
             "0 if it failed (the last good vllm:* series stay for a bounded time, then are left out).")
# Only SGLang's own families are passed through. Its page has no vllm:* or vllm_shim:* family today; one there
# would collide with ours (a family twice on one page), so any prefix but this one is dropped.
SGLANG_PREFIX = "sglang:"


class _OwnCounters(Collector):
    """Block 3: counters in plain dicts (prometheus_client's Counter would use mmap files under
    PROMETHEUS_MULTIPROC_DIR), then the `engine_metrics_up` gauge, which the bridge sets before each render."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the app may count from worker threads too
        self._counts: dict[str, dict[tuple[str, ...], int]] = {key: {} for key in OWN_COUNTERS}
        self.engine_up = False
        self.store: CountStore | None = None  # set: the other workers' counts are added (shared_counts.py)
        self._flush_due = False

    def inc(self, key: str, *labels: str) -> None:
        with self._lock:
            counts = self._counts[key]
            counts[labels] = counts.get(labels, 0) + 1
        if self.store is not None and not self._flush_due:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # counted from a worker thread: the next count on the loop flushes it
            return
        self._flush_due = True
        loop.call_later(FLUSH_SECONDS, self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        if self.store is not None:
            with self._lock:
                snapshot = {key: dict(series) for key, series in self._counts.items()}
            self.store.publish(snapshot)

    def collect(self) -> Iterator[Metric]:
        others = self.store.others() if self.store is not None else {}
        for key, (name, doc, label_names) in OWN_COUNTERS.items():
            family = CounterMetricFamily(name, doc, labels=label_names)
            with self._lock:
                merged = dict(self._counts[key])
            for labels, value in others.get(key, {}).items():
                merged[labels] = merged.get(labels, 0) + value
            for labels, value in sorted(merged.items()):
                family.add_metric(labels, value)
            yield family
        yield GaugeMetricFamily(*ENGINE_UP, value=1 if self.engine_up else 0)


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


def render_families(families: list[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


def sglang_families(families: list[Metric]) -> list[Metric]:
    """SGLang's families for re-rendering, when its text cannot be passed through: one family per name and no
    repeated sample (Prometheus rejects both)."""
    seen: set[tuple[str, frozenset[tuple[str, str]]]] = set()
    by_name: dict[str, Metric] = {}
    for family in families:
        if not family.name.startswith(SGLANG_PREFIX):
            continue
        kept = by_name.get(family.name)
        if kept is None:
            kept = by_name[family.name] = Metric(family.name, family.documentation, family.type)
        elif kept.type != family.type:
            continue
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            if key not in seen:
                seen.add(key)
                kept.samples.append(sample)
    return list(by_name.values())


class MetricsBridge:
    """Serves /metrics (`render`) and counts what the app reports (the `Observer` methods).

    `cache_seconds`: how long one scrape of SGLang serves. `stale_seconds`: how long after the last good scrape
    its vLLM series may stand in for failed ones. `clock`: monotonic seconds, injectable for tests.
    """

    content_type: str = CONTENT_TYPE

    def __init__(self, model_name: str, *, cache_seconds: float = 1.0, stale_seconds: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._model_name = model_name
        self._cache_seconds = cache_seconds
        # KEDA scales on vllm:num_requests_waiting: a queue length frozen by an outage must not drive it for long.
        self._stale_seconds = stale_seconds
        self._clock = clock
        self._own = _OwnCounters()
        self._own_registry = CollectorRegistry(auto_describe=False)
        self._own_registry.register(self._own)
        self._ledger = StopLedger()
        self._vllm = b""  # from the last good scrape: served while SGLang's /metrics fails, up to stale_seconds
        self._sglang = b""  # from the last scrape only: stale SGLang series would pass for live ones
        self._good_at: float | None = None  # when the last good scrape ended
        self._scraped_at: float | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._healthy = True
        self._expired = False

    async def render(self, fetch: Callable[[], Awaitable[str]]) -> bytes:
        await self._refresh(fetch)
        engine = self._engine_block()
        self._own.engine_up = self._healthy and self._good_at is not None
        return engine + generate_latest(self._own_registry)

    def _engine_block(self) -> bytes:
        if self._healthy:
            return self._vllm + self._sglang
        if self._good_at is not None and self._clock() - self._good_at < self._stale_seconds:
            return self._vllm
        if not self._expired and self._good_at is not None:
            logger.warning("No good SGLang /metrics scrape for %.0f s; leaving its last vLLM series out",
                           self._stale_seconds)
        self._expired = True
        return b""

    async def _refresh(self, fetch: Callable[[], Awaitable[str]]) -> None:
        if self._inflight is None:
            fresh = self._scraped_at is not None and self._clock() - self._scraped_at < self._cache_seconds
            if fresh:
                return
            self._inflight = asyncio.ensure_future(self._scrape(fetch))
        # shield: a scraper that hangs up must not cancel the scrape the others are waiting for.
        await asyncio.shield(self._inflight)

    async def _scrape(self, fetch: Callable[[], Awaitable[str]]) -> None:
        try:
            try:
                text = await fetch()
            except Exception as exc:
                self._failed("metrics_fetch", exc)
                return
            try:
                # ~10 ms of CPU (~50 ms for a page that must be re-rendered): off the event loop, so streams flow.
                self._vllm, self._sglang = await asyncio.to_thread(self._render_upstream, text)
            except Exception as exc:
                self._failed("metrics_parse", exc)
                return
            if not self._healthy:
                logger.info("SGLang /metrics scrape recovered")
            self._healthy, self._expired, self._good_at = True, False, self._clock()
        finally:
            self._scraped_at = self._clock()
            self._inflight = None

    def _render_upstream(self, text: str) -> tuple[bytes, bytes]:
        try:
            page = split_page(text, SGLANG_PREFIX, SOURCES)
        except Unusual:
            # Not laid out the way prometheus_client writes a page (hand-written, interleaved or repeated
            # families or samples): read all of it and re-render SGLang's block, one family per name.
            families = parse(text)
            sglang = render_families(sglang_families(families))
        else:
            families, sglang = page.families, page.passthrough.encode()
        return render_families(translate_families(families, self._model_name, self._ledger)), sglang

    def _failed(self, kind: str, exc: Exception) -> None:
        self.count_upstream_error(kind)
        self._sglang = b""
        if self._healthy:  # log the transition, not every scrape of a long outage
            logger.warning("SGLang /metrics scrape failed (%s): %r; serving the last good vLLM series, if any, "
                           "for up to %.0f s", kind, exc, self._stale_seconds)
        self._healthy = False

    def share_counts(self, directory: str) -> None:
        """Publish this worker's vllm_shim:* counts there and add the other workers' to every page."""
        self._own.store = CountStore(directory)

    def count_request(self, route: str, status: int) -> None:
        self._own.inc("request", route, str(status))

    def count_rewrite(self, rule: str) -> None:
        self._own.inc("rewrite", rule)

    def count_upstream_error(self, kind: str) -> None:
        self._own.inc("upstream_error", kind)

    def count_disconnect(self, route: str) -> None:
        self._own.inc("disconnect", route)

    def count_pd_room(self, role: str, event: str) -> None:
        self._own.inc("pd_room", role, event)
    def count_rule_failure(self, rule: str, status: int) -> None:
        self._own.inc("rule_failure", rule, str(status))
