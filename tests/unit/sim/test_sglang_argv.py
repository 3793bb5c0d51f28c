"""The simulator's SGLang command line, its config resolution and its environment knobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sim.knobs import KNOBS, Fault, Settings, SettingsError, env_table_markdown
from sim.sglang_argv import _flags_text, build_parser, human_readable_int, parse_args, parse_lora_paths
from sim.sglang_options import DEFAULT_CONTEXT_LENGTH, SimConfig

REPO = Path(__file__).resolve().parents[3]
FLAGS = json.loads(_flags_text())["flags"]
SAMPLE_BY_TYPE = {"int": "1", "float": "0.5", "human_readable_int": "2k", "loads": "{}", "json_list_type": "[]"}


def _sample_argv(flag: dict[str, Any]) -> list[str]:
    option = flag["option_strings"][0]
    if not flag["takes_value"]:
        return [option]
    value = str(flag["choices"][0]) if flag["choices"] else SAMPLE_BY_TYPE.get(flag["type"], "x")
    return [option] if flag["nargs"] in ("*", "?") else [option, value]


def test_every_real_sglang_option_is_accepted_with_its_arity() -> None:
    parser = build_parser()
    for flag in FLAGS:
        if flag["dest"] == "model_path":
            continue
        args = parser.parse_args(["--model-path", "m", *_sample_argv(flag)])
        assert hasattr(args, flag["dest"]), flag["option_strings"]


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--model-path", "m", "--no-such-flag"], id="unknown-option"),
        pytest.param(["--model-path", "m", "--tp", "2"], id="abbreviation"),
        pytest.param(["--model-path", "m", "--served-model-name", "a", "b"], id="served-name-is-single"),
        pytest.param(["--port", "1"], id="model-path-required"),
        pytest.param(["--model-path", "m", "--enable-metrics", "yes"], id="store-true-takes-no-value"),
        pytest.param(["--model-path", "m", "--tokenizer-mode", "mistral"], id="bad-choice"),
        pytest.param(["--model-path", "m", "--context-length", "lots"], id="bad-int"),
    ],
)
def test_rejected_command_lines_exit_2_like_argparse(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2


def test_arity_and_special_types() -> None:
    args = parse_args([
        "--model", "org/model", "--context-length", "32Ki", "--tp-size", "2", "--numa-node", "0", "1",
        "--lora-paths", "a", "b=/p/b", '{"lora_name": "c", "lora_path": "/p/c", "pinned": true}',
        "--model-checksum", "--no-enable-tf32-matmul", "--json-model-override-args", '{"x": 1}',
    ])
    assert args.model_path == "org/model"
    assert args.context_length == 32768
    assert args.tp_size == 2
    assert args.numa_node == [0, 1]
    assert args.model_checksum is None
    assert args.enable_tf32_matmul is False
    assert parse_lora_paths(args.lora_paths) == {"a": "a", "b": "/p/b", "c": "/p/c"}


@pytest.mark.parametrize(("text", "value"), [("4096", 4096), ("32k", 32000), ("32K", 32000), ("32Ki", 32768),
                                             ("1M", 1_000_000), ("1Mi", 1 << 20)])
def test_human_readable_int(text: str, value: int) -> None:
    assert human_readable_int(text) == value


def test_config_defaults_and_lora_implies_enable() -> None:
    cfg = SimConfig.from_args(parse_args(["--model-path", "/models/x", "--lora-paths", "ad=/p"]))
    assert cfg.served_model_name == "/models/x"
    assert cfg.context_length == DEFAULT_CONTEXT_LENGTH
    assert cfg.enable_lora and cfg.lora_adapters == {"ad": "/p"}
    assert cfg.host == "127.0.0.1" and cfg.port == 30000


def test_config_log_line_masks_keys() -> None:
    line = SimConfig.from_args(parse_args(["--model-path", "m", "--api-key", "s3cret"])).describe()
    assert "s3cret" not in line and "api_key='***'" in line


def test_settings_defaults() -> None:
    s = Settings.from_env({})
    assert (s.load_seconds, s.warmup_seconds, s.tokens_per_second, s.ttft_seconds) == (2.0, 1.0, 200.0, 0.0)
    assert s.health_delay_seconds == 0.0 and s.parsed_fault() == Fault()


@pytest.mark.parametrize(
    ("fault", "parsed"),
    [("crash_on_load", Fault("crash_on_load")), ("garbage", Fault("garbage")),
     ("crash_after:2.5", Fault("crash_after", 2.5)), ("", Fault())],
)
def test_fault_parsing(fault: str, parsed: Fault) -> None:
    assert Settings.from_env({"VLLM_SHIM_SIM_FAULT": fault}).parsed_fault() == parsed


@pytest.mark.parametrize(
    "environ",
    [{"VLLM_SHIM_SIM_FAULT": "explode"}, {"VLLM_SHIM_SIM_FAULT": "crash_after:soon"},
     {"VLLM_SHIM_SIM_FAULT": "garbage:1"}, {"VLLM_SHIM_SIM_LOAD_SECONDS": "two"},
     {"VLLM_SHIM_SIM_TOKENS_PER_SECOND": "-1"}],
)
def test_bad_knobs_are_rejected_with_the_variable_name(environ: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="VLLM_SHIM_SIM_"):
        Settings.from_env(environ)


def test_knob_table_is_declared_once_and_documented() -> None:
    assert [k.env for k in KNOBS] == [
        "VLLM_SHIM_SIM_LOAD_SECONDS", "VLLM_SHIM_SIM_WARMUP_SECONDS", "VLLM_SHIM_SIM_TOKENS_PER_SECOND",
        "VLLM_SHIM_SIM_TTFT_SECONDS", "VLLM_SHIM_SIM_HEALTH_DELAY_SECONDS", "VLLM_SHIM_SIM_FAULT",
    ]
    assert env_table_markdown() in (REPO / "docs" / "simulator.md").read_text(), "regenerate the docs table"
