"""SGLang metric families -> vLLM-named families: the mapping table and the pure translation.

Each `MetricRule` names the vLLM families it produces, the SGLang family it reads and how series combine. Label
handling is the same for every rule (docs/metrics.md has the why):

- `model_name` is always the served name given to us, whatever SGLang wrote;
- `engine` is SGLang's `dp_rank` (vLLM's `engine` is its data-parallel engine index), "0" without DP;
- scheduler families (those with a `tp_rank` label) are reported by several ranks of one engine, which all see
  the same requests, so only the lowest (pp_rank, tp_rank, moe_ep_rank) replica of each engine is read, and
  only its `priority=""` series, which SGLang writes as the total beside the per-priority breakdown;
- every other label (is_streaming, cache_source, tokenizer custom labels...) partitions requests, so the series
  are added up; histograms are added bucket by bucket, keeping SGLang's bucket bounds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from middleware.metrics.parse import parse

Labels = tuple[tuple[str, str], ...]  # output labels besides model_name, e.g. (("engine", "0"), ("le", "0.1"))
Key = tuple[str, Labels]  # (sample suffix, labels)
Series = dict[Key, float]
Families = Mapping[str, Metric]

_SUFFIXES = {"gauge": ("",), "counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
_SUFFIX_ORDER = {"": 0, "_total": 0, "_bucket": 1, "_count": 2, "_sum": 3}
_RANKS = ("pp_rank", "tp_rank", "moe_ep_rank")


class StopLedger:
    """Keeps the derived `finished_reason="stop"` counter monotone within one engine lifetime.

    stop = num_requests_total - num_aborted_requests_total is not monotone by itself: SGLang counts an abort
    when it is sent (and once per abort-all), the finished request later or never. So stop holds its high-water
    mark until either source counter goes down, which only happens when the engine restarted.
    """

    def __init__(self) -> None:
        self._last: dict[Labels, tuple[float, float, float]] = {}

    def stop(self, engine: Labels, total: float, aborted: float) -> float:
        value = max(total - aborted, 0.0)
        last = self._last.get(engine)
        if last is not None and total >= last[0] and aborted >= last[1]:
            value = max(value, last[2])
        self._last[engine] = (total, aborted, value)
        return value


Derive = Callable[[Families, StopLedger], Series]


@dataclass(frozen=True)
class MetricRule:
    names: tuple[str, ...]  # vLLM family names (counters without `_total`); aliases share one computation
    kind: str  # gauge | counter | histogram, for the source and the output alike
    source: str  # SGLang family name as the parser reports it (counters without `_total`)
    doc: str
    where: tuple[tuple[str, str], ...] = ()  # keep only source series with these label values
    mean: bool = False  # ratio gauges: average series instead of adding them
    derive: Derive | None = None  # series built from several families; `source` is then the main one
    reads: tuple[str, ...] = ()  # the other families `derive` reads


def translate(sglang_text: str, model_name: str) -> list[Metric]:
    """vLLM-named families from one SGLang /metrics page. Pure: stop counts are not held across calls."""
    return translate_families(parse(sglang_text), model_name, StopLedger())


def translate_families(families: Iterable[Metric], model_name: str, ledger: StopLedger) -> list[Metric]:
    by_name: dict[str, Metric] = {}
    for family in families:  # a name can recur when a page interleaves families; read it as one
        seen = by_name.get(family.name)
        if seen is None or seen.type != family.type:
            by_name[family.name] = family
        else:
            merged = Metric(family.name, seen.documentation, seen.type)
            merged.samples = seen.samples + family.samples
            by_name[family.name] = merged
    out: list[Metric] = []
    for rule in RULES:
        series = rule.derive(by_name, ledger) if rule.derive else _rule_series(by_name, rule)
        if not series and rule.kind == "counter" and rule.derive is None:
            series = _zeros(by_name)
        if series:
            out.extend(_emit(rule, series, model_name))
    return out


def _zeros(families: Families) -> Series:
    """A zero for each engine, for a counter whose SGLang source has no series yet.

    SGLang creates a labelled counter series on its first increment (sglang:cached_tokens_total appears with the
    first prefix-cache hit), while vLLM exports its counters from the start and the router reads
    vllm:gpu_prefix_cache_hits_total on every scrape. The engines are those the scheduler gauges name, which a
    running SGLang always writes; a page without them names no engine and gets no zeros.
    """
    engines = {key[1] for key in _series(families, "sglang:num_running_reqs", "gauge")}
    return {("_total", labels): 0.0 for labels in engines}


def _rule_series(families: Families, rule: MetricRule) -> Series:
    return _series(families, rule.source, rule.kind, rule.where, rule.mean)


def _series(families: Families, source: str, kind: str, where: tuple[tuple[str, str], ...] = (),
            mean: bool = False) -> Series:
    family = families.get(source)
    if family is None or family.type != kind:  # a changed type upstream would make the numbers meaningless
        return {}
    samples = family.samples
    if where:
        samples = [s for s in samples if all(s.labels.get(k) == v for k, v in where)]
    if samples and "tp_rank" in samples[0].labels:
        samples = _leader_samples(samples)
    groups: dict[Key, list[float]] = {}
    for sample in samples:
        key = _key(sample, family.name, kind)
        if key is not None:
            groups.setdefault(key, []).append(sample.value)
    merge: Callable[[list[float]], float] = (lambda v: math.fsum(v) / len(v)) if mean else math.fsum
    return {key: merge(values) for key, values in groups.items()}


def _leader_samples(samples: list[Sample]) -> list[Sample]:
    ranked = [(s, _engine(s), _rank(s)) for s in samples if s.labels.get("priority", "") == ""]
    leader: dict[str, tuple[int, ...]] = {}
    for _, engine, rank in ranked:
        if engine not in leader or rank < leader[engine]:
            leader[engine] = rank
    return [s for s, engine, rank in ranked if rank == leader[engine]]


def _engine(sample: Sample) -> str:
    return sample.labels.get("dp_rank", "0")


def _rank(sample: Sample) -> tuple[int, ...]:
    return tuple(int(v) if v.isdigit() else 1 << 30 for v in (sample.labels.get(r, "0") for r in _RANKS))


def _key(sample: Sample, family: str, kind: str) -> Key | None:
    suffix = sample.name[len(family):]
    if suffix not in _SUFFIXES[kind]:
        return None  # e.g. `_created`, which SGLang's multiprocess page does not have anyway
    engine = ("engine", _engine(sample))
    if suffix != "_bucket":
        return suffix, (engine,)
    try:  # normalise so "1" and "1.0" from two series land in one bucket
        le = _bound(sample.labels["le"])
    except (KeyError, ValueError):
        return None
    return suffix, (engine, ("le", le))


@functools.lru_cache(maxsize=1024)  # a page has a few dozen distinct bounds; formatting them was ~15% of translate
def _bound(le: str) -> str:
    return floatToGoString(float(le))


def _emit(rule: MetricRule, series: Series, model_name: str) -> Iterator[Metric]:
    ordered = sorted(series.items(), key=_sample_order)
    for name in rule.names:
        metric = Metric(name, rule.doc, rule.kind)
        for (suffix, labels), value in ordered:
            metric.add_sample(name + suffix, {"model_name": model_name, **dict(labels)}, value)
        yield metric


def _sample_order(item: tuple[Key, float]) -> tuple[str, int, float]:
    (suffix, labels), _ = item
    values = dict(labels)
    return values["engine"], _SUFFIX_ORDER[suffix], float(values.get("le", 0.0))


def _kv_usage_from_token_counts(families: Families, _ledger: StopLedger) -> Series:
    # Older SGLang builds and some pool layouts lack token_usage; the ratio of the two pool gauges is the same.
    if "sglang:token_usage" in families:
        return {}
    used = _series(families, "sglang:num_used_tokens", "gauge")
    size = _series(families, "sglang:max_total_num_tokens", "gauge")
    return {key: used[key] / size[key] for key in used if size.get(key)}


def _request_success(families: Families, ledger: StopLedger) -> Series:
    totals = _series(families, "sglang:num_requests", "counter")
    aborts = _series(families, "sglang:num_aborted_requests", "counter")
    series: Series = {}
    for (suffix, labels), total in totals.items():
        aborted = aborts.get((suffix, labels), 0.0)
        series[(suffix, (*labels, ("finished_reason", "stop")))] = ledger.stop(labels, total, aborted)
        if aborts:
            series[(suffix, (*labels, ("finished_reason", "abort")))] = aborted
    return series


_KV = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
_KV_DOC = "KV-cache usage. 1 means 100 percent usage. (SGLang: token_usage)"


def _h(name: str, source: str, doc: str, where: tuple[tuple[str, str], ...] = ()) -> MetricRule:
    return MetricRule((name,), "histogram", source, f"{doc} (SGLang: {source}; SGLang's buckets)", where)


RULES: Sequence[MetricRule] = (
    MetricRule(("vllm:num_requests_running",), "gauge", "sglang:num_running_reqs",
         "Number of requests in model execution batches."),
    MetricRule(("vllm:num_requests_waiting",), "gauge", "sglang:num_queue_reqs",
         "Number of requests waiting to be processed."),
    MetricRule(_KV, "gauge", "sglang:token_usage", _KV_DOC, mean=True),
    MetricRule(_KV, "gauge", "sglang:num_used_tokens",
         _KV_DOC.replace("token_usage", "num_used_tokens/max_total_num_tokens"),
         derive=_kv_usage_from_token_counts, reads=("sglang:token_usage", "sglang:max_total_num_tokens")),
    MetricRule(("vllm:gpu_prefix_cache_hit_rate",), "gauge", "sglang:cache_hit_rate",
         "Prefix cache hit rate, 0-1, of the last prefill batch (SGLang: cache_hit_rate).", mean=True),
    MetricRule(("vllm:prompt_tokens",), "counter", "sglang:prompt_tokens", "Number of prefill tokens processed."),
    MetricRule(("vllm:generation_tokens",), "counter", "sglang:generation_tokens",
         "Number of generation tokens processed."),
    MetricRule(("vllm:request_success",), "counter", "sglang:num_requests",
         "Count of finished requests by finished_reason: stop = SGLang finished - aborted (SGLang does not split "
         "stop from length), abort = SGLang aborts.", derive=_request_success,
         reads=("sglang:num_aborted_requests",)),
    MetricRule(("vllm:num_preemptions",), "counter", "sglang:num_retracted_requests",
         "Cumulative number of preemptions (SGLang: retracted requests)."),
    MetricRule(("vllm:prefix_cache_queries", "vllm:gpu_prefix_cache_queries"), "counter", "sglang:prompt_tokens",
         "Prefix cache queries, in prompt tokens of finished requests."),
    MetricRule(("vllm:prefix_cache_hits", "vllm:gpu_prefix_cache_hits"), "counter", "sglang:cached_tokens",
         "Prefix cache hits, in cached prompt tokens of finished requests (device, host and storage tiers)."),
    _h("vllm:time_to_first_token_seconds", "sglang:time_to_first_token_seconds",
       "Histogram of time to first token in seconds."),
    _h("vllm:inter_token_latency_seconds", "sglang:inter_token_latency_seconds",
       "Histogram of inter-token latency in seconds."),
    _h("vllm:e2e_request_latency_seconds", "sglang:e2e_request_latency_seconds",
       "Histogram of e2e request latency in seconds."),
    _h("vllm:request_time_per_output_token_seconds", "sglang:request_time_per_output_token_seconds",
       "Histogram of time_per_output_token_seconds per request."),
    _h("vllm:request_queue_time_seconds", "sglang:queue_time_seconds",
       "Histogram of time spent in WAITING phase for request."),
    _h("vllm:request_prefill_time_seconds", "sglang:per_stage_req_latency_seconds",
       "Histogram of time spent in PREFILL phase for request.", (("stage", "prefill_forward"),)),
    _h("vllm:request_prompt_tokens", "sglang:prompt_tokens_histogram", "Number of prefill tokens processed."),
    _h("vllm:request_generation_tokens", "sglang:generation_tokens_histogram",
       "Number of generation tokens processed."),
)
# Every SGLang family the rules read, as a page names it (a counter's TYPE line has `_total`, the parsed name
# has not; both are listed): a scrape parses only these.
SOURCES: frozenset[str] = frozenset(
    name + suffix for rule in RULES for name in (rule.source, *rule.reads) for suffix in ("", "_total")
)
