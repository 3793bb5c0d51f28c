"""The fast /metrics reader must return exactly what prometheus_client's parser returns, or raise like it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from middleware.metrics import parse as parse_module
from middleware.metrics.bridge import render_families
from middleware.metrics.parse import parse

PAGE = (Path(__file__).resolve().parents[4] / "tests" / "data" / "sglang_metrics_page.txt").read_text()


def _comparable(families: list[Metric]) -> list[tuple[object, ...]]:
    # NaN != NaN, so compare values through a stand-in; ints and floats compare equal already.
    def value(v: float) -> object:
        return "NaN" if math.isnan(v) else v

    return [(f.name, f.type, f.documentation,
             [(s.name, s.labels, value(s.value), s.timestamp) for s in f.samples]) for f in families]


def _library(text: str) -> list[Metric]:
    return list(text_string_to_metric_families(text))


def test_recorded_page_reads_like_the_library() -> None:
    assert _comparable(parse(PAGE)) == _comparable(_library(PAGE))


def test_recorded_page_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fallback(text: str) -> list[Metric]:
        raise AssertionError("fell back to the library parser")

    monkeypatch.setattr(parse_module, "text_string_to_metric_families", no_fallback)
    assert len(parse(PAGE)) == 167


@pytest.mark.parametrize("text", [
    "# HELP a Some help\n# TYPE a gauge\na 1 1700000000000\n",  # timestamp
    '# HELP a help with "quotes"\n# TYPE a gauge\na 1\n',
    "# TYPE a gauge\na{x=\"1\"}   2\n",  # extra spaces
    '# TYPE a gauge\n{"a",x="1"} 2\n',  # UTF-8 name syntax
    "# TYPE a counter\na 3\n",  # counter without _total
    "# TYPE a_total counter\na_total 3\n# TYPE b gauge\nb 1\na_total 4\n",  # interleaved: untyped singleton
    "# TYPE a histogram\na_bucket{le=\"1\"} 1\na_bucket{le=\"+Inf\"} 2\na_count 2\na_sum 1.5\n",
    "# TYPE a summary\na{quantile=\"0.5\"} 1\na_count 2\na_sum 3\n",
    "a 1\nb{x=\"y\"} NaN\n# just a comment\n\n",
    '# TYPE a gauge\na{x="esc \\\\ \\" \\n \\t",} +Inf\n',  # escapes and trailing comma
])
def test_unusual_pages_read_like_the_library(text: str) -> None:
    assert _comparable(parse(text)) == _comparable(_library(text))


@pytest.mark.parametrize("text", [
    "# TYPE a gauge\na{x=1} 2\n",
    "# TYPE a gauge\na 1_0\n",
    "# TYPE a gauge\na{x=\"1\"\n",
    "# TYPE a\n",
    "# TYPE a nonsense\na 1\n",
])
def test_invalid_pages_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        _library(text)
    with pytest.raises(ValueError):
        parse(text)


_label_values = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_names = st.from_regex(r"[a-z_:][a-z0-9_:]{0,12}", fullmatch=True)


@st.composite
def _families(draw: st.DrawFn) -> list[Metric]:
    families = []
    for index, kind in enumerate(draw(st.lists(st.sampled_from(["gauge", "counter", "histogram"]), max_size=4))):
        name = f"{draw(_names)}x{index}"
        family = Metric(name, draw(_label_values), kind)
        for labels in draw(st.lists(st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,5}", fullmatch=True),
                                                    _label_values, max_size=3), max_size=3)):
            labels.pop("le", None)
            value = draw(st.floats(allow_nan=False, width=64))
            if kind == "histogram":
                family.add_sample(name + "_bucket", {**labels, "le": "+Inf"}, abs(value))
                family.add_sample(name + "_count", labels, abs(value))
                family.add_sample(name + "_sum", labels, value)
            else:
                family.add_sample(name + ("_total" if kind == "counter" else ""), labels, value)
        families.append(family)
    return families


@settings(max_examples=100, deadline=None, database=None)
@given(_families())
def test_any_prometheus_client_page_reads_like_the_library(families: list[Metric]) -> None:
    text = render_families(families).decode()
    assert _comparable(parse(text)) == _comparable(_library(text))
