"""`python bench/run.py --quick`: the benchmark runs every scenario on every path and reports numbers.

A smoke test only: a few requests per case, real processes (the fake upstream, haproxy twice, the
middleware, `vllm serve` with the simulated engine). No timing is asserted; the numbers only have to exist.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (apt-get install haproxy)"),
]
PATHS = ("direct", "haproxy", "chain")
MAIN = (
    "chat_c1", "chat_c64", "chat_c16_close", "stream_32x200", "stream_256x200", "stream_256x200_paced",
    "openclaw_20tools", "prompt_1mb",
)  # fmt: skip
SWEEP = tuple(f"sweep_chat_c{c}" for c in (1, 4, 16, 64, 256)) + tuple(f"sweep_stream_c{c}" for c in (1, 16, 64, 256))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    command = [sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--json", str(out)]
    # A guard against a hang, not a performance bound.
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout, json.loads(out.read_text())


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def test_every_scenario_ran_on_every_path(quick_run: tuple[str, dict[str, Any]]) -> None:
    stdout, results = quick_run
    assert set(results["cases"]) == set(MAIN + SWEEP)
    for name, rows in results["cases"].items():
        assert set(rows) == set(PATHS), name
        for path, row in rows.items():
            assert row["requests"] > 0 and row["errors"] == 0, (name, path, row["error_samples"])
            for key in ("p50_ms", "p99_ms", "ttfb_p50_ms", "rps", "chunks_per_s"):
                assert _number(row[key]), (name, path, key)
            assert set(row["cpu_ms_per_req"]) >= {"upstream", "client"}
            if results["scenarios"][name]["chunks"]:
                assert row["events"] > 0 and "cpu_s_per_1k_chunks" in row
    for name in MAIN:
        assert f"== {name}:" in stdout
    for path in PATHS:
        assert f"\n{path} " in stdout


def test_cpu_and_memory_are_reported_per_program(quick_run: tuple[str, dict[str, Any]]) -> None:
    _, results = quick_run
    chain = results["cases"]["chat_c1"]["chain"]
    assert set(chain["cpu_ms_per_req"]) == {"haproxy", "middleware", "upstream", "client"}
    assert all(_number(v) for v in chain["cpu_ms_per_req"].values())
    assert set(chain["rss_mb"]) == {"haproxy", "middleware", "upstream"}
    assert all(v > 0 for v in chain["rss_mb"].values())


def test_startup_rewrite_and_targets_are_reported(quick_run: tuple[str, dict[str, Any]]) -> None:
    stdout, results = quick_run
    assert results["startup"]["runs"] and all(_number(x) and x > 0 for x in results["startup"]["runs"])
    assert set(results["startup"]["phases_s"]) == {"supervisord", "haproxy", "listening"}
    claw = results["rewrite"]["openclaw_20tools"]
    assert all(_number(claw[k]) for k in ("needs_parse_us", "loads_us", "rewrite_us", "dump_us"))
    targets = {t["target"] for t in results["targets"]}
    # Every goal of issue 13 but worker scaling (its chain_w2 path is left out of --quick runs).
    assert len(targets) == 9 and not any("workers" in t for t in targets), targets
    assert all(_number(t["value"]) for t in results["targets"])
    assert "== goals" in stdout and "| goal | value | target |" in stdout and "load average" in stdout
