"""The engines the live suites run against: the simulator, and SGLang's real server with a scripted scheduler.

`vllm serve` launches the second exactly as it launches SGLang in a pod (VLLM_SHIM_ENGINE=sglang), with the engine
program replaced through VLLM_SHIM_ENGINE_COMMAND by tests/sglang_engine/launch.py run in the cached server
environment (scripts/setup-sglang-server-env.sh). VLLM_SHIM_LIVE_ENGINES=sim narrows a local run to the simulator.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SGLANG_VERSION = os.environ.get("SGLANG_VERSION") or (REPO / "conf" / "sglang-version").read_text().strip()
SETUP = "scripts/setup-sglang-server-env.sh"
ALL_ENGINES = ("sim", "sglang")
# The real server imports for ~10 s and starts three processes: on a loaded 2-core machine, 20-40 s to ready.
READY_TIMEOUT = {"sim": 90.0, "sglang": 180.0}


def live_engines() -> list[str]:
    chosen = [e.strip() for e in os.environ.get("VLLM_SHIM_LIVE_ENGINES", ",".join(ALL_ENGINES)).split(",")]
    unknown = sorted(set(chosen) - set(ALL_ENGINES) - {""})
    if unknown:
        raise ValueError(f"VLLM_SHIM_LIVE_ENGINES: unknown engine(s) {unknown}; choose from {ALL_ENGINES}")
    return [e for e in ALL_ENGINES if e in chosen]


def server_env() -> Path:
    default = Path.home() / ".cache" / "vllm-shim" / f"sglang-server-{SGLANG_VERSION}"
    return Path(os.environ.get("VLLM_SHIM_SGLANG_SERVER_ENV") or default)


def engine_environ(engine: str) -> dict[str, str]:
    """What start_stack needs in the environment to run `engine` behind the stack."""
    if engine == "sim":
        return {"VLLM_SHIM_ENGINE": "sim"}
    env = server_env()
    if not (env / ".vllm-shim-stamp").exists():
        pytest.fail(f"the real-SGLang test environment is missing at {env}: run {SETUP}", pytrace=False)
    launcher = REPO / "tests" / "sglang_engine" / "launch.py"
    command = shlex.join([str(env / "bin" / "python"), str(launcher)])
    return {"VLLM_SHIM_ENGINE": "sglang", "VLLM_SHIM_ENGINE_COMMAND": command}


def engine_params(workers: tuple[tuple[int, ...], tuple[int, ...]] | None = None) -> list[object]:
    """pytest params: one module-scoped stack per engine, with the engine's name in each test id. With
    `workers` (middleware worker counts for the simulator and for real SGLang), one per (engine, count) and the
    param is that pair."""
    if workers is None:
        return [pytest.param(engine, id=engine) for engine in live_engines()]
    counts = dict(zip(ALL_ENGINES, workers, strict=True))
    return [pytest.param((engine, n), id=f"{engine}-{n}-worker{'s' if n > 1 else ''}")
            for engine in live_engines() for n in counts[engine]]  # fmt: skip
