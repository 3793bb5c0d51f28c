"""Weigh the tuning levers side by side, in one run, against the product's own chain.

    python bench/levers.py                    # ~10 min on 2 cores; writes bench/out/levers.json
    python bench/summarize.py bench/out/levers.json   # the summary docs cite: bench/results/levers.json
    python bench/levers.py --quick            # a few requests per case

Every lever is one extra path beside direct / haproxy / chain (bench/run.py `--extra-chain`), so all of
them meet the same upstream, the same machine load and the same interleaving. The table at the end shows,
per scenario, each variant against `chain` (the shipped configuration).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench

RESULTS = Path(__file__).resolve().parent / "out" / "levers.json"  # raw; bench/summarize.py -> results/
# name -> (ChainSpec text, what it tests)
LEVERS: dict[str, tuple[str, str]] = {
    "asyncio_h11": ("variant=--loop asyncio --http h11", "uvicorn on the stdlib loop and h11 (no uvloop/httptools)"),
    "no_orjson": ("variant=--no-orjson", "the stdlib json module behind orjson's API"),
    "workers2": ("workers=2", "uvicorn --workers 2 behind the one port"),
    "nbthread1": ("haproxy=nbthread 1", "haproxy with one thread (default: one per CPU)"),
    "reuse_safe": (
        "haproxy=backend middleware:http-reuse safe",
        "haproxy's default reuse (the shipped chain has http-reuse always)",
    ),
    "no_nodelay": ("haproxy=defaults:no option http-no-delay", "haproxy without option http-no-delay"),
}
SCENARIOS = "chat_c1,chat_c64,chat_c16_close,stream_256x200,stream_256x200_paced,openclaw_20tools,prompt_1mb"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeat", type=int, default=None)
    p.add_argument("--scale", type=float, default=0.5, help="request counts relative to bench/run.py (default 0.5)")
    p.add_argument("--only", default=",".join(LEVERS), help=f"levers to run (default all: {','.join(LEVERS)})")
    p.add_argument("--scenarios", default=SCENARIOS)
    p.add_argument("--json", type=Path, default=RESULTS)
    args = p.parse_args()
    chosen = [x for x in args.only.split(",") if x]
    argv = ["--no-sweep", "--startup-runs", "0", "--only", args.scenarios, "--json", str(args.json)]
    argv += ["--quick"] if args.quick else ["--scale", str(args.scale)]
    argv += ["--repeat", str(args.repeat)] if args.repeat else []
    for name in chosen:
        argv += ["--extra-chain", f"{name};{LEVERS[name][0]}"]
    code = bench.main(argv)
    if code:
        return code
    summarize(json.loads(args.json.read_text()), chosen)
    return 0


def summarize(results: dict[str, Any], chosen: list[str]) -> None:
    print("\n== levers vs the shipped chain (medians; cpu = middleware + haproxy per request or per 1k chunks)")
    for name in chosen:
        print(f"  {name}: {LEVERS[name][1]}")
    for scenario, rows in results["cases"].items():
        streaming = results["scenarios"][scenario]["chunks"] > 0
        print(f"\n{scenario}: {results['scenarios'][scenario]['title']}")
        head = f"{'path':14s} {'p50 ms':>8s} {'p99 ms':>8s} {'req/s':>8s} {'chunks/s':>9s} {'err':>4s} {'cpu':>8s}"
        print(head + "  vs chain")
        base = rows["chain"]
        for path, r in rows.items():
            if path in ("direct", "haproxy") and path not in chosen:
                continue
            cpu = _cpu(r, streaming)
            rel = "" if path == "chain" else f"p50 {_pct(r['p50_ms'], base['p50_ms'])}, "
            rel += "" if path == "chain" else f"throughput {_pct(_tput(r, streaming), _tput(base, streaming))}"
            print(
                f"{path:14s} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} {r['rps']:8.0f} {r['chunks_per_s']:9.0f} "
                f"{r['errors']:4d} {cpu:8.4f}  {rel}"
            )


def _cpu(row: dict[str, Any], streaming: bool) -> float:
    table = row["cpu_s_per_1k_chunks"] if streaming else row["cpu_ms_per_req"]
    return sum(v for k, v in table.items() if k in ("middleware", "haproxy"))


def _tput(row: dict[str, Any], streaming: bool) -> float:
    return float(row["chunks_per_s"] if streaming else row["rps"])


def _pct(value: float, base: float) -> str:
    return f"{(value / base - 1) * 100:+.0f}%" if base else "n/a"


if __name__ == "__main__":
    raise SystemExit(main())
