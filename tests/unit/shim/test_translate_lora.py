"""LoRA as vLLM defaults it, stated to SGLang so that its launch checks hold (issue 11, item 2)."""

from __future__ import annotations

import shlex

import pytest

from shim.errors import CliError
from shim.translate import translate


def engine(line: str) -> list[str]:
    return list(translate(shlex.split(line), {}).engine_args)


def option(args: list[str], flag: str) -> list[str]:
    """The values after the last `flag` (up to the next option)."""
    index = len(args) - 1 - args[::-1].index(flag)
    values = []
    for word in args[index + 1 :]:
        if word.startswith("--"):
            break
        values.append(word)
    return values


def test_enable_lora_alone_states_vllm_defaults() -> None:
    args = engine("serve m --enable-lora")
    assert args.count("--enable-lora") == 1
    assert option(args, "--max-lora-rank") == ["16"]
    assert option(args, "--lora-target-modules") == ["all"]
    assert option(args, "--max-loras-per-batch") == ["1"]
    assert "--max-loaded-loras" not in args  # SGLang's default (no limit) holds at least vLLM's LRU cache


def test_lora_options_keep_their_vllm_meaning() -> None:
    args = engine(
        "serve m --enable-lora --max-lora-rank 64 --max-loras 4 --max-cpu-loras 8 --lora-target-modules q_proj v_proj"
    )
    assert option(args, "--max-lora-rank") == ["64"]
    assert option(args, "--max-loras-per-batch") == ["4"]
    assert option(args, "--max-loaded-loras") == ["8"]
    assert option(args, "--lora-target-modules") == ["q_proj", "v_proj"]
    for flag in ("--max-lora-rank", "--max-loras-per-batch", "--max-loaded-loras", "--lora-target-modules"):
        assert args.count(flag) == 1, flag


def test_lora_modules_enable_lora_and_are_all_kept_loaded() -> None:
    plan = translate(shlex.split("serve m --lora-modules a=/a b=/b c=/c --max-cpu-loras 1"), {})
    args = list(plan.engine_args)
    assert "--enable-lora" in args and option(args, "--lora-paths") == ["a=/a", "b=/b", "c=/c"]
    assert option(args, "--max-loaded-loras") == ["3"]
    assert any("keeps all 3" in w for w in plan.warnings)


def test_cpu_loras_below_max_loras_is_an_error_as_in_vllm() -> None:
    with pytest.raises(CliError, match="max_cpu_loras"):
        translate(shlex.split("serve m --enable-lora --max-loras 4 --max-cpu-loras 2"), {})


def test_lora_sizes_without_lora_are_ignored_with_a_warning() -> None:
    plan = translate(shlex.split("serve m --max-lora-rank 32"), {})
    assert not any(w.startswith("--max-lora") for w in plan.engine_args)
    assert any("LoRA is off" in w for w in plan.warnings)
