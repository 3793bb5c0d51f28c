"""translate(): SGLang families -> vLLM families, checked against the recorded page and small built pages."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from middleware.metrics.bridge import render_families
from middleware.metrics.translate import translate

PAGE = (Path(__file__).resolve().parents[4] / "tests" / "data" / "sglang_metrics_page.txt").read_text()
SGLANG = list(text_string_to_metric_families(PAGE))  # the reference reading, by the library parser
SCHED = {"model_name": "sglang-name", "engine_type": "unified", "tp_rank": "0", "pp_rank": "0", "moe_ep_rank": "0"}
TOK = {"model_name": "sglang-name", "engine_type": "unified"}
HISTOGRAMS = {  # vLLM histogram <- SGLang histogram, as documented
    "vllm:time_to_first_token_seconds": "sglang:time_to_first_token_seconds",
    "vllm:inter_token_latency_seconds": "sglang:inter_token_latency_seconds",
    "vllm:e2e_request_latency_seconds": "sglang:e2e_request_latency_seconds",
    "vllm:request_time_per_output_token_seconds": "sglang:request_time_per_output_token_seconds",
    "vllm:request_queue_time_seconds": "sglang:queue_time_seconds",
    "vllm:request_prompt_tokens": "sglang:prompt_tokens_histogram",
    "vllm:request_generation_tokens": "sglang:generation_tokens_histogram",
}


def family(name: str, kind: str, *samples: tuple[str, dict[str, str], float]) -> Metric:
    metric = Metric(name, "help", kind)
    for sample_name, labels, value in samples:
        metric.add_sample(sample_name, labels, value)
    return metric


def page(*families: Metric) -> str:
    return render_families(list(families)).decode()


def samples(families: list[Metric]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for fam in families:
        for s in fam.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, f"duplicate sample {key}"
            out[key] = s.value
    return out


def value(families: list[Metric], name: str, **labels: str) -> float:
    return samples(families)[(name, frozenset({"model_name": "served", "engine": "0", **labels}.items()))]


def sglang_sum(name: str, **where: str) -> float:
    """Sum of one SGLang sample name over all its series in the recorded page, filtered by labels."""
    return math.fsum(s.value for fam in SGLANG for s in fam.samples
                     if s.name == name and all(s.labels.get(k) == v for k, v in where.items()))


@pytest.fixture(scope="module")
def recorded() -> list[Metric]:
    return translate(PAGE, "served")


def test_gauges_from_recorded_page(recorded: list[Metric]) -> None:
    assert value(recorded, "vllm:num_requests_running") == sglang_sum("sglang:num_running_reqs") == 23
    assert value(recorded, "vllm:num_requests_waiting") == sglang_sum("sglang:num_queue_reqs") == 4
    usage = sglang_sum("sglang:token_usage")
    assert 0 < usage < 1
    assert value(recorded, "vllm:kv_cache_usage_perc") == value(recorded, "vllm:gpu_cache_usage_perc") == usage
    assert value(recorded, "vllm:gpu_prefix_cache_hit_rate") == sglang_sum("sglang:cache_hit_rate")


def test_counters_from_recorded_page(recorded: list[Metric]) -> None:
    prompt = sglang_sum("sglang:prompt_tokens_total")
    assert value(recorded, "vllm:prompt_tokens_total") == prompt == sglang_sum("sglang:prompt_tokens_histogram_sum")
    assert value(recorded, "vllm:generation_tokens_total") == sglang_sum("sglang:generation_tokens_total")
    for queries in ("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total"):
        assert value(recorded, queries) == prompt
    for hits in ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total"):
        assert value(recorded, hits) == sglang_sum("sglang:cached_tokens_total") < prompt
    assert value(recorded, "vllm:num_preemptions_total") == sglang_sum("sglang:num_retracted_requests_total")
    total, aborted = sglang_sum("sglang:num_requests_total"), sglang_sum("sglang:num_aborted_requests_total")
    assert value(recorded, "vllm:request_success_total", finished_reason="stop") == total - aborted
    assert value(recorded, "vllm:request_success_total", finished_reason="abort") == aborted


@pytest.mark.parametrize(("vllm", "sglang"), sorted(HISTOGRAMS.items()))
def test_histograms_keep_sglang_buckets_and_merge_series(recorded: list[Metric], vllm: str, sglang: str) -> None:
    bounds = {s.labels["le"] for fam in SGLANG for s in fam.samples
              if s.name == sglang + "_bucket"}
    ours = {dict(k[1])["le"]: v for k, v in samples(recorded).items() if k[0] == vllm + "_bucket"}
    assert set(ours) == bounds
    for le, count in ours.items():
        assert count == sglang_sum(sglang + "_bucket", le=le)
    assert value(recorded, vllm + "_count") == sglang_sum(sglang + "_count") == ours["+Inf"]
    assert value(recorded, vllm + "_sum") == sglang_sum(sglang + "_sum")


def test_prefill_time_reads_only_the_prefill_stage(recorded: list[Metric]) -> None:
    stage = "sglang:per_stage_req_latency_seconds"
    assert value(recorded, "vllm:request_prefill_time_seconds_count") == sglang_sum(
        stage + "_count", stage="prefill_forward") < sglang_sum(stage + "_count")
    assert value(recorded, "vllm:request_prefill_time_seconds_sum") == sglang_sum(stage + "_sum",
                                                                                  stage="prefill_forward")


def test_every_series_is_labelled_like_vllm(recorded: list[Metric]) -> None:
    for fam in recorded:
        assert fam.name.startswith("vllm:")
        for s in fam.samples:
            extra = set(s.labels) - {"model_name", "engine"}
            assert s.labels["model_name"] == "served" and s.labels["engine"] == "0"
            assert extra <= ({"le"} if s.name.endswith("_bucket") else {"finished_reason"})


def test_names_without_an_sglang_source_are_not_invented(recorded: list[Metric]) -> None:
    names = {fam.name for fam in recorded}
    assert not names & {"vllm:request_decode_time_seconds", "vllm:request_max_num_generation_tokens",
                        "vllm:time_per_output_token_seconds", "vllm:request_inference_time_seconds"}


def test_only_families_whose_source_is_present() -> None:
    text = page(family("sglang:num_queue_reqs", "gauge", ("sglang:num_queue_reqs", SCHED, 7)))
    out = translate(text, "served")
    assert [f.name for f in out] == ["vllm:num_requests_waiting"]
    assert value(out, "vllm:num_requests_waiting") == 7
    assert translate("", "served") == []


def test_kv_usage_falls_back_to_token_counts() -> None:
    out = translate(page(family("sglang:num_used_tokens", "gauge", ("sglang:num_used_tokens", SCHED, 250)),
                         family("sglang:max_total_num_tokens", "gauge", ("sglang:max_total_num_tokens", SCHED, 1000))),
                    "served")
    assert value(out, "vllm:kv_cache_usage_perc") == value(out, "vllm:gpu_cache_usage_perc") == 0.25


def test_scheduler_replicas_are_not_added_up() -> None:
    # With --enable-metrics-for-all-schedulers every TP rank reports the same batch; with priority scheduling
    # the total sits under priority="" next to per-priority breakdowns; DP ranks are separate engines.
    rows = [({**SCHED, "priority": ""}, 10), ({**SCHED, "priority": "1"}, 6), ({**SCHED, "priority": "2"}, 4),
            ({**SCHED, "tp_rank": "1", "priority": ""}, 10), ({**SCHED, "pp_rank": "1", "priority": ""}, 9),
            ({**SCHED, "tp_rank": "2", "dp_rank": "1", "priority": ""}, 3),
            ({**SCHED, "tp_rank": "3", "dp_rank": "1", "priority": ""}, 3)]
    out = translate(page(family("sglang:num_running_reqs", "gauge",
                                *(("sglang:num_running_reqs", labels, v) for labels, v in rows))), "served")
    assert value(out, "vllm:num_requests_running") == 10
    assert value(out, "vllm:num_requests_running", engine="1") == 3
    assert len(out[0].samples) == 2


def test_tokenizer_partitions_are_added_up() -> None:
    rows = [({**TOK, "is_streaming": s, "priority": p}, v) for s, p, v in
            [("true", "", 5), ("false", "", 7), ("true", "3", 11)]]
    out = translate(page(family("sglang:prompt_tokens", "counter",
                                *(("sglang:prompt_tokens_total", labels, v) for labels, v in rows))), "served")
    assert value(out, "vllm:prompt_tokens_total") == 23


def test_success_without_abort_counter_is_stop_only() -> None:
    out = translate(page(family("sglang:num_requests", "counter",
                                ("sglang:num_requests_total", {**TOK, "is_streaming": "true"}, 5))), "served")
    assert [s.labels["finished_reason"] for s in out[0].samples] == ["stop"]
    assert value(out, "vllm:request_success_total", finished_reason="stop") == 5


def test_stop_never_goes_negative() -> None:
    out = translate(page(family("sglang:num_requests", "counter", ("sglang:num_requests_total", TOK, 2)),
                         family("sglang:num_aborted_requests", "counter",
                                ("sglang:num_aborted_requests_total", TOK, 5))), "served")
    assert value(out, "vllm:request_success_total", finished_reason="stop") == 0


def test_a_source_of_another_type_is_ignored() -> None:
    text = page(family("sglang:num_running_reqs", "counter", ("sglang:num_running_reqs_total", SCHED, 3)))
    assert translate(text, "served") == []


def test_histogram_buckets_merge_by_bound_value() -> None:
    def hist(streaming: str, le: str) -> Metric:
        labels = {**TOK, "is_streaming": streaming}
        return family("sglang:time_to_first_token_seconds", "histogram",
                      ("sglang:time_to_first_token_seconds_bucket", {**labels, "le": le}, 1),
                      ("sglang:time_to_first_token_seconds_bucket", {**labels, "le": "+Inf"}, 2),
                      ("sglang:time_to_first_token_seconds_count", labels, 2),
                      ("sglang:time_to_first_token_seconds_sum", labels, 0.5))

    text = "".join(page(hist(s, le)) for s, le in [("true", "1"), ("false", "1.0")])
    out = translate(text, "served")
    buckets: defaultdict[str, float] = defaultdict(float)
    for s in out[0].samples:
        if s.name.endswith("_bucket"):
            buckets[s.labels["le"]] += s.value
    assert dict(buckets) == {"1.0": 2, "+Inf": 4}


def test_translate_is_pure() -> None:
    assert translate(PAGE, "served") == translate(PAGE, "served")


def test_counters_without_an_sglang_series_yet_are_zero_per_engine() -> None:
    # A fresh SGLang (seen on its real server): scheduler gauges for two DP engines, no counter series yet.
    fresh = page(family("sglang:num_running_reqs", "gauge",
                        ("sglang:num_running_reqs", {**SCHED, "dp_rank": "0"}, 0.0),
                        ("sglang:num_running_reqs", {**SCHED, "dp_rank": "1"}, 0.0)))  # fmt: skip
    out = {(s.name, s.labels["engine"]): s.value for f in translate(fresh, "served") for s in f.samples}
    for name in ("vllm:gpu_prefix_cache_hits_total", "vllm:prefix_cache_queries_total", "vllm:num_preemptions_total"):
        assert out[(name, "0")] == out[(name, "1")] == 0.0, name
    # No scheduler gauges, no engine: nothing is made up.
    assert translate(page(family("other", "gauge", ("other", {}, 1.0))), "served") == []
