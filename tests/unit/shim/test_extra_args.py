"""SGLANG_EXTRA_ARGS cannot move or open the engine, whatever spelling argparse would accept."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from shim.errors import CliError
from shim.extra_args import RESERVED, check_extra_args, resolve, sglang_options
from shim.translate import translate

REFUSED = [
    ("--host 0.0.0.0", "--host"),
    ("--hos 0.0.0.0", "--hos"),
    ("--ho=0.0.0.0", "--ho"),
    ("--host=0.0.0.0", "--host"),
    ("--po 9", "--po"),
    ("--port=9", "--port"),
    ("--model x", "--model"),
    ("--mod x", "--mod"),
    ("--model-path=x", "--model-path"),
    ("--served-model x", "--served-model"),
    ("--api-k k", "--api-k"),
    ("--admin-api-key=k", "--admin-api-key"),
    ("--ssl-certfile c", "--ssl-certfile"),
    ("--grpc-mode", "--grpc-mode"),
    ("--conf f.yaml", "--conf"),
    ("--enable-cache-report --hos 0.0.0.0", "--hos"),
    # A word that looks like an option is one to argparse, even where a value was expected.
    ("--chat-template --host", "--host"),
]


@pytest.mark.parametrize(("extra", "named"), REFUSED)
def test_refused_word_is_named(extra: str, named: str) -> None:
    with pytest.raises(CliError) as caught:
        translate(["serve", "m"], {"SGLANG_EXTRA_ARGS": extra})
    assert f"SGLANG_EXTRA_ARGS: {named}" in str(caught.value)


@pytest.mark.parametrize(
    "extra",
    [
        "--grammar-backend xgrammar --enable-cache-report",
        "--no-enable-tf32-matmul",
        "--tokenizer-path /t",
        "--chat-template=--host",  # a value after `=` is a value
        "--json-model-override-args '{\"host\": 1}'",
    ],
)
def test_allowed(extra: str) -> None:
    plan = translate(["serve", "m"], {"SGLANG_EXTRA_ARGS": extra})
    words = tuple(shlex.split(extra))  # SGLANG_EXTRA_ARGS is shell words
    assert plan.engine_args[-len(words) :] == words


def test_resolution() -> None:
    assert resolve("--host") == {"host"}
    assert resolve("--hos=x") == {"host"}
    assert resolve("--nccl-init") == {"dist_init_addr"}  # a deprecated alias resolves to its destination
    assert resolve("--no-enable-tf32") == {"enable_tf32_matmul"}
    assert len(resolve("--h")) > 1  # ambiguous: argparse refuses it, and so do we when one meaning is reserved
    assert resolve("value") == resolve("--") == resolve("-") == frozenset()
    assert resolve("-hx") == {"help"}


def test_every_reserved_destination_exists_in_sglang() -> None:
    assert set(RESERVED) <= set(sglang_options().values())


def test_cli_exits_2_before_anything_starts(tmp_path: Path) -> None:
    env = {**os.environ, "SGLANG_EXTRA_ARGS": "--ho=0.0.0.0", "VLLM_SHIM_RUN_DIR": str(tmp_path / "run")}
    result = subprocess.run([sys.executable, "-m", "vllm", "serve", "m"], capture_output=True, text=True, env=env)
    assert result.returncode == 2 and not (tmp_path / "run").exists()
    assert result.stderr.count("\n") == 1 and "--ho (SGLang reads it as --host)" in result.stderr


def test_check_returns_the_words() -> None:
    assert check_extra_args(["--enable-cache-report"]) == ["--enable-cache-report"]
