"""The recorded SGLang page (tests/data/sglang_metrics_page.txt): complete, consistent, and reproducible."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
PAGE_PATH = ROOT / "tests" / "data" / "sglang_metrics_page.txt"
FAMILIES = list(text_string_to_metric_families(PAGE_PATH.read_text()))
REALISTIC = {"model_name": {"meta-llama/Llama-3.1-8B-Instruct"}, "engine_type": {"unified"}, "tp_rank": {"0"},
             "pp_rank": {"0"}, "moe_ep_rank": {"0"}, "is_streaming": {"true", "false"},
             "cache_source": {"device", "host"}}


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sglang_metrics_page",
                                                  ROOT / "scripts" / "make_sglang_metrics_page.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference() -> list[dict[str, Any]]:
    spec: list[dict[str, Any]] = _script().load_spec(None)
    return spec


def test_page_regenerates_byte_for_byte(reference: list[dict[str, Any]]) -> None:
    assert _script().build_page() == PAGE_PATH.read_text(), "rerun scripts/make_sglang_metrics_page.py"


def test_page_has_every_sglang_family_with_its_labels(reference: list[dict[str, Any]]) -> None:
    assert len(reference) == len(FAMILIES) == 167
    by_name = {fam.name: fam for fam in FAMILIES}
    for entry in reference:
        fam = by_name[str(entry["name"])]
        assert fam.type == entry["type"] and fam.documentation == entry["help"]
        assert {s.name for s in fam.samples} == set(entry["exposed_as"])
        for s in fam.samples:
            bucket_label = {"le"} if s.name.endswith("_bucket") else set()
            assert set(s.labels) - bucket_label == set(entry["labels"])


def _series(fam: Metric) -> dict[tuple[tuple[str, str], ...], dict[str, float]]:
    out: dict[tuple[tuple[str, str], ...], dict[str, float]] = {}
    for s in fam.samples:
        labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        out.setdefault(labels, {})[s.name[len(fam.name):] + s.labels.get("le", "")] = s.value
    return out


@pytest.mark.parametrize("fam", [f for f in FAMILIES if f.type == "histogram"], ids=lambda f: f.name)
def test_histograms_are_cumulative_and_counted(fam: Metric) -> None:
    for values in _series(fam).values():
        buckets = sorted((float(k[len("_bucket"):]), v) for k, v in values.items() if k.startswith("_bucket"))
        counts = [v for _, v in buckets]
        assert counts == sorted(counts) and buckets[-1][0] == math.inf
        assert counts[-1] == values["_count"] > 0 and values["_sum"] > 0


def test_counters_are_positive_and_there_are_no_created_samples() -> None:
    for fam in FAMILIES:
        assert not any(s.name.endswith("_created") for s in fam.samples)
        if fam.type == "counter":
            assert all(s.value > 0 for s in fam.samples), fam.name


def test_label_values_are_realistic() -> None:
    for fam in FAMILIES:
        for s in fam.samples:
            for key, allowed in REALISTIC.items():
                assert s.labels.get(key, next(iter(allowed))) in allowed, (fam.name, key)
    stages = {s.labels["stage"] for f in FAMILIES for s in f.samples if "stage" in s.labels}
    assert "prefill_forward" in stages


def test_token_counters_match_histograms() -> None:
    def total(name: str) -> float:
        return math.fsum(s.value for f in FAMILIES for s in f.samples if s.name == name)

    assert total("sglang:prompt_tokens_total") == total("sglang:prompt_tokens_histogram_sum")
    assert total("sglang:generation_tokens_total") == total("sglang:generation_tokens_histogram_sum")
    assert total("sglang:num_requests_total") == total("sglang:e2e_request_latency_seconds_count")
    assert total("sglang:cached_tokens_total") < total("sglang:prompt_tokens_total")
