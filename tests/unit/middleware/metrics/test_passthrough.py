"""SGLang's text passed through as it came (`split_page`), and the page it is pasted into staying valid."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from middleware.metrics import bridge
from middleware.metrics.bridge import SGLANG_PREFIX, MetricsBridge, render_families
from middleware.metrics.parse import Unusual, parse, split_page
from middleware.metrics.translate import SOURCES, StopLedger, translate_families
from tests.unit.middleware.metrics.test_parse import _families

PAGE = (Path(__file__).resolve().parents[4] / "tests" / "data" / "sglang_metrics_page.txt").read_text()


def _comparable(families: list[Metric]) -> list[tuple[object, ...]]:
    def value(v: float) -> object:
        return "NaN" if math.isnan(v) else v

    return [(f.name, f.type, f.documentation, [(s.name, s.labels, value(s.value), s.timestamp) for s in f.samples])
            for f in families]


def _render(text: str) -> str:
    async def fetch() -> str:
        return text

    return asyncio.run(MetricsBridge("served", cache_seconds=0.0).render(fetch)).decode()


def test_recorded_page_is_kept_whole_and_only_the_sources_are_parsed() -> None:
    page = split_page(PAGE, SGLANG_PREFIX, SOURCES)
    assert page.passthrough == PAGE
    assert _comparable(page.families) == _comparable([f for f in parse(PAGE) if {f.name, f.name + "_total"} & SOURCES])


@pytest.mark.parametrize("drop", ["", "sglang:token_usage"])
def test_translating_only_the_sources_changes_nothing(drop: str) -> None:
    # Also without token_usage, where kv usage is derived from two other families (`MetricRule.reads`).
    text = "".join(f"# HELP {chunk}\n" for chunk in PAGE[len("# HELP "):].rstrip("\n").split("\n# HELP ")
                   if not drop or not chunk.startswith(drop + " "))
    everything = translate_families(parse(text), "m", StopLedger())
    sources = translate_families(split_page(text, SGLANG_PREFIX, SOURCES).families, "m", StopLedger())
    assert render_families(sources) == render_families(everything)
    assert b"vllm:kv_cache_usage_perc" in render_families(sources)


@settings(max_examples=100, deadline=None, database=None)
@given(_families())
def test_any_prometheus_client_page_is_kept_whole_or_refused(families: list[Metric]) -> None:
    text = render_families(families).decode()
    if not text:
        return
    try:
        page = split_page(text, "", {f.name + suffix for f in families for suffix in ("", "_total")})
    except Unusual:
        return  # repeated series, or quotes in a HELP text: the bridge re-renders such a page instead
    assert page.passthrough == text
    assert _comparable(page.families) == _comparable(list(text_string_to_metric_families(text)))


_A = "# HELP sglang:a h\n# TYPE sglang:a gauge\n"


@pytest.mark.parametrize(("text", "reason"), [
    ("sglang:a 1\n", "not laid out"),  # no HELP/TYPE: the library makes it an untyped family of its own
    (_A + "sglang:a 1\n# HELP sglang:b h\n# TYPE sglang:b gauge\nsglang:b 1\n" + _A + "sglang:a{x=\"1\"} 1\n",
     "more than one piece"),
    ("# HELP sglang:a_total h\n# TYPE sglang:a_total counter\nsglang:a_total 1\n" + _A + "sglang:a 1\n",
     "more than one piece"),  # both read back as family `sglang:a`
    (_A + "sglang:a{x=\"1\"} 1\nsglang:a{x=\"1\"} 2\n", "appears twice"),
    (_A + "sglang:a{x=\"1\",y=\"2\"} 1\nsglang:a{y=\"2\",x=\"1\"} 2\n", "appears twice"),  # label order
    (_A + "sglang:a{x=\"\\\\q\"} 1\nsglang:a{x=\"\\q\"} 2\n", "appears twice"),  # both read as backslash, q
    (_A + "sglang:a 1\nsglang:b 2\n", "not one of its samples"),  # another family's sample inside
    (_A + "sglang:a_count 1\n", "not one of its samples"),  # not a gauge's sample name
    (_A + "\nsglang:a 1\n", "not one of its samples"),  # blank line
    (_A + "# a comment\nsglang:a 1\n", "not one of its samples"),
    ("# HELP sglang:a h\nsglang:a 1\n", "no TYPE line"),
    ("# HELP sglang:a h\n# TYPE sglang:a info\nsglang:a 1\n", "no TYPE line"),  # not a 0.0.4 type
    ('# HELP sglang:a say "hi"\n# TYPE sglang:a gauge\nsglang:a 1\n', "quotes in HELP"),
    (_A + "sglang:a 1 1700000000\n", "not valid exposition"),  # timestamp
    (_A + "sglang:a{x=1} 1\n", "not valid exposition"),
    (_A + "sglang:a 1_0\n", "not a number"),
    (_A + "sglang:a{__name__=\"b\"} 1\n", "not laid out"),
])
def test_pages_outside_the_layout_are_refused(text: str, reason: str) -> None:
    with pytest.raises(Unusual, match=reason):
        split_page(text, SGLANG_PREFIX, SOURCES)


def test_a_page_of_one_family_is_kept() -> None:
    text = _A + "sglang:a{x=\"1\"} 1.0\nsglang:a{x=\"2\"} +Inf\n"
    assert split_page(text, SGLANG_PREFIX, {"sglang:a"}).passthrough == text


def test_recorded_page_passes_through_byte_for_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_full_parse(text: str) -> list[Metric]:
        raise AssertionError("read the whole page")

    monkeypatch.setattr(bridge, "parse", no_full_parse)
    body = _render(PAGE)
    before, page, after = body.partition(PAGE)
    assert page
    assert {f.name.split(":")[0] for f in text_string_to_metric_families(before)} == {"vllm"}
    assert {f.name.split(":")[0] for f in text_string_to_metric_families(after)} == {"vllm_shim"}


def test_vllm_families_on_sglangs_page_are_dropped() -> None:
    ours = "# HELP vllm:num_requests_running theirs\n# TYPE vllm:num_requests_running gauge\n" \
           "vllm:num_requests_running 99\n# HELP vllm_shim:engine_metrics_up theirs\n" \
           "# TYPE vllm_shim:engine_metrics_up gauge\nvllm_shim:engine_metrics_up 7\n"
    families = list(text_string_to_metric_families(_render(PAGE + ours)))
    names = [f.name for f in families]
    assert len(names) == len(set(names))
    running = [s.value for f in families for s in f.samples if s.name == "vllm:num_requests_running"]
    up = [s.value for f in families for s in f.samples if s.name == "vllm_shim:engine_metrics_up"]
    assert running == [23] and up == [1]


@pytest.mark.parametrize("text", [
    # The same series twice, its labels in another order: the page is re-rendered with one of them.
    _A + "sglang:a{x=\"1\",y=\"2\"} 1\nsglang:a{x=\"1\",y=\"3\"} 2\nsglang:a{y=\"2\",x=\"1\"} 3\n",
    _A + "sglang:a{x=\"a\\\\b\"} 1\n",  # escapes
])
def test_whatever_the_page_the_result_parses_without_repeats(text: str) -> None:
    seen: set[tuple[str, frozenset[tuple[str, str]]]] = set()
    names = []
    for family in text_string_to_metric_families(_render(text)):
        names.append(family.name)
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in seen
            seen.add(key)
    assert len(names) == len(set(names)) and "sglang:a" in names
