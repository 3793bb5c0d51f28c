"""Speculative decoding, KV offload, P/D roles and the audited drop rows (issue 11, items 5-8)."""

from __future__ import annotations

import json
import shlex

import pytest

from shim.errors import CliError
from shim.translate import translate


def plan_of(argv: list[str], environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return translate(["serve", "m", *argv], environ or {})


def after(args: tuple[str, ...], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args else None


def spec(config: dict[str, object], *extra: str):  # type: ignore[no-untyped-def]
    return plan_of(["--speculative-config", json.dumps(config), *extra])


@pytest.mark.parametrize(
    ("config", "algorithm", "draft"),
    [
        ({"method": "eagle", "model": "d/eagle", "num_speculative_tokens": 3}, "EAGLE", "d/eagle"),
        ({"method": "eagle3", "model": "d/e3", "num_speculative_tokens": 3}, "EAGLE3", "d/e3"),
        (
            {"model": "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B", "num_speculative_tokens": 3},
            "EAGLE3",
            "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B",
        ),
        ({"model": "small/draft", "num_speculative_tokens": 3}, "STANDALONE", "small/draft"),
        ({"method": "draft_model", "model": "small/draft", "num_speculative_tokens": 3}, "STANDALONE", "small/draft"),
        ({"method": "deepseek_mtp", "num_speculative_tokens": 3}, "EAGLE", None),
        ({"method": "mtp", "num_speculative_tokens": 3}, "EAGLE", None),
    ],
)
def test_speculative_methods_draft_a_chain_of_n(config: dict[str, object], algorithm: str, draft: str | None) -> None:
    args = spec(config).engine_args
    assert after(args, "--speculative-algorithm") == algorithm
    assert after(args, "--speculative-draft-model-path") == draft
    assert (after(args, "--speculative-num-steps"), after(args, "--speculative-eagle-topk")) == ("3", "1")
    assert after(args, "--speculative-num-draft-tokens") == "4"


def test_ngram_keeps_the_token_count_and_lists_the_window() -> None:
    plan = spec({"method": "ngram", "num_speculative_tokens": 5, "prompt_lookup_max": 4, "prompt_lookup_min": 2})
    assert after(plan.engine_args, "--speculative-algorithm") == "NGRAM"
    assert after(plan.engine_args, "--speculative-num-draft-tokens") == "5"
    assert {d.flag for d in plan.dropped} == {"speculative prompt_lookup_max", "speculative prompt_lookup_min"}


def test_old_speculative_flags() -> None:
    args = plan_of(["--speculative-model", "small/draft", "--num-speculative-tokens", "2"]).engine_args
    assert after(args, "--speculative-algorithm") == "STANDALONE" and after(args, "--speculative-num-steps") == "2"
    ngram = plan_of(["--speculative-model", "[ngram]", "--num-speculative-tokens", "4"]).engine_args
    assert after(ngram, "--speculative-algorithm") == "NGRAM"


def test_medusa_and_vllm_only_keys_are_listed_drops() -> None:
    medusa = spec({"method": "medusa", "model": "m/medusa", "num_speculative_tokens": 3})
    assert "--speculative-algorithm" not in medusa.engine_args
    assert any("Medusa" in d.reason for d in medusa.dropped) and any("Medusa" in w for w in medusa.warnings)
    other = spec({"method": "eagle", "model": "d", "draft_tensor_parallel_size": 1, "max_model_len": 10}, "-tp", "4")
    assert {d.flag for d in other.dropped} == {"speculative draft_tensor_parallel_size", "speculative max_model_len"}


@pytest.mark.parametrize("bad", ['{"method": "eagle"}', "[1]", "{nope", '{"method": "warp"}'])
def test_bad_speculative_configs_are_errors(bad: str) -> None:
    with pytest.raises(CliError, match="--speculative-config"):
        plan_of(["--speculative-config", bad])


LMCACHE = json.dumps({"kv_connector": "LMCacheConnectorV1", "kv_role": "kv_both"})


def test_lmcache_cpu_offload_is_hicache_of_the_same_size() -> None:
    env = {"LMCACHE_LOCAL_CPU": "True", "LMCACHE_MAX_LOCAL_CPU_SIZE": "40", "LMCACHE_CHUNK_SIZE": "256"}
    plan = plan_of(["--kv-transfer-config", LMCACHE], env)
    assert "--enable-hierarchical-cache" in plan.engine_args
    assert after(plan.engine_args, "--hicache-size") == "40"
    assert {d.flag for d in plan.dropped} == {"LMCACHE_CHUNK_SIZE"}
    assert after(plan_of(["--kv-transfer-config", LMCACHE]).engine_args, "--hicache-size") == "5"  # LMCache's default
    off = plan_of(["--kv-transfer-config", LMCACHE], {"LMCACHE_LOCAL_CPU": "False"})
    assert "--enable-hierarchical-cache" not in off.engine_args


def test_remote_lmcache_and_its_controller_do_not_carry_over() -> None:
    env = {
        "LMCACHE_REMOTE_URL": "lm://cache:65432",
        "LMCACHE_ENABLE_CONTROLLER": "True",
        "LMCACHE_MAX_LOCAL_DISK_SIZE": "100",
    }
    plan = plan_of(["--kv-transfer-config", LMCACHE], env)
    assert {d.flag for d in plan.dropped} == set(env)
    assert sum("ignored" in w for w in plan.warnings) == 3


def test_native_offloading_size_is_split_over_the_ranks() -> None:
    args = plan_of(
        ["-tp", "4", "-pp", "2", "--kv-offloading-size", "160", "--kv-offloading-backend", "native"]
    ).engine_args
    assert after(args, "--hicache-size") == "20"


@pytest.mark.parametrize(
    ("config", "mode", "backend"),
    [
        ({"kv_connector": "NixlConnector", "kv_role": "kv_producer"}, "prefill", "nixl"),
        ({"kv_connector": "NixlConnector", "kv_role": "kv_consumer"}, "decode", "nixl"),
        ({"kv_connector": "MooncakeConnector", "kv_role": "kv_consumer"}, "decode", "mooncake"),
        (
            {
                "kv_connector": "LMCacheConnectorV1",
                "kv_role": "kv_producer",
                "kv_connector_extra_config": {"discard_partial_chunks": False, "lmcache_rpc_port": "producer1"},
            },
            "prefill",
            "nixl",
        ),
    ],
)
def test_pd_roles(config: dict[str, object], mode: str, backend: str) -> None:
    args = plan_of(["--kv-transfer-config", json.dumps(config)]).engine_args
    assert after(args, "--disaggregation-mode") == mode
    assert after(args, "--disaggregation-transfer-backend") == backend
    assert after(args, "--disaggregation-bootstrap-port") == "8998"


def test_nixl_without_a_role_is_an_error() -> None:
    with pytest.raises(CliError, match="kv_producer"):
        plan_of(["--kv-transfer-config", '{"kv_connector": "NixlConnector", "kv_role": "kv_both"}'])


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('--kv-events-config \'{"publisher":"zmq"}\'', ["--kv-events-config"]),
        ("--scheduling-policy priority", ["--enable-priority-scheduling", "--schedule-low-priority-values-first"]),
        ("--stream-interval 8", ["--stream-interval", "8"]),
        ("--otlp-traces-endpoint grpc://otel:4317", ["--enable-trace", "--otlp-traces-endpoint", "otel:4317"]),
        ("--enable-prompt-tokens-details", ["--enable-cache-report"]),
        ("--tool-server demo", ["--tool-server", "demo"]),
        ("--enable-mfu-metrics", ["--enable-mfu-metrics"]),
    ],
)
def test_audited_rows_now_map(line: str, expected: list[str]) -> None:
    args = plan_of(shlex.split(line)).engine_args
    for word in expected:
        assert word in args, f"{word} not in {args}"


def test_fcfs_is_sglangs_default() -> None:
    assert "--enable-priority-scheduling" not in plan_of(["--scheduling-policy", "fcfs"]).engine_args


def test_offload_without_prefix_caching_is_a_listed_drop() -> None:
    plan = plan_of(["--no-enable-prefix-caching", "--kv-transfer-config", LMCACHE])
    assert "--enable-hierarchical-cache" not in plan.engine_args
    assert any("prefix cache" in d.reason for d in plan.dropped)


FULL_LINES = [
    "-tp 2 -dp 4 --enable-expert-parallel --nnodes 2 --node-rank 1 --master-addr h --headless",
    "--enable-lora --max-cpu-loras 4 --max-loras 2 --lora-target-modules q_proj",
    '--speculative-config \'{"method": "eagle", "model": "d", "revision": "r", "quantization": "fp8"}\'',
    '--kv-transfer-config \'{"kv_connector": "NixlConnector", "kv_role": "kv_consumer"}\' --kv-offloading-size 8',
    "--scheduling-policy priority --otlp-traces-endpoint h:1 --enable-prompt-tokens-details",
]


@pytest.mark.parametrize("line", FULL_LINES)
def test_planned_flags_are_sglang_options_spelled_in_full(line: str) -> None:
    from shim.data_files import load_data

    options = {s for f in load_data("sglang-flags.json")["flags"] for s in f["option_strings"]}
    for word in plan_of(shlex.split(line)).engine_args:
        if word.startswith("--"):
            assert word in options, word


@pytest.mark.parametrize(
    ("config", "layout"),
    [
        ({"method": "ngram", "num_speculative_tokens": 4}, ["-pp", "2"]),
        ({"method": "eagle3", "model": "d", "num_speculative_tokens": 2}, ["-pp", "2"]),
        ({"method": "ngram", "num_speculative_tokens": 4}, ["-tp", "2", "-dp", "2"]),  # "m": attention DP
        ({"model": "small/draft", "num_speculative_tokens": 2}, ["-tp", "2", "-dp", "2"]),
    ],
)
def test_speculation_sglang_refuses_for_the_layout_is_a_listed_drop(
    config: dict[str, object], layout: list[str]
) -> None:
    plan = spec(config, *layout)
    assert "--speculative-algorithm" not in plan.engine_args
    assert any("runs without it" in d.reason for d in plan.dropped)


def test_pipeline_parallel_speculation_runs_only_as_eagle_on_a_prefill_server() -> None:
    mtp = {"method": "deepseek_mtp", "num_speculative_tokens": 1}
    assert "--speculative-algorithm" not in spec(mtp, "-pp", "2").engine_args
    prefill = ["--kv-transfer-config", '{"kv_connector": "NixlConnector", "kv_role": "kv_producer"}']
    assert "--speculative-algorithm" in spec(mtp, "-pp", "2", *prefill).engine_args
