"""translate(argv, environ) → Plan, for every spelling the production stack emits, and its errors."""

from __future__ import annotations

import shlex

import pytest

from shim.errors import CliError
from shim.translate import translate

BASE = ["--host", "127.0.0.1", "--enable-metrics"]


def args_of(line: str, environ: dict[str, str] | None = None) -> list[str]:
    return list(translate(shlex.split(line), environ or {}).engine_args)


def pairs(args: list[str]) -> set[tuple[str, str]]:
    return set(zip(args, args[1:], strict=False))


# (vLLM command line, SGLang pairs or flags that must be present)
CASES = [
    # production-stack chart, minimal (helm unit test)
    ("serve facebook/opt-125m --host 0.0.0.0 --port 8000", [("--model-path", "facebook/opt-125m"), ("--port", "8001")]),
    # chart lmcache case (helm unit test)
    (
        "serve facebook/opt-125m --host 0.0.0.0 --port 8000 --enable-prefix-caching --max-model-len 1024 "
        "--gpu_memory_utilization 0.8 "
        '--kv-transfer-config \'{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both"}\'',
        [("--context-length", "1024"), ("--mem-fraction-static", "0.8")],
    ),
    # operator: always both chunked-prefill and prefix-caching switches, underscore spellings
    (
        "serve m --host 0.0.0.0 --port 8000 --enable-lora --enable-auto-tool-choice --tool-call-parser llama3_json "
        "--no-enable-chunked-prefill --no-enable-prefix-caching --max-model-len 4096 --dtype bfloat16 "
        "--tensor-parallel-size 2 --max-num-seqs 64 --gpu_memory_utilization 0.9 --max_loras 4 "
        "--chat-template /templates//templates/x.jinja",
        [
            ("--tool-call-parser", "llama3"),
            ("--chunked-prefill-size", "-1"),
            "--disable-radix-cache",
            ("--context-length", "4096"),
            ("--dtype", "bfloat16"),
            ("--tensor-parallel-size", "2"),
            ("--max-running-requests", "64"),
            ("--mem-fraction-static", "0.9"),
            ("--max-loras-per-batch", "4"),
            "--enable-lora",
            ("--chat-template", "/templates/x.jinja"),
        ],
    ),
    (
        "serve m --gpu-memory-utilization 0.8 --enable-sleep-mode --enforce-eager",
        ["--enable-memory-saver", "--enable-weights-cpu-backup"]
        + ["--disable-decode-cuda-graph", "--disable-prefill-cuda-graph"],
    ),
    ("serve m --served-model-name Qwen/Qwen3-8B qwen3", [("--served-model-name", "Qwen/Qwen3-8B")]),
    ("serve m --max-model-len 32k", [("--context-length", "32000")]),
    ("serve m --max-model-len 32K", [("--context-length", "32768")]),
    ("serve m --max-model-len 1.048576e+06", [("--context-length", "1048576")]),  # Helm's %v of a float64
    ("serve m --kv-cache-dtype fp8", [("--kv-cache-dtype", "fp8_e4m3")]),
    ("serve m --kv-cache-dtype fp8_e5m2", [("--kv-cache-dtype", "fp8_e5m2")]),
    ("serve m --seed 7", [("--random-seed", "7")]),
    (
        # "m" has no readable config: attention DP on the same 8 GPUs (tests/unit/shim/test_translate_topology.py)
        "serve m -tp 2 -pp 2 -dp 2",
        [("--tensor-parallel-size", "4"), ("--pipeline-parallel-size", "2"), ("--attn-dp-size", "2")],
    ),
    ("serve m --max-num-batched-tokens 8192", [("--chunked-prefill-size", "8192")]),
    ("serve m --enable-chunked-prefill --max-num-batched-tokens 8k", [("--chunked-prefill-size", "8000")]),
    (
        "serve m --no-enable-chunked-prefill --max-num-batched-tokens 8192",
        [("--chunked-prefill-size", "-1"), ("--max-prefill-tokens", "8192")],
    ),
    (
        "serve m --trust-remote-code --revision main --download-dir /d",
        ["--trust-remote-code", ("--revision", "main"), ("--download-dir", "/d")],
    ),
    (
        "serve m --enable-lora --lora-modules a=/x b=/y --max-lora-rank 16 --max-cpu-loras 8",
        [("--lora-paths", "a=/x"), ("a=/x", "b=/y"), ("--max-lora-rank", "16"), ("--max-loaded-loras", "8")],
    ),
    (
        'serve m --lora-modules \'{"name": "a", "path": "/x", "base_model_name": "m"}\'',
        ["--enable-lora", ("--lora-paths", "a=/x")],
    ),
    ("serve m --reasoning-parser deepseek_r1", [("--reasoning-parser", "deepseek-r1")]),
    ("serve m --tool-call-parser hermes", [("--tool-call-parser", "hermes")]),
    ("serve m --quantization awq", [("--quantization", "awq")]),
    ("serve m --runner pooling --convert embed", ["--is-embedding"]),
    ("serve m --generation-config vllm", [("--sampling-defaults", "openai")]),
    ("serve m --uvicorn-log-level debug --log-level DEBUG", [("--log-level-http", "debug"), ("--log-level", "debug")]),
    ("serve m --enable-expert-parallel -tp 4", [("--ep-size", "4")]),
    (
        'serve m --hf-overrides \'{"rope_scaling": {"type": "yarn"}}\'',
        [("--json-model-override-args", '{"rope_scaling":{"type":"yarn"}}')],
    ),
    ("serve m --block-size 32", [("--page-size", "32")]),
    ("serve m --enable-log-requests", ["--log-requests"]),
    ("serve m --tokenizer other/tok", [("--tokenizer-path", "other/tok")]),
]


@pytest.mark.parametrize(("line", "expected"), CASES, ids=[c[0][:60] for c in CASES])
def test_translation(line: str, expected: list) -> None:  # type: ignore[type-arg]
    args = args_of(line)
    assert set(BASE) <= set(args)
    have_pairs = pairs(args)
    for item in expected:
        if isinstance(item, tuple):
            assert item in have_pairs, f"{item} not in {args}"
        else:
            assert item in args, f"{item} not in {args}"


def test_sglang_always_gets_loopback_metrics_and_full_spellings() -> None:
    args = args_of("serve m --port 9000 -pp 2")
    assert pairs(args) >= {("--host", "127.0.0.1"), ("--port", "9001"), ("--model-path", "m")}
    assert "--enable-metrics" in args
    assert "--pp" not in args and "--tp" not in args


@pytest.mark.parametrize(
    ("line", "absent"),
    [
        ("serve m --enable-prefix-caching", "--disable-radix-cache"),
        ("serve m --enable-chunked-prefill", "--chunked-prefill-size"),
        ("serve m --max-model-len auto", "--context-length"),
        ("serve m --disable-log-requests --disable-log-stats", "--disable-log-requests"),
        ("serve m --enable-auto-tool-choice --tool-call-parser hermes", "--enable-auto-tool-choice"),
        ("serve m --tokenizer-mode mistral", "--tokenizer-mode"),
    ],
)
def test_no_sglang_flag(line: str, absent: str) -> None:
    assert absent not in args_of(line)


def test_dropped_flags_are_listed_with_reasons_and_loss_is_a_warning() -> None:
    plan = translate(shlex.split("serve m --kv-transfer-config {} --disable-log-stats --swap-space 4"), {})
    dropped = {d.flag: d.reason for d in plan.dropped}
    assert set(dropped) == {"--kv-transfer-config", "--disable-log-stats", "--swap-space"}
    assert any("--kv-transfer-config" in w and "KV" in w for w in plan.warnings)
    assert not any("--disable-log-stats" in w for w in plan.warnings)


def test_served_names_all_known_to_middleware() -> None:
    plan = translate(shlex.split("serve m --served-model-name a b c"), {})
    assert plan.served_model_name == "a"
    assert plan.middleware.served_model_names == ("a", "b", "c")
    assert any("'b'" in w for w in plan.warnings)


def test_api_key_from_flag_or_env_never_reaches_the_engine() -> None:
    plan = translate(shlex.split("serve m --api-key s3cret other"), {})
    assert plan.middleware.api_keys == ("s3cret", "other")
    assert "--api-key" not in plan.engine_args and "s3cret" not in " ".join(plan.engine_args)
    assert "s3cret" not in str(plan.summary())
    env_plan = translate(["serve", "m"], {"VLLM_API_KEY": "fromenv"})
    assert env_plan.middleware.api_keys == ("fromenv",)
    assert translate(["serve", "m", "--api-key", "flag"], {"VLLM_API_KEY": "env"}).middleware.api_keys == ("flag",)


def test_env_overrides() -> None:
    environ = {
        "SGLANG_TOOL_CALL_PARSER": "qwen25",
        "SGLANG_EXTRA_ARGS": "--grammar-backend xgrammar --enable-cache-report",
        "VLLM_SHIM_ENGINE_PORT": "7001",
        "VLLM_SHIM_MIDDLEWARE_PORT": "7002",
        "VLLM_SHIM_ENGINE": "sim",
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
        "VLLM_SERVER_DEV_MODE": "1",
    }
    plan = translate(shlex.split("serve m --tool-call-parser hermes --port 7000"), environ, python="/py")
    args = list(plan.engine_args)
    assert ("--tool-call-parser", "qwen25") in pairs(args)  # the env wins over the flag, as in the seed
    assert args[-3:] == ["--grammar-backend", "xgrammar", "--enable-cache-report"]
    assert (plan.ports.public, plan.ports.engine, plan.ports.middleware) == (7000, 7001, 7002)
    assert plan.engine_program == ("/py", "-m", "sim")
    assert plan.middleware.allow_runtime_lora and plan.middleware.dev_mode
    assert plan.middleware.engine_url == "http://127.0.0.1:7001"


def test_engine_command_override() -> None:
    plan = translate(["serve", "m"], {"VLLM_SHIM_ENGINE_COMMAND": "sglang serve --foo 'a b'"})
    assert plan.engine_program == ("sglang", "serve", "--foo", "a b")


def test_default_model_like_vllm() -> None:
    plan = translate(["serve"], {})
    assert plan.model == "Qwen/Qwen3-0.6B"
    assert any("no model" in w for w in plan.warnings)


def test_translate_is_pure() -> None:
    line = shlex.split("serve m --served-model-name a b --lora-modules x=/y --api-key k")
    assert translate(line, {}) == translate(line, {})


# Every bad command line: exit 2 with a one-line reason that names the flag.
BAD = [
    ("serve m --bogus", "--bogus"),
    ("serve m --tool-call-parser nope", "--tool-call-parser"),
    ("serve m --reasoning-parser nope", "--reasoning-parser"),
    ("serve m --enable-auto-tool-choice", "--enable-auto-tool-choice"),
    ("serve m --kv-cache-dtype fp4_weird", "--kv-cache-dtype"),
    ("serve m --dtype float8", "--dtype"),
    ("serve m --quantization nonsense", "--quantization"),
    ("serve m --gpu-memory-utilization 1.5", "--gpu-memory-utilization"),
    ("serve m --gpu-memory-utilization lots", "--gpu-memory-utilization"),
    ("serve m --max-model-len 1.0005k", "--max-model-len"),
    ("serve m --max-model-len abc", "--max-model-len"),
    ("serve m --max-num-seqs many", "--max-num-seqs"),
    ("serve m --port 99999", "port"),
    ("serve m --port abc", "--port"),
    ("serve m --uds /tmp/s", "--uds"),
    ("serve m --ssl-keyfile k.pem", "--ssl-keyfile"),
    ("serve m --headless", "--headless"),
    ("serve m --lora-modules broken", "--lora-modules"),
    ("serve m --hf-overrides {bad", "--hf-overrides"),
    ("serve m --generation-config /some/dir", "--generation-config"),
    ("serve m --runner draft", "--runner"),
    ("serve m --middleware my.Middleware", "--middleware"),
    ("serve m --max-model-len", "--max-model-len"),
]


@pytest.mark.parametrize(("line", "names"), BAD, ids=[b[0] for b in BAD])
def test_bad_command_lines(line: str, names: str) -> None:
    with pytest.raises(CliError) as info:
        translate(shlex.split(line), {})
    message = str(info.value)
    assert names in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"VLLM_SHIM_ENGINE_PORT": "8000"}, "ports must differ"),
        ({"VLLM_SHIM_ENGINE_PORT": "x"}, "VLLM_SHIM_ENGINE_PORT"),
        ({"VLLM_SHIM_ENGINE": "vllm"}, "VLLM_SHIM_ENGINE"),
        ({"SGLANG_EXTRA_ARGS": "--port 1"}, "SGLANG_EXTRA_ARGS"),
        ({"SGLANG_EXTRA_ARGS": "'unclosed"}, "SGLANG_EXTRA_ARGS"),
        ({"SGLANG_TOOL_CALL_PARSER": "nope"}, "SGLANG_TOOL_CALL_PARSER"),
    ],
)
def test_bad_environment(environ: dict[str, str], names: str) -> None:
    with pytest.raises(CliError, match=names):
        translate(["serve", "m"], environ)
