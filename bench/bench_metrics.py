#!/usr/bin/env python3
"""Time MetricsBridge.render() on the recorded full SGLang page (tests/data/sglang_metrics_page.txt).

    python bench/bench_metrics.py [--scrapes 200]

Prints mean/p50/p99 ms per scrape for the uncached path (cache_seconds=0: fetch, split, translate and render
every time), the cached path (one upstream scrape shared, only the middleware's own series rendered), the
stages of the uncached path, and the path a page takes when it cannot be passed through (full parse and
re-render of SGLang's block: what every scrape cost before the passthrough). Wall time counts other processes
on a busy machine, so the CPU time this process spent per scrape (all threads) is printed beside it: compare
that one across machines, and note the load average printed in the first line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prometheus_client import generate_latest  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from middleware.metrics.bridge import SGLANG_PREFIX, MetricsBridge, render_families, sglang_families  # noqa: E402
from middleware.metrics.parse import clear_caches, parse, split_page  # noqa: E402
from middleware.metrics.translate import SOURCES, StopLedger, translate_families  # noqa: E402

PAGE = (ROOT / "tests" / "data" / "sglang_metrics_page.txt").read_text()


Timing = tuple[list[float], list[float]]  # wall seconds, CPU seconds; one entry per call


def report(label: str, timing: Timing) -> None:
    def stats(seconds: list[float]) -> str:
        ms = sorted(s * 1000 for s in seconds)
        p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
        return f"mean {statistics.fmean(ms):7.2f}  p50 {statistics.median(ms):7.2f}  p99 {p99:7.2f}"

    wall, cpu = timing
    print(f"{label:<34} wall {stats(wall)} | cpu {stats(cpu)} ms")


async def time_render(bridge: MetricsBridge, scrapes: int) -> Timing:
    async def fetch() -> str:
        return PAGE

    await bridge.render(fetch)  # warm-up: imports, regex compilation, the first upstream scrape
    wall, cpu = [], []
    for _ in range(scrapes):
        start, start_cpu = time.perf_counter(), time.process_time()
        await bridge.render(fetch)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def time_call(fn: Callable[[], object], runs: int) -> Timing:
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def cold_split() -> None:
    """split_page as on the first scrape, before it has checked or read any of the page's label texts."""
    clear_caches()
    split_page(PAGE, SGLANG_PREFIX, SOURCES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()
    families = parse(PAGE)
    samples = sum(len(f.samples) for f in families)
    print(f"page: {len(PAGE)} bytes, {len(families)} families, {samples} samples; {args.scrapes} scrapes each; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    uncached = MetricsBridge("llama", cache_seconds=0.0)
    report("render, cache bypassed", asyncio.run(time_render(uncached, args.scrapes)))
    cached = MetricsBridge("llama", cache_seconds=3600.0)
    report("render, cached", asyncio.run(time_render(cached, args.scrapes)))

    runs = args.scrapes
    ledger = StopLedger()
    wanted = split_page(PAGE, SGLANG_PREFIX, SOURCES).families
    vllm = translate_families(wanted, "llama", ledger)
    report("  split_page", time_call(lambda: split_page(PAGE, SGLANG_PREFIX, SOURCES), runs))
    report("  split_page, cold caches", time_call(lambda: cold_split(), runs))
    report("  translate", time_call(lambda: translate_families(wanted, "llama", ledger), runs))
    report("  generate_latest vLLM families", time_call(lambda: render_families(vllm), runs))
    report("  own series", time_call(lambda: generate_latest(cached._own_registry), runs))
    print("when the page cannot be passed through (the path every scrape took before):")
    # A comment line in front is enough to take the full-parse path.
    report("  full page, re-rendered", time_call(lambda: uncached._render_upstream("# x\n" + PAGE), runs))
    report("  parse all (fast reader)", time_call(lambda: parse(PAGE), runs))
    report("  (library parser, for comparison)",
           time_call(lambda: list(text_string_to_metric_families(PAGE)), max(10, runs // 10)))
    report("  sglang families (dedupe)", time_call(lambda: sglang_families(families), runs))
    deduped = sglang_families(families)
    report("  generate_latest sglang families", time_call(lambda: render_families(deduped), runs))


if __name__ == "__main__":
    main()
