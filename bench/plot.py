"""docs/benchmarks.png from a bench/run.py results file: latency and throughput vs concurrency, three paths.

    python bench/plot.py [bench/results/latest.json] [docs/benchmarks.png]
    python bench/plot.py --ab bench/results/ab_pool.json docs/benchmarks-ab.png   # saved middleware variants

Needs matplotlib (`pip install matplotlib`); only this script does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_IN = HERE / "results" / "latest.json"
DEFAULT_OUT = HERE.parent / "docs" / "benchmarks.png"
PATHS = {"direct": "#4c72b0", "haproxy": "#55a868", "chain": "#c44e52"}
LABELS = {"direct": "direct", "haproxy": "haproxy", "chain": "haproxy + middleware"}


def series(results: dict[str, Any], prefix: str, key: str) -> dict[str, tuple[list[int], list[float]]]:
    """{path: (concurrencies, values)} over the sweep cases named `prefix<c>`."""
    cases = sorted(
        ((meta["concurrency"], name) for name, meta in results["scenarios"].items() if name.startswith(prefix)),
    )
    out: dict[str, tuple[list[int], list[float]]] = {}
    for path in PATHS:
        xs = [c for c, name in cases if path in results["cases"][name]]
        ys = [float(results["cases"][name][path][key]) for c, name in cases if path in results["cases"][name]]
        out[path] = (xs, ys)
    return out


def plot_ab(src: Path, dst: Path) -> int:
    """Middleware CPU per unit of work for saved variants of the middleware (paths other than direct/haproxy),
    relative to the first extra path: bench/run.py --extra-chain 'orig;source=DIR' runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = json.loads(src.read_text())
    scenarios = [n for n, meta in results["scenarios"].items() if meta["group"] == "main"]
    first = results["cases"][scenarios[0]]
    variants = [p for p in first if p not in ("direct", "haproxy")][::-1]  # oldest (last added) first
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / len(variants)
    for i, variant in enumerate(variants):
        values = []
        for name in scenarios:
            row = results["cases"][name]
            key = "cpu_s_per_1k_chunks" if results["scenarios"][name]["chunks"] else "cpu_ms_per_req"
            base = row[variants[0]][key]["middleware"]
            values.append(row[variant][key]["middleware"] / base * 100 if base else 0)
        xs = [j + i * width for j in range(len(scenarios))]
        bars = ax.bar(xs, values, width, label=variant)
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_xticks([j + width * (len(variants) - 1) / 2 for j in range(len(scenarios))], scenarios, fontsize=8)
    ax.set_ylabel(f"middleware CPU, % of {variants[0]}")
    la = results.get("load_average", {})
    ax.set_title(
        f"Middleware CPU per request (per 1k chunks for streams), one interleaved run; load {la.get('before')}"
    )
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    print(f"wrote {dst}")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--ab"]:
        return plot_ab(Path(argv[1]), Path(argv[2]))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    src = Path(argv[0]) if argv else DEFAULT_IN
    dst = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    results = json.loads(src.read_text())
    if not any(name.startswith("sweep_") for name in results["scenarios"]):
        print(f"{src} has no sweep cases (run bench/run.py without --no-sweep)", file=sys.stderr)
        return 2
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    (lat, added), (rps, chunks) = axes

    p50 = series(results, "sweep_chat_c", "p50_ms")
    for path, (xs, ys) in p50.items():
        lat.plot(xs, ys, "o-", color=PATHS[path], label=LABELS[path])
    lat.set(xscale="log", yscale="log", title="Non-streaming chat: p50 latency", xlabel="concurrency", ylabel="ms")

    direct_x, direct_y = p50["direct"]
    base = dict(zip(direct_x, direct_y, strict=True))
    lowest = float("inf")
    for key, style in (("p50_ms", "o-"), ("p99_ms", "s--")):
        data = series(results, "sweep_chat_c", key)
        ref = dict(zip(*data["direct"], strict=True)) if key == "p99_ms" else base
        for path in ("haproxy", "chain"):
            xs, ys = data[path]
            diff = [y - ref[x] for x, y in zip(xs, ys, strict=True) if x in ref]
            lowest = min([lowest, *diff])
            label = f"{LABELS[path]} {key.split('_')[0]}"
            added.plot(xs[: len(diff)], diff, style, color=PATHS[path], label=label)
    added.axhline(0.3, color="grey", lw=0.8, ls=":")
    added.axhline(1.0, color="grey", lw=0.8, ls=":")
    added.set_xscale("log")
    if lowest > 0:
        added.set_yscale("log")
    else:  # noise made some difference negative: symlog shows it
        added.set_yscale("symlog", linthresh=0.1)
        added.set_ylim(bottom=-0.1)
    added.set_title("Added latency vs direct (dotted: the c=1 goals, 0.3 ms p50 and 1 ms p99)")
    added.set(xlabel="concurrency", ylabel="ms")

    for path, (xs, ys) in series(results, "sweep_chat_c", "rps").items():
        rps.plot(xs, ys, "o-", color=PATHS[path], label=LABELS[path])
    rps.set(xscale="log", yscale="log", title="Non-streaming chat: requests/s", xlabel="concurrency", ylabel="req/s")

    for path, (xs, ys) in series(results, "sweep_stream_c", "chunks_per_s").items():
        chunks.plot(xs, ys, "o-", color=PATHS[path], label=LABELS[path])
    chunks.set(
        xscale="log", title="50-chunk SSE streams: chunks/s delivered", xlabel="concurrent streams"
    )
    chunks.set(ylabel="SSE events/s", ylim=(0, None))

    for ax in axes.flat:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    la = results.get("load_average", {})
    fig.suptitle(
        f"vllm-to-sglang proxy path, {results['machine']['cpus']} CPUs, medians of "
        f"{results['options']['repeat']} runs; load average {la.get('before')} -> {la.get('after')}",
        fontsize=10,
    )
    fig.tight_layout()
    dst.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dst, dpi=110)
    print(f"wrote {dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
