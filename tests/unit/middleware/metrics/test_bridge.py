"""MetricsBridge.render(): page layout, caching, failures, monotone counters, multiprocess-mode safety."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from middleware.metrics.bridge import MetricsBridge, render_families

ROOT = Path(__file__).resolve().parents[4]
PAGE = (ROOT / "tests" / "data" / "sglang_metrics_page.txt").read_text()
TOK = {"model_name": "sglang-name", "engine_type": "unified"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Upstream:
    """A fetch() that counts calls and can be held open or made to fail."""

    def __init__(self, text: str = PAGE) -> None:
        self.text, self.calls = text, 0
        self.error: Exception | None = None
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> str:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return self.text


def families(body: bytes) -> list[Metric]:
    return list(text_string_to_metric_families(body.decode()))


def sample_values(body: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for fam in families(body):
        for s in fam.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, f"duplicate sample {key}"
            out[key] = s.value
    return out


def render(bridge: MetricsBridge, fetch: Callable[[], Awaitable[str]]) -> bytes:
    return asyncio.run(bridge.render(fetch))


def test_page_is_vllm_then_sglang_then_own_counters() -> None:
    body = render(MetricsBridge("served"), Upstream())
    prefixes = [fam.name.split(":")[0] for fam in families(body)]
    assert prefixes == sorted(prefixes, key=["vllm", "sglang", "vllm_shim"].index)
    assert set(prefixes) == {"vllm", "sglang", "vllm_shim"}
    sample_values(body)  # parses, and no sample (name + labels) appears twice
    assert b"_created" not in body


def test_sglang_series_pass_through_unchanged() -> None:
    ours = [f for f in families(render(MetricsBridge("served"), Upstream())) if f.name.startswith("sglang:")]
    assert ours == list(text_string_to_metric_families(PAGE))


def test_passthrough_never_repeats_a_family_or_sample() -> None:
    upstream = Upstream("# TYPE sglang:a gauge\nsglang:a{x=\"1\",y=\"2\"} 1\nsglang:a{y=\"2\",x=\"1\"} 2\n"
                        "# TYPE sglang:b gauge\nsglang:b 1\nsglang:a{x=\"3\"} 3\nother_metric 5\n")
    fams = families(render(MetricsBridge("served"), upstream))
    assert [f.name for f in fams if not f.name.startswith("vllm_shim:")] == ["sglang:a", "sglang:b"]
    assert [s.value for s in fams[0].samples] == [1]


def test_own_counters() -> None:
    bridge = MetricsBridge("served")
    for _ in range(2):
        bridge.count_request("/v1/chat/completions", 200)
    bridge.count_request("/v1/completions", 400)
    bridge.count_rewrite("max_completion_tokens")
    bridge.count_upstream_error("connect")
    bridge.count_disconnect("/v1/chat/completions")
    values = sample_values(render(bridge, Upstream("")))
    assert values[("vllm_shim:requests_total",
                   frozenset({"route": "/v1/chat/completions", "status": "200"}.items()))] == 2
    assert values[("vllm_shim:requests_total", frozenset({"route": "/v1/completions", "status": "400"}.items()))] == 1
    assert values[("vllm_shim:rewrites_total", frozenset({"rule": "max_completion_tokens"}.items()))] == 1
    assert values[("vllm_shim:upstream_errors_total", frozenset({"kind": "connect"}.items()))] == 1
    assert values[("vllm_shim:client_disconnects_total", frozenset({"route": "/v1/chat/completions"}.items()))] == 1
    assert MetricsBridge.content_type.startswith("text/plain; version=0.0.4")


def test_scrapes_within_the_window_share_one_fetch() -> None:
    clock, upstream = FakeClock(), Upstream()
    bridge = MetricsBridge("served", cache_seconds=1.0, clock=clock)

    async def scenario() -> None:
        await bridge.render(upstream)
        clock.now += 0.5
        bridge.count_request("/health", 200)
        body = await bridge.render(upstream)
        assert upstream.calls == 1
        assert b'vllm_shim:requests_total{route="/health",status="200"} 1.0' in body  # own counters stay live
        clock.now += 0.5
        await bridge.render(upstream)
        assert upstream.calls == 2

    asyncio.run(scenario())


def test_concurrent_scrapes_share_one_fetch_even_if_one_hangs_up() -> None:
    upstream = Upstream()
    bridge = MetricsBridge("served", cache_seconds=0.0)

    async def scenario() -> None:
        upstream.gate = asyncio.Event()
        first = asyncio.ensure_future(bridge.render(upstream))
        others = [asyncio.ensure_future(bridge.render(upstream)) for _ in range(9)]
        await asyncio.sleep(0)
        first.cancel()
        upstream.gate.set()
        bodies = await asyncio.gather(*others)
        assert upstream.calls == 1
        assert all(body == bodies[0] and b"vllm:num_requests_running" in body for body in bodies)

    asyncio.run(scenario())


def test_failed_fetch_serves_last_good_vllm_series(caplog: pytest.LogCaptureFixture) -> None:
    upstream = Upstream()
    bridge = MetricsBridge("served", cache_seconds=0.0)
    good = sample_values(render(bridge, upstream))
    upstream.error = OSError("connection refused")
    with caplog.at_level(logging.WARNING, logger="middleware.metrics.bridge"):
        render(bridge, upstream)
        body = render(bridge, upstream)
    values = sample_values(body)
    vllm = {k: v for k, v in values.items() if k[0].startswith("vllm:")}
    assert vllm == {k: v for k, v in good.items() if k[0].startswith("vllm:")}
    assert not any(k[0].startswith("sglang:") for k in values)
    assert values[("vllm_shim:upstream_errors_total", frozenset({"kind": "metrics_fetch"}.items()))] == 2
    assert len(caplog.records) == 1  # the outage is logged once, not per scrape


def _up(values: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> float:
    return values[("vllm_shim:engine_metrics_up", frozenset())]


def test_stale_vllm_series_are_served_for_a_bounded_time(caplog: pytest.LogCaptureFixture) -> None:
    # KEDA must not keep scaling on a queue length frozen by an outage.
    clock, upstream = FakeClock(), Upstream()
    bridge = MetricsBridge("served", cache_seconds=0.0, stale_seconds=30.0, clock=clock)
    good = sample_values(render(bridge, upstream))
    assert _up(good) == 1
    upstream.error = OSError("connection refused")
    with caplog.at_level(logging.WARNING, logger="middleware.metrics.bridge"):
        for now, served in [(110.0, True), (129.9, True), (130.0, False), (200.0, False)]:
            clock.now = now
            values = sample_values(render(bridge, upstream))
            vllm = {k: v for k, v in values.items() if k[0].startswith("vllm:")}
            assert vllm == ({k: v for k, v in good.items() if k[0].startswith("vllm:")} if served else {}), now
            assert not any(k[0].startswith("sglang:") for k in values)
            assert _up(values) == 0
    assert len(caplog.records) == 2  # the failure, then the series left out; not once per scrape
    upstream.error = None
    clock.now = 201.0
    values = sample_values(render(bridge, upstream))
    assert _up(values) == 1 and values == {**good, **{k: v for k, v in values.items() if k[0].startswith("vllm_shim")}}


def test_stale_bound_counts_from_the_last_good_scrape() -> None:
    # After a long quiet spell the last good series are old already: the first failure does not serve them.
    clock, upstream = FakeClock(), Upstream()
    bridge = MetricsBridge("served", cache_seconds=0.0, stale_seconds=30.0, clock=clock)
    render(bridge, upstream)
    clock.now += 600
    upstream.error = TimeoutError()
    names = {fam.name for fam in families(render(bridge, upstream))}
    assert names and all(name.startswith("vllm_shim:") for name in names)


def test_failed_first_fetch_serves_own_counters_only() -> None:
    upstream = Upstream()
    upstream.error = TimeoutError()
    body = render(MetricsBridge("served"), upstream)
    names = {fam.name for fam in families(body)}
    assert names and all(name.startswith("vllm_shim:") for name in names)
    assert _up(sample_values(body)) == 0


def test_unparseable_page_counts_a_parse_error() -> None:
    values = sample_values(render(MetricsBridge("served"), Upstream("# TYPE a gauge\na{x=1} 2\n")))
    assert values[("vllm_shim:upstream_errors_total", frozenset({"kind": "metrics_parse"}.items()))] == 1


def _engine_page(total: int, aborted: int, prompt: int) -> str:
    def counter(name: str, labels: dict[str, str], value: float) -> Metric:
        fam = Metric(name, "help", "counter")
        fam.add_sample(name + "_total", labels, value)
        return fam

    return render_families([counter("sglang:num_requests", {**TOK, "is_streaming": "true"}, total),
                            counter("sglang:num_aborted_requests", TOK, aborted),
                            counter("sglang:prompt_tokens", {**TOK, "is_streaming": "false"}, prompt)]).decode()


def _counter_samples(body: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {k: v for k, v in sample_values(body).items()
            if k[0].startswith("vllm:") and k[0].endswith(("_total", "_bucket", "_count", "_sum"))}


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 8), st.integers(0, 500)), min_size=2, max_size=12))
def test_counters_never_go_backwards_within_an_engine_lifetime(steps: list[tuple[int, int, int]]) -> None:
    # Aborts are counted when sent, finishes later (or never): `aborted` may jump ahead of `total`.
    bridge, upstream = MetricsBridge("served", cache_seconds=0.0), Upstream()
    total = aborted = prompt = 0
    previous: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for d_total, d_aborted, d_prompt in steps:
        total, aborted, prompt = total + d_total, aborted + d_aborted, prompt + d_prompt
        upstream.text = _engine_page(total, aborted, prompt)
        current = _counter_samples(render(bridge, upstream))
        assert all(current[k] >= v for k, v in previous.items())
        previous = current


def test_engine_restart_resets_derived_counters_too() -> None:
    bridge, upstream = MetricsBridge("served", cache_seconds=0.0), Upstream()
    stop = ("vllm:request_success_total", frozenset({"model_name": "served", "engine": "0",
                                                     "finished_reason": "stop"}.items()))
    for total, aborted, expected in [(10, 1, 9), (11, 4, 9), (14, 4, 10), (2, 0, 2), (3, 2, 2)]:
        upstream.text = _engine_page(total, aborted, 100)
        assert sample_values(render(bridge, upstream))[stop] == expected


def test_default_registry_and_multiprocess_dir_are_left_alone(tmp_path: Path) -> None:
    # PROMETHEUS_MULTIPROC_DIR must be set before prometheus_client is imported to matter: use a fresh process.
    script = f"""
import asyncio
from prometheus_client import REGISTRY
from middleware.metrics.bridge import MetricsBridge
before = sorted(m.name for m in REGISTRY.collect())
bridge = MetricsBridge("served")
bridge.count_request("/v1/models", 200)
async def fetch():
    return open({str(ROOT / "tests" / "data" / "sglang_metrics_page.txt")!r}).read()
body = asyncio.run(bridge.render(fetch))
assert sorted(m.name for m in REGISTRY.collect()) == before
print(body.decode())
"""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []
    names = {fam.name for fam in text_string_to_metric_families(result.stdout)}
    assert {"vllm:num_requests_running", "sglang:num_running_reqs", "vllm_shim:requests"} <= names
