"""Every SGLang command line the shim builds is accepted by SGLang's OWN parser, and means what vLLM meant.

The vLLM command lines are the production-stack chart's and operator's renderings
(/work/shared/reference/production-stack.md §1.1, §2.1, §8) plus the spellings operators use by hand.
`translate()` is the lead's pure function; the oracle runs `ServerArgs.add_cli_args` + `parse_args` +
`ServerArgs.from_cli_args` of the real sglang on `plan.engine_args`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from shim.translate import translate
from tests.contract.conftest import SGLangOracle

pytestmark = pytest.mark.contract

LMCACHE_V1 = '{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both"}'
LMCACHE_PD = (
    '{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_producer","kv_connector_extra_config":'
    '{"discard_partial_chunks": false, "lmcache_rpc_port": "producer1"}}'
)
CHART = ["--host", "0.0.0.0", "--port", "8000"]


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]  # after the program name: `vllm <argv>`
    expect: dict[str, Any] = field(default_factory=dict)  # SGLang dest -> value after SGLang's parser
    environ: dict[str, str] = field(default_factory=dict)


# fmt: off
CASES = [
    # --- production-stack chart (§1.1): the unit-test renderings, verbatim ---------------------------------
    Case("chart-minimal", ("serve", "facebook/opt-125m", *CHART),
         {"model_path": "facebook/opt-125m", "served_model_name": "facebook/opt-125m", "disable_radix_cache": False}),
    Case("chart-lmcache",
         ("serve", "facebook/opt-125m", *CHART, "--enable-prefix-caching", "--max-model-len", "1024",
          "--gpu_memory_utilization", "0.8", "--kv-transfer-config", LMCACHE_V1),
         {"context_length": 1024, "mem_fraction_static": 0.8, "disable_radix_cache": False}),
    Case("chart-lmcache-pd",
         ("serve", "m", *CHART, "--no-enable-prefix-caching", "--kv-transfer-config", LMCACHE_PD),
         {"disable_radix_cache": True}),
    # --- chart renderings of §8 and of the vllmConfig keys ------------------------------------------------
    Case("chart-lora-tutorial",
         ("serve", "meta-llama/Llama-3.1-8B-Instruct", *CHART, "--enable-lora", "--enable-prefix-caching",
          "--max-model-len", "4096", "--dtype", "bfloat16", "--gpu-memory-utilization", "0.8"),
         {"enable_lora": True, "context_length": 4096, "dtype": "bfloat16", "mem_fraction_static": 0.8},
         {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}),
    Case("chart-pooling",
         ("serve", "m", *CHART, "--no-enable-prefix-caching", "--runner", "pooling", "--convert", "embed",
          "--revision", "main"),
         {"disable_radix_cache": True, "revision": "main", "is_embedding": True}),
    Case("chart-vllmconfig-all",
         ("serve", "m", *CHART, "--enable-lora", "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
          "--enable-chunked-prefill", "--enable-prefix-caching", "--max-model-len", "1.048576e+06",
          "--dtype", "float16", "--tensor-parallel-size", "2", "--max-num-seqs", "32",
          "--gpu_memory_utilization", "0.9", "--max_loras", "4", "--revision", "v1",
          "--kv-transfer-config", LMCACHE_V1, "--chat-template", "/templates//templates/x.jinja"),
         {"context_length": 1048576, "tp_size": 2, "max_running_requests": 32, "mem_fraction_static": 0.9,
          "max_loras_per_batch": 4, "tool_call_parser": "hermes", "dtype": "float16", "enable_lora": True}),
    Case("chart-extraargs-tutorial",
         ("serve", "Qwen/Qwen3-8B", *CHART, "--gpu-memory-utilization", "0.8", "--enable-sleep-mode",
          "--enforce-eager", "--served-model-name", "Qwen/Qwen3-8B", "qwen3"),
         {"served_model_name": "Qwen/Qwen3-8B", "enable_memory_saver": True,
          "disable_decode_cuda_graph": True, "disable_prefill_cuda_graph": True}),
    # --- operator (§2.1): `/opt/venv/bin/vllm serve` + args, chunked/prefix flags always present ------------
    Case("operator",
         ("serve", "m", *CHART, "--enable-lora", "--no-enable-chunked-prefill", "--no-enable-prefix-caching",
          "--max-model-len", "4096", "--dtype", "bfloat16", "--tensor-parallel-size", "1", "--max-num-seqs", "256",
          "--gpu_memory_utilization", "0.9", "--max_loras", "2", "--chat-template", "/etc/chat-template.json",
          "--kv-transfer-config", LMCACHE_V1),
         {"disable_radix_cache": True, "chunked_prefill_size": -1, "context_length": 4096, "tp_size": 1,
          "max_running_requests": 256, "max_loras_per_batch": 2, "chat_template": "/etc/chat-template.json"},
         {"VLLM_USE_V1": "1", "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}),
    # --- hand-written command lines -------------------------------------------------------------------------
    Case("served-model-names", ("serve", "m", "--served-model-name", "A", "B"), {"served_model_name": "A"}),
    Case("kv-cache-fp8", ("serve", "m", "--kv-cache-dtype", "fp8"), {"kv_cache_dtype": "fp8_e4m3"}),
    Case("kv-cache-fp8-e5m2", ("serve", "m", "--kv-cache-dtype", "fp8_e5m2"), {"kv_cache_dtype": "fp8_e5m2"}),
    Case("short-parallel", ("serve", "m", "-tp", "2", "-pp", "2"), {"tp_size": 2, "pp_size": 2}),
    Case("long-parallel", ("serve", "m", "--tensor-parallel-size=4", "--pipeline-parallel-size=2"),
         {"tp_size": 4, "pp_size": 2}),
    Case("context-32k", ("serve", "m", "--max-model-len", "32k"), {"context_length": 32000}),
    Case("context-32K", ("serve", "m", "--max-model-len", "32K"), {"context_length": 32768}),
    Case("lora-modules",
         ("serve", "m", "--enable-lora", "--lora-modules", "a=/x", "b=/y", "--max_loras", "4",
          "--max-lora-rank", "16"),
         {"enable_lora": True, "lora_paths": ["a=/x", "b=/y"], "max_loras_per_batch": 4, "max_lora_rank": 16}),
    Case("tools", ("serve", "m", "--tool-call-parser", "llama3_json", "--enable-auto-tool-choice"),
         {"tool_call_parser": "llama3"}),
    Case("enforce-eager", ("serve", "m", "--enforce-eager"),
         {"disable_decode_cuda_graph": True, "disable_prefill_cuda_graph": True}),
    Case("seed", ("serve", "m", "--seed", "1"), {"random_seed": 1}),
    Case("dtype", ("serve", "m", "--dtype", "bfloat16"), {"dtype": "bfloat16"}),
    Case("trust-remote-code", ("serve", "m", "--trust-remote-code"), {"trust_remote_code": True}),
    Case("revision", ("serve", "m", "--revision", "main"), {"revision": "main"}),
    Case("download-dir", ("serve", "m", "--download-dir", "/d"), {"download_dir": "/d"}),
    Case("api-key", ("serve", "m", "--api-key", "k")),
    Case("api-key-env", ("serve", "m"), {}, {"VLLM_API_KEY": "k"}),
    Case("sleep-mode", ("serve", "m", "--enable-sleep-mode"), {"enable_memory_saver": True}),
    Case("no-chunked-prefill", ("serve", "m", "--no-enable-chunked-prefill"), {"chunked_prefill_size": -1}),
    Case("batched-tokens", ("serve", "m", "--max-num-batched-tokens", "8192"), {"chunked_prefill_size": 8192}),
    Case("no-chunked-batched-tokens", ("serve", "m", "--no-enable-chunked-prefill", "--max-num-batched-tokens", "8192"),
         {"chunked_prefill_size": -1}),
    Case("max-num-seqs", ("serve", "m", "--max-num-seqs", "64"), {"max_running_requests": 64}),
    Case("everything",
         ("serve", "m", "--tool-call-parser", "llama3_json", "--enable-auto-tool-choice", "--enforce-eager",
          "--seed", "1", "--dtype", "bfloat16", "--trust-remote-code", "--revision", "main", "--download-dir", "/d",
          "--api-key", "k", "--enable-sleep-mode", "--no-enable-chunked-prefill", "--max-num-batched-tokens", "8192",
          "--max-num-seqs", "64", "--kv-cache-dtype", "fp8", "-tp", "2", "-pp", "2", "--max-model-len", "32k",
          "--served-model-name", "A", "B", "--gpu-memory-utilization", "0.85"),
         {"tool_call_parser": "llama3", "random_seed": 1, "dtype": "bfloat16", "trust_remote_code": True,
          "revision": "main", "download_dir": "/d", "enable_memory_saver": True, "chunked_prefill_size": -1,
          "max_running_requests": 64, "kv_cache_dtype": "fp8_e4m3", "tp_size": 2, "pp_size": 2,
          "context_length": 32000, "served_model_name": "A", "mem_fraction_static": 0.85}),
    Case("expert-parallel", ("serve", "m", "--enable-expert-parallel", "-tp", "4"), {"tp_size": 4}),
    # "m" has no readable config: the memory-safe attention-DP layout on the same 2 GPUs (shim/topology.py).
    Case("data-parallel", ("serve", "m", "-dp", "2"), {"attn_dp_size": 2, "tp_size": 2, "dp_size": 1}),
    Case("quantization", ("serve", "m", "--quantization", "fp8"), {"quantization": "fp8"}),
    Case("api-server-module", ("--model", "m", "--port", "9000"), {"model_path": "m"}),
    Case("sglang-extra-args", ("serve", "m"), {"log_level": "warning"}, {"SGLANG_EXTRA_ARGS": "--log-level warning"}),
]
# fmt: on


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_translation_is_accepted_by_sglang(sglang_oracle: SGLangOracle, case: Case) -> None:
    plan = translate(list(case.argv), case.environ)
    result = sglang_oracle.parse_args(plan.engine_args)
    assert result["ok"], f"SGLang rejects {list(plan.redacted_engine_args())}: {result['error']}"
    args = result["args"]
    # Always: SGLang listens on loopback behind the middleware, exports metrics, serves one name.
    assert args["host"] == "127.0.0.1"
    assert args["port"] == plan.ports.engine
    assert args["enable_metrics"] is True
    assert args["model_path"] == plan.model
    assert args["served_model_name"] == plan.served_model_name
    for dest, want in case.expect.items():
        assert args[dest] == want, f"{dest}: SGLang reads {args[dest]!r}, vLLM meant {want!r}"


@pytest.mark.parametrize(
    "case", [c for c in CASES if "--api-key" in c.argv or "VLLM_API_KEY" in c.environ], ids=lambda c: c.name
)
def test_api_key_reaches_the_middleware_only(sglang_oracle: SGLangOracle, case: Case) -> None:
    plan = translate(list(case.argv), case.environ)
    args = sglang_oracle.parse_args(plan.engine_args)["args"]
    # The middleware checks the user's key; SGLang's argv never holds it (its key comes off argv, see
    # shim/pod/engine_launch.py and test_secrets_contract.py).
    assert args["api_key"] is None and "k" in plan.middleware.api_keys


def test_every_emitted_flag_is_spelled_in_full(sglang_oracle: SGLangOracle) -> None:
    """argparse's allow_abbrev accepts a unique prefix today, which breaks once SGLang adds a flag (`--pp`)."""
    options = sglang_oracle.options()
    for case in CASES:
        for word in translate(list(case.argv), case.environ).engine_args:
            if word.startswith("--"):
                assert word.partition("=")[0] in options, f"{case.name}: {word} is not an SGLang option as spelled"
