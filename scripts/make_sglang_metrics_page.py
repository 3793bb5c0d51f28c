#!/usr/bin/env python3
"""Build tests/data/sglang_metrics_page.txt: the /metrics page of a busy SGLang 0.5.23 engine.

Every family in the reference `sglang-metrics.json` appears with SGLang's own name, type, label names and help.
The numbers describe one unified engine (TP=1, no DP) that has finished 1,234 requests. They are computed, not
sampled, so the page is byte-for-byte reproducible: histograms are filled from a log-normal CDF (buckets
cumulative, `+Inf` == `_count`), token counters equal the matching histogram sums, and counters are all > 0.
Feature gauges that a plain Llama deployment does not use (SWA, Mamba, PD queues, LoRA, speculative decoding)
are 0, as SGLang reports them. prometheus_client renders the page from plain families, which gives the same text
as SGLang's MultiProcessCollector: counters as `_total`, no `_created` samples.

    python scripts/make_sglang_metrics_page.py            # rewrite the page
    python scripts/make_sglang_metrics_page.py --check    # exit 1 if the committed page is stale
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from statistics import NormalDist
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "sglang_metrics_page.txt"
# SGLang's metric families, copied into the checkout from the researched reference (tests/data/README.md).
REFERENCE = ROOT / "tests" / "data" / "sglang-metrics.json"

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
BASE = {"model_name": MODEL, "engine_type": "unified", "tp_rank": "0", "pp_rank": "0", "moe_ep_rank": "0"}
REQUESTS = {"true": 812, "false": 422}  # finished requests by is_streaming
ABORTED = 17
MAX_TOKENS, USED_TOKENS, EVICTABLE_TOKENS = 481_920, 149_395, 201_344

# Default buckets copied from SGLang's collectors, where the family is one the shim maps or a fixed preset.
TTFT_B = (0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400)
E2E_B = (*TTFT_B, 600, 1200, 1800, 2400)
ITL_B = (0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040, 0.060, 0.080, 0.100,
         0.200, 0.400, 0.600, 0.800, 1.0, 2.0, 4.0, 6.0, 8.0)
QUEUE_B = (0.0, 0.001, 0.005, 0.010, 0.050, 0.100, 0.200, 0.500, 1, 2, 3, 4, 5, 10, 15, 20, 30, 40, 50, 60, 70,
           80, 90, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1200, 1400, 1600, 1800, 2000, 2500, 3000)
STAGE_B = tuple(0.001 * 1.62**i for i in range(30))  # exponential_buckets(0.001, 1.62, 30): float noise is real
TOKENS_B = (100, 300, 500, 700, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 12500, 15000,
            17500, 20000, 22500, 25000, 27500, 30000, 35000, 40000, 60000, 80000, 100000, 200000, 300000, 400000,
            600000, 800000, 1000000, 1100000)
SECONDS_B = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60)
MS_B = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
COUNT_B = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

# family -> (buckets, median, sigma, observations); None observations = one per finished request.
HISTOGRAMS: dict[str, tuple[Sequence[float], float, float, int | None]] = {
    "sglang:time_to_first_token_seconds": (TTFT_B, 0.35, 0.9, None),
    "sglang:e2e_request_latency_seconds": (E2E_B, 6.5, 0.8, None),
    "sglang:request_time_per_output_token_seconds": (ITL_B, 0.024, 0.35, None),
    "sglang:inter_token_latency_seconds": (ITL_B, 0.022, 0.4, 291_611),
    "sglang:queue_time_seconds": (QUEUE_B, 0.012, 1.6, 1_251),
    "sglang:per_stage_req_latency_seconds": (STAGE_B, 0.09, 0.9, 1_251),
    "sglang:prompt_tokens_histogram": (TOKENS_B, 850, 0.8, None),
    "sglang:uncached_prompt_tokens_histogram": (TOKENS_B, 413, 0.9, None),
    "sglang:generation_tokens_histogram": (TOKENS_B, 210, 0.7, None),
    "sglang:kv_transfer_latency_ms": (MS_B, 40, 0.8, 300),
    "sglang:kv_transfer_bootstrap_ms": (MS_B[:-1], 12, 0.7, 300),
    "sglang:kv_transfer_alloc_ms": (MS_B[:-1], 3, 0.9, 300),
    "sglang:kv_transfer_speed_gb_s": ((0.1, 0.5, 1, 5, 10, 25, 50, 100, 200, 400), 18, 0.6, 300),
    "sglang:kv_transfer_total_mb": ((1, 5, 10, 50, 100, 500, 1000, 5000, 10000), 120, 0.9, 300),
    "sglang:get_loads_duration_seconds": ((0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0), 0.0008, 0.6,
                                          90),
    "sglang:grammar_schema_count": ((0, 1, 2, 5, 10, 20, 30, 40, 60, 80, 100, 200, 500, 1000), 6, 0.8, 57),
    "sglang:grammar_ebnf_size": ((0, 50, 100, 200, 300, 500, 1000, 2000, 5000, 10000, 100000), 420, 0.9, 57),
    "sglang:dp_attention_token_imbalance_ratio": ((1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0), 1.2, 0.2, 4_000),
    "sglang:prefetch_pgs": ((1, 5, 10, 50, 100), 8, 0.9, 120),
    "sglang:backup_pgs": ((1, 5, 10, 50, 100), 12, 0.9, 140),
    "sglang:prefetch_bandwidth": ((0.1, 0.5, 1, 5, 10, 50, 100), 6, 0.7, 120),
    "sglang:backup_bandwidth": ((0.1, 0.5, 1, 5, 10, 50, 100), 4, 0.7, 140),
}

# Gauges not listed are 0: the feature is off on this engine (SWA, Mamba, PD queues, LoRA, spec decoding...).
GAUGES: dict[str, float] = {
    "sglang:num_running_reqs": 23, "sglang:num_queue_reqs": 4, "sglang:cache_hit_rate": 0.4427,
    "sglang:token_usage": USED_TOKENS / MAX_TOKENS, "sglang:full_token_usage": USED_TOKENS / MAX_TOKENS,
    "sglang:num_used_tokens": USED_TOKENS, "sglang:kv_used_tokens": USED_TOKENS,
    "sglang:max_total_num_tokens": MAX_TOKENS, "sglang:kv_evictable_tokens": EVICTABLE_TOKENS,
    "sglang:kv_available_tokens": MAX_TOKENS - USED_TOKENS - EVICTABLE_TOKENS, "sglang:num_pages": MAX_TOKENS,
    "sglang:page_size": 1, "sglang:context_len": 131_072, "sglang:gen_throughput": 1_187.4,
    "sglang:utilization": 0.62, "sglang:fwd_occupancy": 71.5, "sglang:new_token_ratio": 0.4123,
    "sglang:decode_sum_seq_lens": 31_852, "sglang:is_cuda_graph": 1, "sglang:kv_cache_memory_usage_gb": 58.83,
    "sglang:weight_memory_usage_gb": 14.99, "sglang:graph_memory_usage_gb": 0.41,
    "sglang:startup_available_gpu_memory_gb": 78.6, "sglang:startup_time_seconds": 41.7,
    "sglang:startup_cuda_graph_time_seconds": 9.8, "sglang:max_running_requests_under_SLO": 64,
    "sglang:num_unique_running_routing_keys": 5, "sglang:routing_keys_active": 7,
    "sglang:routing_key_all_req_count": 3, "sglang:routing_key_running_req_count": 2,
    "sglang:http_requests_active": 27, "sglang:weight_load_duration_seconds": 11.2,
}

# Finished-request counters split by is_streaming, consistent with the histograms above.
PER_REQUEST_MEAN = {"sglang:prompt_tokens": "sglang:prompt_tokens_histogram",
                    "sglang:generation_tokens": "sglang:generation_tokens_histogram"}
COUNTERS: dict[str, float] = {
    "sglang:num_aborted_requests": ABORTED, "sglang:num_retracted_requests": 6,
    "sglang:num_retracted_input_tokens": 9_214, "sglang:num_retracted_output_tokens": 1_377,
    "sglang:num_so_requests": 57, "sglang:num_grammar": 57, "sglang:num_grammar_cache_hit": 41,
    "sglang:spec_verify_calls": 1, "sglang:evicted_tokens": 1_824_330,
    "sglang:scheduler_idle_seconds": 412.75, "sglang:scheduler_process_cpu_seconds": 1_830.2,
    "sglang:estimated_flops_per_gpu": 4.62e16, "sglang:estimated_read_bytes_per_gpu": 9.1e14,
    "sglang:estimated_write_bytes_per_gpu": 2.3e12,
}
CACHED_SHARE = {"device": 0.41, "host": 0.06}  # of prompt tokens, by cache_source

LABEL_VALUES: dict[str, tuple[str, ...]] = {
    "is_streaming": ("true", "false"), "cache_source": ("device", "host"),
    "stage": ("prefill_forward", "chunked_prefill", "request_process"),
    "mode": ("decode_cuda_graph", "prefill_none"), "outcome": ("drained", "timeout"),
    "kind": ("scheduled", "imbalance"), "rank_state": ("busy", "idle"), "category": ("decode", "extend"),
    "num_prefill_ranks": ("1",), "modality": ("image",), "status": ("success",), "backend": ("mooncake",),
    "forward_mode": ("decode",), "phase": ("load_weight", "kv_cache_allocation"), "pool": ("kv",),
    "reason": ("host_capacity",), "source": ("disk",), "endpoint": ("/v1/chat/completions", "/health"),
    "method": ("POST",), "status_code": ("200",), "forward_overlap": ("none", "full"),
    "input_estimation": ("prefillable",), "output_allow": ("True",), "output_reason": ("no_wait",),
    "actual_execution": ("True",),
}
FAMILY_LABEL_VALUES: dict[str, dict[str, tuple[str, ...]]] = {
    "sglang:realtime_tokens": {"mode": ("prefill_compute", "prefill_cache", "decode")},
    "sglang:dp_cooperation_realtime_tokens": {"mode": ("prefill_compute", "prefill_cache", "decode")},
    "sglang:prefill_effective_tokens": {"mode": ("input", "device_hit", "host_hit", "storage_hit")},
    "sglang:startup_cuda_graph_time_seconds": {"phase": ("capture", "warmup")},
    "sglang:graph_memory_usage_gb": {"phase": ("decode",)},
    "sglang:http_requests": {"endpoint": ("/v1/chat/completions", "/v1/completions", "/health")},
}
# (gt, le) label pairs of SGLang's bucketed routing-key gauges: a range per series, not a product.
ROUTING_RANGES = (("0", "1"), ("1", "4"), ("4", "+Inf"))


def load_spec(path: Path | None) -> list[dict[str, Any]]:
    metrics: list[dict[str, Any]] = json.loads((path or REFERENCE).read_text())["metrics"]
    return metrics


def label_sets(name: str, labels: Sequence[str]) -> list[dict[str, str]]:
    extra = [label for label in labels if label not in BASE]
    if "gt" in extra:
        return [{**_base(labels), "gt": gt, "le": le} for gt, le in ROUTING_RANGES]
    choices = FAMILY_LABEL_VALUES.get(name, {})
    product = itertools.product(*(choices.get(label, LABEL_VALUES[label]) for label in extra))
    return [{**_base(labels), **dict(zip(extra, values, strict=True))} for values in product]


def _base(labels: Sequence[str]) -> dict[str, str]:
    return {label: value for label, value in BASE.items() if label in labels}


def observations(name: str, labels: dict[str, str]) -> int:
    count = HISTOGRAMS.get(name, (None, None, None, 240))[3]
    if count is None:
        return REQUESTS[labels["is_streaming"]] if "is_streaming" in labels else sum(REQUESTS.values())
    return count


def lognormal(name: str, count: int) -> tuple[list[tuple[float, float]], float]:
    """Cumulative (bound, count) pairs and the sum of `count` log-normal observations, computed from the CDF."""
    buckets, median, sigma, _ = HISTOGRAMS.get(name) or (SECONDS_B if "seconds" in name else COUNT_B, 0, 0.9, 0)
    median = median or buckets[len(buckets) // 3]
    cdf = NormalDist(math.log(median), sigma).cdf
    cumulative = [(b, float(round(count * cdf(math.log(b))) if b > 0 else 0)) for b in buckets]
    total = count * median * math.exp(sigma * sigma / 2)
    return cumulative, float(round(total)) if name.endswith("tokens_histogram") else round(total, 4)


def token_total(counter: str, is_streaming: str) -> float:
    return lognormal(PER_REQUEST_MEAN[counter], REQUESTS[is_streaming])[1]


def histogram_sum(name: str, count: int, computed: float) -> float:
    # The token counters are per is_streaming and the histograms are not: make the histogram sum their total.
    counter = next((c for c, h in PER_REQUEST_MEAN.items() if h == name), None)
    return sum(token_total(counter, s) for s in REQUESTS) if counter else computed


def counter_value(name: str, labels: dict[str, str], index: int) -> float:
    if name in PER_REQUEST_MEAN:
        return token_total(name, labels["is_streaming"])
    if name == "sglang:num_requests":
        return float(REQUESTS[labels["is_streaming"]])
    if name == "sglang:cached_tokens":
        prompt = sum(token_total("sglang:prompt_tokens", s) for s in REQUESTS)
        return float(round(prompt * CACHED_SHARE[labels["cache_source"]]))
    if name in COUNTERS:
        return float(COUNTERS[name])
    scale = 2_451.5 if name.endswith("_seconds") else 3.7e10 if name.endswith("_bytes") else 1_480
    return float(round(scale / (index + 1), 1))


def add_samples(metric: Metric, kind: str, labels: dict[str, str], index: int) -> None:
    name = metric.name
    if kind == "gauge":
        metric.add_sample(name, labels, float(GAUGES.get(name, 0.0)) / (index + 1))
    elif kind == "counter":
        metric.add_sample(name + "_total", labels, counter_value(name, labels, index))
    elif kind == "summary":
        metric.add_sample(name + "_count", labels, 5_000.0)
        metric.add_sample(name + "_sum", labels, 4_391.25)
    else:
        count = observations(name, labels)
        cumulative, total = lognormal(name, count)
        total = histogram_sum(name, count, total)
        for bound, value in cumulative:
            metric.add_sample(name + "_bucket", {**labels, "le": _le(bound)}, value)
        metric.add_sample(name + "_bucket", {**labels, "le": "+Inf"}, float(count))
        metric.add_sample(name + "_count", labels, float(count))
        metric.add_sample(name + "_sum", labels, total)


def _le(bound: float) -> str:
    # prometheus_client's own bucket formatting, so `le` values read exactly like SGLang's.
    return str(floatToGoString(float(bound)))


class _Page(Collector):
    def __init__(self, spec: list[dict[str, Any]]) -> None:
        self._spec = spec

    def collect(self) -> Iterator[Metric]:
        for entry in sorted(self._spec, key=lambda e: str(e["name"])):
            name, kind, labels = entry["name"], entry["type"], entry["labels"]
            metric = Metric(name, entry["help"], kind)
            for index, label_set in enumerate(label_sets(name, labels)):
                add_samples(metric, kind, label_set, index)
            yield metric


def build_page(json_path: Path | None = None) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Page(load_spec(json_path)))
    return generate_latest(registry).decode()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help=f"sglang-metrics.json (default: {REFERENCE.relative_to(ROOT)})")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="fail if --out differs from a fresh build")
    args = parser.parse_args(argv)
    page = build_page(args.json)
    if args.check:
        same = args.out.is_file() and args.out.read_text() == page
        print(f"{args.out}: {'up to date' if same else 'STALE, rerun without --check'}")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page)
    print(f"wrote {args.out} ({len(page.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
