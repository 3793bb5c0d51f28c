"""Time `needs_parse`, `orjson.loads` and `rewrite` on an OpenClaw-style chat body with 20 MCP-style tools.

Run: `python bench/bench_rewrite.py [--tools N] [--repeat R]`. Prints microseconds per call (best of R
rounds, each averaged over many calls; `cold`: the median of single calls with the schema cache emptied, an
agent's first turn). No thresholds are asserted anywhere; this is for people.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import timeit
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bodies  # bench/: the same OpenClaw body the proxy benchmark sends

from middleware.config import MiddlewareConfig
from middleware.rewrite import schema
from middleware.rewrite.base import RewriteContext
from middleware.rewrite.route_rules import dump, needs_parse, rewrite

ROUTE = "/v1/chat/completions"


def per_call_us(fn: Any, repeat: int) -> float:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def cold_us(body: dict[str, Any], ctx: RewriteContext, rounds: int = 30) -> float:
    """Median of single rewrites with the schema cache emptied first: an agent's first turn."""
    times = []
    for _ in range(rounds):
        schema.clear_cache()
        start = time.perf_counter()
        rewrite(ROUTE, body, ctx)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tools", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ctx = RewriteContext(MiddlewareConfig(served_model_names=(bodies.MODEL,)))
    plain = {"model": bodies.MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 64}
    cases = {
        "plain chat (no tools)": plain,
        f"openclaw {args.tools} tools, clean": bodies.openclaw_dict(args.tools, messy_every=0),
        f"openclaw {args.tools} tools, every 5th messy": bodies.openclaw_dict(args.tools),
        f"openclaw {args.tools} tools, all messy": bodies.openclaw_dict(args.tools, messy_every=1),
    }
    for name, body in cases.items():
        raw = dump(body)
        result = rewrite(ROUTE, body, ctx)
        print(f"{name}: {len(raw)} bytes, needs_parse={needs_parse(ROUTE, raw, ctx)}, changed={result.changed}")
        print(f"  needs_parse  {per_call_us(lambda raw=raw: needs_parse(ROUTE, raw, ctx), args.repeat):8.1f} us")
        print(f"  orjson.loads {per_call_us(lambda raw=raw: orjson.loads(raw), args.repeat):8.1f} us")
        print(f"  rewrite      {per_call_us(lambda body=body: rewrite(ROUTE, body, ctx), args.repeat):8.1f} us")
        print(f"  rewrite cold {cold_us(body, ctx):8.1f} us  (empty schema cache, median)")
        if result.changed:
            print(f"  dump         {per_call_us(lambda b=result.body: dump(b), args.repeat):8.1f} us")


if __name__ == "__main__":
    main()
