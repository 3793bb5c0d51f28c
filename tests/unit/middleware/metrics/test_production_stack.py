"""What the production stack reads from /metrics (production-stack.md §3.3, §4, §5), against the full page."""

from __future__ import annotations

import asyncio
import math
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from middleware.metrics.bridge import MetricsBridge

ROOT = Path(__file__).resolve().parents[4]
PAGE = (ROOT / "tests" / "data" / "sglang_metrics_page.txt").read_text()
DOCS = (ROOT / "docs" / "metrics.md").read_text()
ROUTER_NAMES = ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:gpu_cache_usage_perc",
                "vllm:gpu_prefix_cache_hits_total", "vllm:gpu_prefix_cache_queries_total",
                "vllm:gpu_prefix_cache_hit_rate")
AUTOSCALER_NAMES = ("vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:generation_tokens_total",
                    "vllm:prompt_tokens_total")
# production-stack.md §5, "Union of engine-side names worth emitting".
DASHBOARD_NAMES = ("num_requests_running", "num_requests_waiting", "kv_cache_usage_perc", "gpu_cache_usage_perc",
                   "gpu_prefix_cache_hits_total", "gpu_prefix_cache_queries_total", "prompt_tokens_total",
                   "generation_tokens_total", "request_success_total")
DASHBOARD_HISTOGRAMS = ("e2e_request_latency_seconds", "time_to_first_token_seconds",
                        "request_time_per_output_token_seconds", "request_prompt_tokens", "request_generation_tokens",
                        "request_queue_time_seconds", "request_prefill_time_seconds", "request_decode_time_seconds",
                        "request_max_num_generation_tokens")


@pytest.fixture(scope="module")
def page_text() -> str:
    async def fetch() -> str:
        return PAGE

    return asyncio.run(MetricsBridge("served-model").render(fetch)).decode()


@pytest.fixture(scope="module")
def sample_names(page_text: str) -> set[str]:
    return {s.name for fam in text_string_to_metric_families(page_text) for s in fam.samples}


def engine(name: str) -> float:
    """The engine's own number from the recorded SGLang page."""
    return math.fsum(s.value for fam in text_string_to_metric_families(PAGE) for s in fam.samples if s.name == name)


def read_like_the_router(text: str) -> dict[str, float]:
    # src/vllm_router/stats/engine_stats.py: exact sample names, labels ignored, the last sample wins.
    stats: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in ROUTER_NAMES:
                stats[sample.name] = float(sample.value)
    return stats


def test_router_reads_the_engines_numbers(page_text: str) -> None:
    assert read_like_the_router(page_text) == {
        "vllm:num_requests_running": engine("sglang:num_running_reqs"),
        "vllm:num_requests_waiting": engine("sglang:num_queue_reqs"),
        "vllm:gpu_cache_usage_perc": engine("sglang:token_usage"),
        "vllm:gpu_prefix_cache_hits_total": engine("sglang:cached_tokens_total"),
        "vllm:gpu_prefix_cache_queries_total": engine("sglang:prompt_tokens_total"),
        "vllm:gpu_prefix_cache_hit_rate": engine("sglang:cache_hit_rate"),
    }
    assert read_like_the_router(page_text)["vllm:num_requests_running"] == 23


def test_autoscaler_names_are_present(sample_names: set[str]) -> None:
    assert set(AUTOSCALER_NAMES) <= sample_names


def _no_source_names() -> set[str]:
    section = DOCS.split("\n## No source\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^- `(vllm:[a-z0-9_:]+)`", section, flags=re.M))


def test_every_dashboard_name_is_emitted_or_documented_as_without_source(sample_names: set[str]) -> None:
    no_source = _no_source_names()
    assert no_source, "docs/metrics.md lost its '## No source' list"
    for name in DASHBOARD_NAMES:
        assert f"vllm:{name}" in sample_names or f"vllm:{name}" in no_source, name
    for name in DASHBOARD_HISTOGRAMS:
        series = {f"vllm:{name}{suffix}" for suffix in ("_bucket", "_sum", "_count")}
        assert series <= sample_names or f"vllm:{name}" in no_source, name
    assert not {f"{n}{suffix}" for n in no_source for suffix in ("", "_bucket", "_sum", "_count")} & sample_names


def test_docs_map_every_emitted_vllm_family(page_text: str) -> None:
    documented = set(re.findall(r"^\| `(vllm:[a-z0-9_:]+)", DOCS, flags=re.M))
    exposed = {fam.name + ("_total" if fam.type == "counter" else "")
               for fam in text_string_to_metric_families(page_text) if fam.name.startswith("vllm:")}
    assert exposed <= documented


def test_success_is_split_by_finished_reason(page_text: str) -> None:
    reasons = [s.labels["finished_reason"] for fam in text_string_to_metric_families(page_text)
               for s in fam.samples if s.name == "vllm:request_success_total"]
    assert reasons == ["stop", "abort"]
