"""Every command line the shim builds gets past SGLang's OWN launch-time resolution and checks.

`sglang serve` parses its arguments, then `ServerArgs.resolve_once()` (model config, memory, parallel layout,
LoRA, speculative, HiCache, P/D hooks) and `check_server_args()`; a line that fails there never starts. The
launch oracle (sglang_launch_oracle.py) runs exactly those on a stubbed 8 × H100 node, offline, with the small
model configs in tests/data/models/. Cases: the chart/operator fixtures and hand-written lines of
test_engine_args_contract.py (run on each model), the topology cases below, and a generated corpus.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from shim.translate import translate
from tests.contract.conftest import SGLangOracle
from tests.contract.test_engine_args_contract import CASES, Case

pytestmark = pytest.mark.contract

MODELS = Path(__file__).resolve().parents[1] / "data" / "models"
LLAMA, MOE, MISTRAL = (str(MODELS / name) for name in ("llama", "qwen3-moe", "mistral"))


def with_model(argv: tuple[str, ...], model: str) -> list[str]:
    """The same vLLM command line serving the local config `model` (the positional or --model value)."""
    out = list(argv)
    index = 1 if out and out[0] == "serve" else out.index("--model") + 1
    out[index] = model
    return out


def launch(oracle: SGLangOracle, argv: list[str], environ: dict[str, str] | None = None) -> dict[str, Any]:
    plan = translate(argv, environ or {})
    result = oracle.launch_check(plan.engine_args)
    assert result["ok"], (
        f"SGLang refuses to launch {plan.redacted_engine_args()} at {result['stage']}: {result['error']}\n"
        f"{result.get('traceback', '')}"
    )
    resolved: dict[str, Any] = result["resolved"]
    return resolved


@pytest.mark.parametrize("model", [LLAMA, MOE, MISTRAL], ids=["llama", "qwen3-moe", "mistral"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fixture_lines_launch(launch_oracle: SGLangOracle, case: Case, model: str) -> None:
    argv = with_model(case.argv, model)
    if case.expect.get("context_length", 0) > _max_positions(model):
        # vLLM refuses a --max-model-len beyond the model's too: SGLang must, at launch, for the same reason.
        plan = translate(argv, case.environ)
        result = launch_oracle.launch_check(plan.engine_args)
        assert not result["ok"] and "context_length" in result["error"], result
        return
    launch(launch_oracle, argv, case.environ)


def _max_positions(model: str) -> int:
    return int(json.loads((Path(model) / "config.json").read_text())["max_position_embeddings"])


def test_enable_lora_alone_launches_with_vllm_defaults(launch_oracle: SGLangOracle) -> None:
    resolved = launch(launch_oracle, ["serve", LLAMA, "--enable-lora"])
    assert resolved["enable_lora"] is True
    assert resolved["max_lora_rank"] == 16
    assert resolved["lora_target_modules"] == ["all"]
    assert resolved["max_loras_per_batch"] == 1


def test_lora_modules_more_than_cpu_loras_launch(launch_oracle: SGLangOracle) -> None:
    argv = ["serve", LLAMA, "--lora-modules", "a=/a", "b=/b", "c=/c", "--max-loras", "2"]
    resolved = launch(launch_oracle, argv)
    assert resolved["max_loras_per_batch"] == 2
    assert resolved["max_loaded_loras"] is None  # SGLang: no limit, as many as vLLM can page in


def test_the_oracle_refuses_what_sglang_refuses(launch_oracle: SGLangOracle) -> None:
    """Without this the green cases would prove nothing: SGLang's own check fires through the oracle."""
    bare = launch_oracle.launch_check(["--model-path", LLAMA, "--enable-lora"])
    assert not bare["ok"] and bare["stage"] == "check_server_args"
    assert "--max-lora-rank and --lora-target-modules" in bare["error"]
    nodes = launch_oracle.launch_check(["--model-path", LLAMA, "--tp-size", "3", "--nnodes", "2"])
    assert not nodes["ok"] and "divisible" in nodes["error"]


# --- a generated corpus: parallel layouts × features, on each model ---------------------------------------

LAYOUTS = [("-tp", tp, "-pp", pp, "-dp", dp) for tp, pp, dp in itertools.product((1, 2, 8), (1, 2), (1, 2, 4))]
FEATURES: list[tuple[str, ...]] = [
    (),
    ("--enable-expert-parallel",),
    ("--enable-lora",),
    ("--enable-lora", "--max-loras", "4", "--max-lora-rank", "64"),
    ("--no-enable-prefix-caching", "--no-enable-chunked-prefill"),
    ("--max-model-len", "4k", "--gpu-memory-utilization", "0.85", "--kv-cache-dtype", "fp8"),
    ("--speculative-config", '{"method": "ngram", "num_speculative_tokens": 4}', "--kv-offloading-size", "32"),
    ("--speculative-config", '{"method": "mtp", "num_speculative_tokens": 2}'),
    ("--kv-transfer-config", '{"kv_connector": "NixlConnector", "kv_role": "kv_producer"}', "--enable-lora"),
    (
        "--kv-transfer-config",
        '{"kv_connector": "NixlConnector", "kv_role": "kv_consumer"}',
        "--scheduling-policy",
        "priority",
    ),
    ("--kv-transfer-config", '{"kv_connector": "LMCacheConnectorV1", "kv_role": "kv_both"}', "--enable-lora"),
]


def _corpus() -> list[tuple[str, list[str]]]:
    out = []
    for model, layout, feature in itertools.product((LLAMA, MOE, MISTRAL), LAYOUTS, FEATURES):
        words = [str(w) for w in layout]
        if int(words[1]) * int(words[3]) * int(words[5]) > 16:
            continue
        name = f"{Path(model).name}{''.join(words)}{''.join(feature)}"
        out.append((name, ["serve", model, *words, *feature]))
    return out


CORPUS = _corpus()


@pytest.mark.parametrize("argv", [a for _, a in CORPUS], ids=[n for n, _ in CORPUS])
def test_generated_corpus_launches(launch_oracle: SGLangOracle, argv: list[str]) -> None:
    launch(launch_oracle, argv)


def test_cpu_loras_below_modules_still_launches(launch_oracle: SGLangOracle) -> None:
    argv = ["serve", LLAMA, "--lora-modules", "a=/a", "b=/b", "c=/c", "--max-loras", "2", "--max-cpu-loras", "2"]
    resolved = launch(launch_oracle, argv)
    assert resolved["max_loaded_loras"] == 3


# --- topology: what SGLang resolves is vLLM's layout on the same GPUs --------------------------------------

LWS = {"LWS_LEADER_ADDRESS": "big-0.big", "LWS_GROUP_SIZE": "2"}


@pytest.mark.parametrize("index", ["0", "1"])
def test_leaderworkerset_tp8_pp2_launches_on_every_node(launch_oracle: SGLangOracle, index: str) -> None:
    resolved = launch(launch_oracle, ["serve", LLAMA, "-tp", "8", "-pp", "2"], {**LWS, "LWS_WORKER_INDEX": index})
    assert (resolved["tp_size"], resolved["pp_size"], resolved["nnodes"]) == (8, 2, 2)
    assert resolved["node_rank"] == int(index) and resolved["dist_init_addr"] == "big-0.big:29501"


def test_moe_dp_ep_is_attention_dp_with_experts_over_all_gpus(launch_oracle: SGLangOracle) -> None:
    resolved = launch(launch_oracle, ["serve", MOE, "-tp", "2", "-dp", "4", "--enable-expert-parallel"])
    assert (resolved["tp_size"], resolved["attn_dp_size"], resolved["dp_size"], resolved["ep_size"]) == (8, 4, 1, 8)


def test_dense_dp_stays_replicas(launch_oracle: SGLangOracle) -> None:
    resolved = launch(launch_oracle, ["serve", LLAMA, "-tp", "2", "-dp", "4"])
    assert (resolved["tp_size"], resolved["dp_size"], resolved["attn_dp_size"]) == (2, 4, 1)


@pytest.mark.parametrize("start", ["0", "8"])
def test_multi_node_data_parallel_launches(launch_oracle: SGLangOracle, start: str) -> None:
    argv = ["serve", MOE, "-dp", "16", "-dpl", "8", "-dpa", "10.0.0.1", "--enable-expert-parallel"]
    argv += ["--data-parallel-start-rank", start] + (["--headless"] if start != "0" else [])
    resolved = launch(launch_oracle, argv)
    assert (resolved["nnodes"], resolved["attn_dp_size"], resolved["ep_size"]) == (2, 16, 16)


def test_dense_multi_node_dp_is_not_replicas_across_nodes(launch_oracle: SGLangOracle) -> None:
    """SGLang refuses replicas across nodes ("use attention DP"); the shim uses attention DP there."""
    resolved = launch(launch_oracle, ["serve", LLAMA, "-dp", "4", "-dpl", "2", "-dpa", "h"])
    assert (resolved["nnodes"], resolved["dp_size"], resolved["attn_dp_size"]) == (2, 1, 4)


# --- speculative decoding, KV offload, P/D roles, the audited rows -----------------------------------------

FEATURE_LINES = [
    (
        "eagle",
        ["--speculative-config", json.dumps({"method": "eagle", "model": LLAMA, "num_speculative_tokens": 3})],
        {"speculative_algorithm": "EAGLE", "speculative_num_steps": 3, "speculative_num_draft_tokens": 4},
    ),
    (
        "eagle3",
        ["--speculative-config", json.dumps({"method": "eagle3", "model": LLAMA, "num_speculative_tokens": 2})],
        {"speculative_algorithm": "EAGLE3", "speculative_eagle_topk": 1},
    ),
    (
        "draft-model",
        ["--speculative-config", json.dumps({"model": MISTRAL, "num_speculative_tokens": 4})],
        {"speculative_algorithm": "STANDALONE", "speculative_draft_model_path": MISTRAL},
    ),
    (
        "mtp",
        ["--speculative-config", json.dumps({"method": "deepseek_mtp", "num_speculative_tokens": 1})],
        {"speculative_num_draft_tokens": 2},
    ),
    (
        "ngram",
        ["--speculative-config", json.dumps({"method": "ngram", "num_speculative_tokens": 5, "prompt_lookup_max": 4})],
        {"speculative_algorithm": "NGRAM", "speculative_num_draft_tokens": 5},
    ),
    (
        "eagle-pp",
        [
            "-pp",
            "2",
            "--speculative-config",
            json.dumps({"method": "eagle", "model": LLAMA, "num_speculative_tokens": 2}),
            "--kv-transfer-config",
            '{"kv_connector": "NixlConnector", "kv_role": "kv_producer"}',
        ],
        {"speculative_algorithm": "EAGLE", "pp_size": 2, "disaggregation_mode": "prefill"},
    ),
    (
        "old-draft",
        ["--speculative-model", LLAMA, "--num-speculative-tokens", "2"],
        {"speculative_algorithm": "STANDALONE"},
    ),
    (
        "lmcache-offload",
        ["--kv-transfer-config", '{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both"}'],
        {"enable_hierarchical_cache": True, "hicache_size": 5},
    ),
    (
        "native-offload",
        ["-tp", "2", "--kv-offloading-size", "32"],
        {"enable_hierarchical_cache": True, "hicache_size": 16},
    ),
    (
        "nixl-prefill",
        ["--kv-transfer-config", '{"kv_connector":"NixlConnector","kv_role":"kv_producer"}'],
        {
            "disaggregation_mode": "prefill",
            "disaggregation_transfer_backend": "nixl",
            # SGLang's own bootstrap server, on loopback (port 8000 + 3); haproxy serves vLLM's 8998 to the
            # decode pods and relays it there (shim/pd_plan.py, tests/contract/test_pd_contract.py).
            "disaggregation_bootstrap_port": 8003,
        },
    ),
    (
        "nixl-decode",
        ["--kv-transfer-config", '{"kv_connector":"NixlConnector","kv_role":"kv_consumer"}'],
        {"disaggregation_mode": "decode"},
    ),
    (
        "audited",
        [
            "--scheduling-policy",
            "priority",
            "--stream-interval",
            "4",
            "--otlp-traces-endpoint",
            "http://otel:4317",
            "--enable-prompt-tokens-details",
            "--kv-events-config",
            '{"publisher":"zmq","topic":"kv"}',
        ],
        {
            "enable_priority_scheduling": True,
            "stream_interval": 4,
            "enable_trace": True,
            "otlp_traces_endpoint": "otel:4317",
        },
    ),
]


@pytest.mark.parametrize(("argv", "expect"), [c[1:] for c in FEATURE_LINES], ids=[c[0] for c in FEATURE_LINES])
def test_feature_lines_launch_and_mean_what_vllm_meant(
    launch_oracle: SGLangOracle, argv: list[str], expect: dict[str, Any]
) -> None:
    resolved = launch(launch_oracle, ["serve", LLAMA, *argv])
    for key, want in expect.items():
        assert resolved[key] == want, f"{key}: SGLang resolves {resolved[key]!r}, vLLM meant {want!r}"


def test_chart_pd_values_launch(launch_oracle: SGLangOracle) -> None:
    """The chart's P/D rendering (LMCache over NIXL, kv_producer) on the prefill pod."""
    from tests.contract.test_engine_args_contract import LMCACHE_PD

    resolved = launch(
        launch_oracle, ["serve", LLAMA, "--kv-transfer-config", LMCACHE_PD], {"LMCACHE_ENABLE_NIXL": "True"}
    )
    assert (resolved["disaggregation_mode"], resolved["disaggregation_transfer_backend"]) == ("prefill", "nixl")


def test_audited_map_rows_launch(launch_oracle: SGLangOracle) -> None:
    argv = ["serve", MOE, "-tp", "4", "--enable-expert-parallel", "--enable-eplb", "--num-redundant-experts", "4"]
    argv += ["--disable-custom-all-reduce", "--trust-request-chat-template"]
    argv += ["--allowed-media-domains", "example.com", "--enable-return-routed-experts", "--tool-server", "demo"]
    argv += ["--enable-mfu-metrics", "--enable-layerwise-nvtx-tracing"]
    launch(launch_oracle, argv)


@pytest.mark.parametrize("index", ["0", "1"])
def test_leaderworkerset_manifest_launches(launch_oracle: SGLangOracle, index: str) -> None:
    from tests.packaging.test_deploy_lws import container

    argv = with_model(tuple(container("leader")["command"][1:]), MISTRAL)
    environ = {"LWS_LEADER_ADDRESS": "lead", "LWS_GROUP_SIZE": "2", "LWS_WORKER_INDEX": index}
    resolved = launch(launch_oracle, argv, environ)
    assert (resolved["tp_size"], resolved["pp_size"], resolved["nnodes"]) == (8, 2, 2)
