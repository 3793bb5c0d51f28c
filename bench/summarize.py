#!/usr/bin/env python3
"""Reduce a bench/run.py results file to the summary kept in bench/results/ (what docs/benchmarks.md cites).

    python bench/summarize.py bench/out/latest.json                  # writes bench/results/latest.json
    python bench/summarize.py bench/out/levers.json bench/results/levers.json

A run writes its raw results to bench/out/ (not committed): every repeat of every case, error samples and
full-precision floats. The summary keeps the same layout (bench/plot.py reads either) with the medians only,
rounded to 4 significant digits, so the committed file is small and a re-run's diff is readable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def summary(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: summary(v) for k, v in node.items() if not _raw(k, v)}
    if isinstance(node, list):
        return [summary(v) for v in node]
    if isinstance(node, float):
        return float(f"{node:.4g}")
    return node


def _raw(key: str, value: Any) -> bool:
    """Per-repeat rows (a case's `runs`, a list of rows; start-up `runs` are a few floats and stay) and samples."""
    per_repeat = key == "runs" and isinstance(value, list) and any(isinstance(v, dict) for v in value)
    return per_repeat or key == "error_samples"


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    raw = Path(argv[0])
    out = Path(argv[1]) if len(argv) == 2 else RESULTS / raw.name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary(json.loads(raw.read_text())), indent=1) + "\n")
    print(f"summary: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
