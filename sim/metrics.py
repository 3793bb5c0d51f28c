"""SGLang's Prometheus metrics (names, types, labels and help from `sglang-metrics.json`), fed by the engine.

Values live in plain Python objects and are exposed through a custom collector on a private registry. That keeps
prometheus_client's process-global state out of it: no default registry, no `_created` series (real SGLang runs
the multiprocess registry, which has none), and no mmap files even when `PROMETHEUS_MULTIPROC_DIR` is set.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

SCHEDULER_LABELS = ("model_name", "engine_type", "tp_rank", "pp_rank", "moe_ep_rank")
TOKENIZER_LABELS = ("model_name", "engine_type")

TTFT_BUCKETS = (0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400)
E2E_BUCKETS = (*TTFT_BUCKETS, 600, 1200, 1800, 2400)
ITL_BUCKETS = (0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.06, 0.08, 0.1, 0.2,
               0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0)
QUEUE_BUCKETS = (0.0, 0.1, 0.2, 0.5, 1, 2, 3, 4, 5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 100, 200, 300, 400,
                 500, 600, 700, 800, 900, 1000, 1200, 1400, 1600, 1800, 2000, 2500, 3000)
TOKEN_COUNT_BUCKETS = (100, 300, 500, 700, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000,
                       12000, 15000, 20000, 22000, 25000, 30000, 35000, 40000, 66000, 99000, 132000, 300000,
                       600000, 900000, 1100000)

Kind = Literal["gauge", "counter", "histogram"]


@dataclass(frozen=True)
class MetricSpec:
    name: str  # counters without the `_total` suffix, as prometheus_client wants them
    kind: Kind
    scheduler: bool  # scheduler metrics carry tp/pp/moe_ep ranks; tokenizer metrics do not
    doc: str
    extra: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    @property
    def labels(self) -> tuple[str, ...]:
        return (SCHEDULER_LABELS if self.scheduler else TOKENIZER_LABELS) + self.extra


def _g(name: str, doc: str) -> MetricSpec:
    return MetricSpec(f"sglang:{name}", "gauge", True, doc)


SPECS: tuple[MetricSpec, ...] = (
    _g("num_running_reqs", "The number of running requests."),
    _g("num_queue_reqs", "The number of requests in the waiting queue."),
    _g("num_grammar_queue_reqs", "The number of requests in the grammar waiting queue."),
    _g("num_retracted_reqs", "The number of retracted requests."),
    _g("num_paused_reqs", "The number of paused requests by async weight sync."),
    _g("token_usage", "The token usage."),
    _g("num_used_tokens", "The number of used tokens."),
    _g("kv_used_tokens", "Number of actively used token slots in the KV cache pool."),
    _g("kv_available_tokens", "Number of free token slots in the KV cache pool."),
    _g("max_total_num_tokens", "Maximum total number of tokens in the KV cache pool."),
    _g("cache_hit_rate", "The prefix cache hit rate."),
    _g("gen_throughput", "The generation throughput (token/s)."),
    _g("context_len", "Maximum context length."),
    MetricSpec("sglang:num_retracted_requests", "counter", True, "Total number of retracted requests."),
    MetricSpec("sglang:queue_time_seconds", "histogram", True, "Histogram of queueing time in seconds.",
               buckets=QUEUE_BUCKETS),
    MetricSpec("sglang:prompt_tokens", "counter", False, "Number of prefill tokens processed.", ("is_streaming",)),
    MetricSpec("sglang:generation_tokens", "counter", False, "Number of generation tokens processed.",
               ("is_streaming",)),
    MetricSpec("sglang:num_requests", "counter", False, "Number of requests processed.", ("is_streaming",)),
    MetricSpec("sglang:num_aborted_requests", "counter", False, "Number of requests aborted."),
    MetricSpec("sglang:cached_tokens", "counter", False,
               "Number of cached prompt tokens by source (device/host/storage).", ("cache_source",)),
    MetricSpec("sglang:time_to_first_token_seconds", "histogram", False,
               "Histogram of time to first token in seconds.", ("is_streaming",), TTFT_BUCKETS),
    MetricSpec("sglang:inter_token_latency_seconds", "histogram", False,
               "Histogram of inter-token latency in seconds.", buckets=ITL_BUCKETS),
    MetricSpec("sglang:e2e_request_latency_seconds", "histogram", False,
               "Histogram of End-to-end request latency in seconds", ("is_streaming",), E2E_BUCKETS),
    MetricSpec("sglang:request_time_per_output_token_seconds", "histogram", False,
               "Per-request TPOT in seconds: (finished_time - first_token_time) / (completion_tokens - 1).",
               ("is_streaming",), ITL_BUCKETS),
    MetricSpec("sglang:prompt_tokens_histogram", "histogram", False, "Histogram of prompt token length.",
               buckets=TOKEN_COUNT_BUCKETS),
    MetricSpec("sglang:generation_tokens_histogram", "histogram", False, "Histogram of generation token length.",
               buckets=TOKEN_COUNT_BUCKETS),
)


class _Histogram:
    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        index = bisect_left(self.bounds, value)
        if index < len(self.bounds):
            self.counts[index] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, n in zip(self.bounds, self.counts, strict=True):
            running += n
            out.append((floatToGoString(bound), float(running)))
        return [*out, ("+Inf", float(self.count))]


class SimMetrics:
    """Counters and histograms observed per request; gauges read live from the engine at scrape time."""

    def __init__(self, model_name: str, gauges: Callable[[], Mapping[str, float]],
                 bucket_overrides: Mapping[str, tuple[float, ...] | None] | None = None) -> None:
        self._base = {"model_name": model_name, "engine_type": "unified", "tp_rank": "0", "pp_rank": "0",
                      "moe_ep_rank": "0"}
        self._gauges = gauges
        self._specs = {s.name: s for s in SPECS}
        self._buckets = {n: b for n, b in (bucket_overrides or {}).items() if b}
        self._counters: dict[tuple[str, tuple[str, ...]], float] = {}
        self._histograms: dict[tuple[str, tuple[str, ...]], _Histogram] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        # Real SGLang's scheduler touches this counter at startup; tokenizer series appear with the first request.
        self.inc("sglang:num_retracted_requests", 0)

    def inc(self, name: str, amount: float = 1.0, **extra: str) -> None:
        key = (name, self._extra_values(name, extra))
        self._counters[key] = self._counters.get(key, 0.0) + amount

    def observe(self, name: str, value: float, **extra: str) -> None:
        key = (name, self._extra_values(name, extra))
        if key not in self._histograms:
            self._histograms[key] = _Histogram(self._buckets.get(name) or self._specs[name].buckets)
        self._histograms[key].observe(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def _extra_values(self, name: str, extra: Mapping[str, str]) -> tuple[str, ...]:
        spec = self._specs[name]
        if set(extra) != set(spec.extra):
            raise KeyError(f"{name} takes labels {spec.extra}, got {tuple(extra)}")
        return tuple(extra[k] for k in spec.extra)

    def _label_values(self, spec: MetricSpec, extra: tuple[str, ...]) -> list[str]:
        base = SCHEDULER_LABELS if spec.scheduler else TOKENIZER_LABELS
        return [self._base[k] for k in base] + list(extra)

    def collect(self) -> Iterator[Metric]:
        live = self._gauges()
        for spec in SPECS:
            if spec.kind == "gauge":
                yield self._gauge(spec, float(live.get(spec.name, 0.0)))
            elif spec.kind == "counter":
                yield self._counter(spec)
            else:
                yield self._histogram(spec)

    def _gauge(self, spec: MetricSpec, value: float) -> Metric:
        family = GaugeMetricFamily(spec.name, spec.doc, labels=spec.labels)
        family.add_metric(self._label_values(spec, ()), value)
        return family

    def _counter(self, spec: MetricSpec) -> Metric:
        family = CounterMetricFamily(spec.name, spec.doc, labels=spec.labels)
        for (name, extra), value in sorted(self._counters.items()):
            if name == spec.name:
                family.add_metric(self._label_values(spec, extra), value)
        return family

    def _histogram(self, spec: MetricSpec) -> Metric:
        family = HistogramMetricFamily(spec.name, spec.doc, labels=spec.labels)
        for (name, extra), hist in sorted(self._histograms.items(), key=lambda item: item[0]):
            if name == spec.name:
                family.add_metric(self._label_values(spec, extra), hist.cumulative(), hist.total)
        return family
