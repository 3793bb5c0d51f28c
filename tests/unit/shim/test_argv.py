"""The vLLM argv grammar: every spelling vLLM's FlexibleArgumentParser accepts, and the errors it gives."""

from __future__ import annotations

import pytest

from shim.argv import normalize, parse
from shim.errors import CliError


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("--gpu_memory_utilization", "--gpu-memory-utilization"),
        ("--max_model_len=4k", "--max-model-len=4k"),
        ("--hf_overrides.rope_scaling.rope_type=x_y", "--hf-overrides.rope_scaling.rope_type=x_y"),
        ("-tp", "-tp"),
        ("model_name_with_underscores", "model_name_with_underscores"),
    ],
)
def test_normalize(token: str, expected: str) -> None:
    assert normalize(token) == expected


@pytest.mark.parametrize(
    ("argv", "dest", "value"),
    [
        (["m", "--gpu_memory_utilization", "0.8"], "gpu_memory_utilization", "0.8"),
        (["m", "--gpu-memory-utilization=0.8"], "gpu_memory_utilization", "0.8"),
        (["m", "--max_loras", "4"], "max_loras", "4"),
        (["m", "-tp", "2"], "tensor_parallel_size", "2"),
        (["m", "-tp=2"], "tensor_parallel_size", "2"),
        (["m", "-pp", "2"], "pipeline_parallel_size", "2"),
        (["m", "-dp", "2"], "data_parallel_size", "2"),
        (["m", "-q", "awq"], "quantization", "awq"),
        (["m", "-O3"], "optimization_level", "3"),
        (["m", "-O", "3"], "optimization_level", "3"),
        (["m", "-O=2"], "optimization_level", "2"),
        (["m", "-Odecode"], "optimization_level", "decode"),
        (["m", "--no-enable-prefix-caching"], "enable_prefix_caching", False),
        (["m", "--disable-prefix-caching"], "enable_prefix_caching", False),
        (["m", "--enable-prefix-caching"], "enable_prefix_caching", True),
        (["m", "--no-enable-chunked-prefill"], "enable_chunked_prefill", False),
        (["m", "--enable-chunked-prefill", "false"], "enable_chunked_prefill", False),
        (["m", "--enable-chunked-prefill"], "enable_chunked_prefill", True),
        (["m", "--served-model-name", "a", "b"], "served_model_name", ["a", "b"]),
        (["m", "--served-model-name=a"], "served_model_name", ["a"]),
        (["m", "--api-key", "k1", "k2"], "api_key", ["k1", "k2"]),
        (["m", "--lora-modules", "a=/x", "b=/y"], "lora_modules", ["a=/x", "b=/y"]),
        (["m", "--hf-token"], "hf_token", True),
        (["m", "--hf-token", "tok"], "hf_token", "tok"),
        (["m", "--tensor-parallel", "4"], "tensor_parallel_size", "4"),  # argparse prefix
        (["m", "--compilation-config.mode", "3"], "compilation_config", {"mode": 3}),
        (["m", "--seed", "-1"], "seed", "-1"),  # a negative number is a value, not an option
        (["m", "--middleware", "a.B", "--middleware", "c.D"], "middleware", ["a.B", "c.D"]),
    ],
)
def test_spellings(argv: list[str], dest: str, value: object) -> None:
    parsed = parse(argv)
    assert parsed.model == "m"
    assert parsed.values[dest] == value


def test_dotted_keys_merge_and_append() -> None:
    parsed = parse(
        [
            "m",
            "--compilation-config.mode",
            "3",
            "--compilation_config.level.x+",
            "a,b",
            "--compilation-config.level.x+=c",
        ]
    )
    assert parsed.values["compilation_config"] == {"mode": 3, "level": {"x": ["a", "b", "c"]}}


def test_last_value_wins_like_argparse() -> None:
    assert parse(["m", "--max-model-len", "1", "--max_model_len=2"]).values["max_model_len"] == "2"


@pytest.mark.parametrize(
    ("argv", "model"),
    [
        (["facebook/opt-125m"], "facebook/opt-125m"),
        (["--model", "x"], "x"),
        (["--model=x"], "x"),
        (["pos", "--model", "flag"], "pos"),  # vLLM: model_tag overwrites --model
        ([], None),
    ],
)
def test_model_positional_or_flag(argv: list[str], model: str | None) -> None:
    assert parse(argv).model == model


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["m", "--bogus-flag"], "unrecognized arguments: --bogus-flag"),
        (["m", "extra"], "unrecognized arguments: extra"),
        (["m", "--enable-prefix-caching", "true"], "unrecognized arguments: true"),  # vLLM >= 0.8
        (["m", "--max-model-len"], "expected one argument"),
        (["m", "--max-model-len", "--dtype", "half"], "expected one argument"),
        (["m", "--served-model-name"], "expected at least one argument"),
        (["m", "--enforce-eager=yes"], "ignored explicit argument"),
        (["m", "--max"], "ambiguous option: --max"),
        (["m", "--max-model-len.x", "1"], "does not take a JSON value"),
    ],
)
def test_errors(argv: list[str], message: str) -> None:
    with pytest.raises(CliError, match=message.replace(".", r"\.")):
        parse(argv)


def test_config_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "serve.yaml"
    config.write_text(
        "model: from/yaml\nmax_model_len: 2048\nenable-prefix-caching: false\ntrust_remote_code: true\n"
        "served-model-name: [a, b]\nkv-transfer-config: {kv_connector: X}\n"
    )
    parsed = parse(["--config", str(config), "--max-model-len", "4096"])
    assert parsed.model == "from/yaml"
    assert parsed.values["max_model_len"] == "4096"  # the command line wins over the file
    assert parsed.values["enable_prefix_caching"] is False
    assert parsed.values["trust_remote_code"] is True
    assert parsed.values["served_model_name"] == ["a", "b"]
    assert parsed.values["kv_transfer_config"] == '{"kv_connector": "X"}'
    assert parse(["cli/model", f"--config={config}"]).model == "cli/model"


@pytest.mark.parametrize("content", ["- a\n- b\n", "{unclosed: [\n"])
def test_bad_config_file(tmp_path, content: str) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "bad.yaml"
    config.write_text(content)
    with pytest.raises(CliError, match="--config"):
        parse(["m", "--config", str(config)])


def test_config_file_must_be_yaml(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CliError, match=r"\.yaml"):
        parse(["m", "--config", str(tmp_path / "x.json")])
