"""The commands as users run them: `vllm`, `vllm-shim`, and the module paths that stand in for vLLM's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PY = sys.executable


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize("flag", ["--version", "-v"])
def test_version(flag: str) -> None:
    result = run("-m", "vllm", flag)
    assert result.returncode == 0
    assert result.stdout.startswith("0.33.0 ")
    assert len(result.stdout.splitlines()) == 1


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "vllm", "serve", "--help"],
        ["-m", "vllm", "serve", "some/model", "--port", "1", "-h"],
        ["-m", "vllm.entrypoints.cli.main", "serve", "--help"],
        ["-m", "vllm.entrypoints.openai.api_server", "--help"],
    ],
)
def test_help_starts_nothing(command: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "VLLM_SHIM_RUN_DIR": str(tmp_path / "run")}
    result = run(*command, env=env)
    assert result.returncode == 0
    assert "usage: vllm serve" in result.stdout and "--max-model-len" in result.stdout
    assert not (tmp_path / "run").exists()


def test_translate_prints_the_plan_with_exact_keys() -> None:
    result = run("-m", "shim", "translate", "--", "serve", "m", "--api-key", "s3cret", "--served-model-name", "a", "b")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert set(plan) == {"engine_args", "dropped", "warnings", "ports", "served_model_name"}
    assert plan["served_model_name"] == "a"
    assert plan["ports"] == {"public": 8000, "middleware": 8002, "engine": 8001}
    assert "s3cret" not in result.stdout and "--api-key" not in plan["engine_args"]


@pytest.mark.parametrize(
    "args",
    [
        ["-m", "shim", "translate", "--", "serve", "m", "--nope"],
        ["-m", "vllm", "serve", "m", "--kv-cache-dtype", "int3"],
        ["-m", "vllm.entrypoints.openai.api_server", "--model", "m", "--tool-call-parser", "nope"],
    ],
)
def test_bad_command_line_exits_2_with_one_line(args: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "VLLM_SHIM_RUN_DIR": str(tmp_path / "run")}
    result = run(*args, env=env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(("vllm serve: error:", "vllm-shim translate: error:"))
    assert not (tmp_path / "run").exists()


def test_api_server_module_takes_model_flag() -> None:
    from shim.translate import split_command, translate

    assert translate(split_command(["--model", "m", "--port", "9000"]), {}).model == "m"


def test_unsupported_subcommand() -> None:
    result = run("-m", "vllm", "bench", "serve")
    assert result.returncode == 2 and "only 'vllm serve'" in result.stderr


def test_render_writes_configs(tmp_path: Path) -> None:
    result = run("-m", "shim", "render", str(tmp_path / "out"), "--", "serve", "m")
    assert result.returncode == 0, result.stderr
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"supervisord.conf", "haproxy.cfg", "middleware.json"}
