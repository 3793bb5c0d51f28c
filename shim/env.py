"""Every environment variable the shim reads, declared once (name, type, default, doc).

docs/environment.md is generated from ENV_VARS (scripts/gen_docs.py); nothing else in the
shim reads os.environ: translate() takes the environment as an argument.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shim.errors import CliError


def _bool(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _words(text: str) -> tuple[str, ...]:
    return tuple(shlex.split(text))


@dataclass(frozen=True)
class EnvVar:
    name: str
    parse: Callable[[str], Any]
    default: Any
    doc: str
    secret: bool = False

    def read(self, environ: Mapping[str, str]) -> Any:
        raw = environ.get(self.name)
        if raw is None or raw == "":
            return self.default
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise CliError(f"environment variable {self.name}: invalid value {raw!r} ({exc})") from None


ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar(
        "VLLM_SHIM_ENGINE",
        str,
        "sglang",
        "`sglang` (the real engine) or `sim` (the simulated engine, for demos and tests)",
    ),
    EnvVar(
        "VLLM_SHIM_ENGINE_COMMAND",
        _words,
        (),
        "shell words that replace the engine program; the SGLang arguments are appended",
    ),
    EnvVar("VLLM_SHIM_ENGINE_PORT", int, None, "SGLang's loopback port (default: public port + 1)"),
    EnvVar("VLLM_SHIM_MIDDLEWARE_PORT", int, None, "the middleware's loopback port (default: public port + 2)"),
    EnvVar(
        "VLLM_SHIM_MIDDLEWARE_WORKERS",
        int,
        None,
        "uvicorn worker processes behind the middleware port (default: `--api-server-count` when given, else one per"
        " 4 CPUs of the pod's CPU limit from cgroup `cpu.max` / `cpu.cfs_quota_us` or the CPU affinity, 1 to 8;"
        " docs/operations.md)",
    ),
    EnvVar(
        "VLLM_SHIM_RUN_DIR",
        str,
        "/tmp/vllm-shim",
        "where supervisord.conf, haproxy.cfg and middleware.json are rendered",
    ),
    EnvVar(
        "VLLM_SHIM_DRAIN_SECONDS", int, 30, "on SIGTERM, how long in-flight requests may finish before programs stop"
    ),
    EnvVar(
        "VLLM_SHIM_MAX_BODY_BYTES", int, 32 * 1024 * 1024, "largest request body the middleware accepts (413 above)"
    ),
    EnvVar("VLLM_SHIM_HAPROXY", str, "haproxy", "the haproxy binary"),
    EnvVar("SGLANG_TOOL_CALL_PARSER", str, None, "SGLang tool-call parser; wins over `--tool-call-parser`"),
    EnvVar("SGLANG_REASONING_PARSER", str, None, "SGLang reasoning parser; wins over `--reasoning-parser`"),
    EnvVar(
        "SGLANG_EXTRA_ARGS",
        _words,
        (),
        "shell words appended to the SGLang arguments (SGLang-only options); a word SGLang's parser would read as"
        " host, port, model, served name, a key, TLS, gRPC or --config is refused (exit 2)",
    ),
    EnvVar(
        "SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT",
        int,
        300,
        "SGLang's own (seconds a P/D prefill waits for its decode peer); the middleware cancels a prefill room"
        " it started after this plus SGLANG_DISAGGREGATION_WAITING_TIMEOUT plus 30 s",
    ),
    EnvVar(
        "SGLANG_DISAGGREGATION_WAITING_TIMEOUT",
        int,
        300,
        "SGLang's own (seconds a P/D transfer may wait); part of the middleware's prefill room bound",
    ),
    EnvVar("VLLM_API_KEY", str, None, "vLLM's API key variable; `--api-key` wins", secret=True),
    EnvVar(
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING",
        _bool,
        False,
        "vLLM's switch for `/v1/load_lora_adapter` and `/v1/unload_lora_adapter`",
    ),
    EnvVar(
        "VLLM_SERVER_DEV_MODE",
        _bool,
        False,
        "vLLM's switch for `/sleep`, `/wake_up`, `/is_sleeping`, `/reset_prefix_cache`",
    ),
    EnvVar("VLLM_SKIP_MODEL_NAME_VALIDATION", _bool, False, "vLLM's switch to accept any `model` name in requests"),
    EnvVar(
        "LWS_LEADER_ADDRESS",
        str,
        None,
        "set by a LeaderWorkerSet: the rendezvous host when `--master-addr` is not given",
    ),
    EnvVar("LWS_GROUP_SIZE", int, None, "set by a LeaderWorkerSet: the node count when `--nnodes` is not given"),
    EnvVar(
        "LWS_WORKER_INDEX",
        int,
        None,
        "set by a LeaderWorkerSet: the node rank when `--node-rank` is not given (above 0: a headless worker pod)",
    ),
    EnvVar("LMCACHE_LOCAL_CPU", _bool, None, "LMCache's CPU tier on/off (chart `lmcacheConfig`): HiCache on/off"),
    EnvVar("LMCACHE_MAX_LOCAL_CPU_SIZE", float, None, "LMCache's CPU tier in GB (default 5): `--hicache-size`"),
    EnvVar("LMCACHE_MAX_LOCAL_DISK_SIZE", float, None, "LMCache's disk tier in GB: not carried over (listed)"),
    EnvVar("LMCACHE_CHUNK_SIZE", int, None, "LMCache's chunk size: not carried over (listed)"),
    EnvVar("LMCACHE_REMOTE_URL", str, None, "a remote LMCache server: not carried over (listed)"),
    EnvVar("LMCACHE_ENABLE_CONTROLLER", _bool, None, "the LMCache controller: not carried over (listed)"),
    EnvVar("HF_HUB_CACHE", str, None, "where the model's config.json is looked up to tell an MoE model (HF cache)"),
    EnvVar("HF_HOME", str, None, "the Hugging Face home (its `hub/` is the cache when HF_HUB_CACHE is unset)"),
)
ENV = {var.name: var for var in ENV_VARS}


def read_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Every declared variable, parsed, keyed by name."""
    return {var.name: var.read(environ) for var in ENV_VARS}
