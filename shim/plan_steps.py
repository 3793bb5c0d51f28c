"""The `plan:` rows of conf/rules.yaml: decisions that need more than one option or the environment.

Each step reads the parsed command line and writes into a Draft; STEPS runs them in order.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from middleware.config import LoraModule, MiddlewareConfig
from shim.argv import ParsedArgs
from shim.cpu_limit import default_workers
from shim.data_files import load_data
from shim.errors import CliError
from shim.kv_transfer import plan_kv_transfer
from shim.speculative import plan_speculative
from shim.topology import plan_topology
from shim.transforms import parse_human_int, parse_int, sglang_choices

POOLING_CONVERTS = {"embed", "token_embed", "classify", "token_classify", "score", "reward"}
POOLING_TASKS = {"embed", "embedding", "classify", "reward", "score"}


@dataclass
class Draft:
    parsed: ParsedArgs
    env: dict[str, Any]
    model: str
    args: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    host: str | None = None
    ports: Any = None
    served_names: tuple[str, ...] = ()
    api_keys: tuple[str, ...] = ()
    # Secrets the engine gets in its environment through the engine secrets file, never on argv.
    engine_env: dict[str, str] = field(default_factory=dict)
    max_model_len: int | None = None
    # What the steps decide for the middleware; translate() adds the rest (engine URL, names, keys).
    middleware: MiddlewareConfig = field(default_factory=MiddlewareConfig)
    headless: bool = False  # a worker node of a multi-node group: SGLang only, no API
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (what, why) beyond the drop rows
    cpus: float | None = None  # the pod's CPU limit, looked up by the caller (shim/cpu_limit.py); None: unknown
    middleware_workers: int = 1

    def value(self, dest: str, default: Any = None) -> Any:
        return self.parsed.values.get(dest, default)

    def spelled(self, dest: str) -> str:
        return self.parsed.spelled.get(dest, "--" + dest.replace("_", "-"))

    def base_args(self) -> list[str]:
        """What SGLang always gets: full spellings (SGLang's parser takes abbreviations; `--pp` is ambiguous)."""
        args = ["--model-path", self.model, "--served-model-name", self.served_names[0]]
        # No --api-key: the user's keys are the middleware's; SGLang gets an internal key without argv
        # (shim/pod/engine_launch.py).
        return [*args, "--host", "127.0.0.1", "--port", str(self.ports.engine), "--enable-metrics"]


def ports(d: Draft) -> None:
    from shim.plan import Ports

    public = parse_int(d.value("port", 8000), d.spelled("port"))
    engine = d.env["VLLM_SHIM_ENGINE_PORT"] or public + 1
    middleware = d.env["VLLM_SHIM_MIDDLEWARE_PORT"] or public + 2
    for name, port in (("public", public), ("engine", engine), ("middleware", middleware)):
        if not 0 < port < 65536:
            raise CliError(f"{name} port {port} is out of range (1-65535)")
    if len({public, engine, middleware}) < 3:
        raise CliError(f"ports must differ: public {public}, engine {engine}, middleware {middleware}")
    d.ports = Ports(public=public, middleware=middleware, engine=engine)
    host = d.value("host")
    d.host = host or None


def served_names(d: Draft) -> None:
    names = d.value("served_model_name") or [d.model]
    names = [names] if isinstance(names, str) else names
    d.served_names = tuple(dict.fromkeys(names))
    if len(d.served_names) > 1:
        d.warnings.append(
            f"SGLang serves one name: {d.served_names[0]!r}; the middleware also answers to "
            + ", ".join(repr(n) for n in d.served_names[1:])
        )
    d.max_model_len = parse_human_int(d.value("max_model_len", "auto"), d.spelled("max_model_len"))


def api_key(d: Draft) -> None:
    keys = d.value("api_key") or ([d.env["VLLM_API_KEY"]] if d.env["VLLM_API_KEY"] else [])
    d.api_keys = tuple([keys] if isinstance(keys, str) else keys)


def hf_token(d: Draft) -> None:
    """vLLM's --hf-token: a value goes to the engine as HF_TOKEN (never argv); bare, the stored login is used,
    which huggingface_hub does by itself."""
    token = d.value("hf_token")
    if isinstance(token, str) and token:
        d.engine_env["HF_TOKEN"] = token


def _parser_name(d: Draft, dest: str, env_name: str) -> str | None:
    name = d.env[env_name] or d.value(dest)
    if not name:
        return None
    mapped = load_data("parsers.yaml")[dest].get(name, name)
    choices = sglang_choices("--" + dest.replace("_", "-")) or ()
    if mapped not in choices:
        source = env_name if d.env[env_name] else d.spelled(dest)
        raise CliError(f"{source}: SGLang has no parser {name!r} (SGLang's parsers: {', '.join(choices)})")
    return str(mapped)


def tool_call_parser(d: Draft) -> None:
    parser = _parser_name(d, "tool_call_parser", "SGLANG_TOOL_CALL_PARSER")
    if d.value("enable_auto_tool_choice") and not parser:
        raise CliError("argument --enable-auto-tool-choice: requires --tool-call-parser (or SGLANG_TOOL_CALL_PARSER)")
    if parser:
        d.args += ["--tool-call-parser", parser]


def reasoning_parser(d: Draft) -> None:
    parser = _parser_name(d, "reasoning_parser", "SGLANG_REASONING_PARSER")
    if parser:
        d.args += ["--reasoning-parser", parser]


def _lora_module(item: str, spelled: str) -> LoraModule:
    text = item.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
            return LoraModule(name=str(data["name"]), path=str(data["path"]))
        except (ValueError, KeyError, TypeError):
            raise CliError(f"argument {spelled}: invalid JSON LoRA module {item!r}") from None
    name, eq, path = text.partition("=")
    if not eq or not name or not path:
        raise CliError(f"argument {spelled}: expected name=path or JSON, got {item!r}")
    return LoraModule(name=name, path=path)


VLLM_LORA_DEFAULTS = {"max_lora_rank": 16, "max_loras": 1}
LORA_OPTIONS = ("max_lora_rank", "max_loras", "max_cpu_loras", "lora_target_modules")


def _lora_sizes(d: Draft, modules: int) -> list[str]:
    """vLLM's LoRA limits stated to SGLang, so SGLang's own (rank/modules required, loaded ≥ per batch) hold."""
    rank = parse_int(d.value("max_lora_rank", VLLM_LORA_DEFAULTS["max_lora_rank"]), d.spelled("max_lora_rank"))
    per_batch = parse_int(d.value("max_loras", VLLM_LORA_DEFAULTS["max_loras"]), d.spelled("max_loras"))
    cpu = d.value("max_cpu_loras")
    loaded: list[str] = []
    if cpu is not None:
        # Without it SGLang keeps any number of adapters loaded: at least vLLM's LRU cache of max_loras.
        count = parse_int(cpu, d.spelled("max_cpu_loras"))
        if count < per_batch:
            raise CliError(
                f"argument {d.spelled('max_cpu_loras')}: max_cpu_loras ({count}) must be >= max_loras ({per_batch})"
            )
        if modules > count:
            # vLLM pages adapters in and out of its CPU cache; SGLang keeps every --lora-paths adapter loaded.
            d.warnings.append(f"SGLang keeps all {modules} --lora-modules loaded: --max-loaded-loras {modules}")
        loaded = ["--max-loaded-loras", str(max(count, modules))]
    targets = d.value("lora_target_modules") or ["all"]
    targets = [targets] if isinstance(targets, str) else list(targets)
    sizes = ["--max-lora-rank", str(rank), "--lora-target-modules", *targets, "--max-loras-per-batch", str(per_batch)]
    return sizes + loaded


def lora(d: Draft) -> None:
    items = d.value("lora_modules") or []
    modules = tuple(_lora_module(item, d.spelled("lora_modules")) for item in items)
    enabled = bool(d.value("enable_lora")) or bool(modules)
    if enabled:
        d.args.append("--enable-lora")
        if modules:
            d.args += ["--lora-paths", *(f"{m.name}={m.path}" for m in modules)]
        d.args += _lora_sizes(d, len(modules))
    else:
        given = [d.spelled(o) for o in LORA_OPTIONS if d.value(o) is not None]
        if given:
            d.warnings.append(f"{', '.join(given)} ignored: LoRA is off (no --enable-lora or --lora-modules)")
    d.middleware = replace(d.middleware, enable_lora=enabled, lora_modules=modules)


def chunked_prefill(d: Draft) -> None:
    budget = d.value("max_num_batched_tokens")
    tokens = parse_human_int(budget, d.spelled("max_num_batched_tokens")) if budget is not None else None
    if d.value("enable_chunked_prefill") is False:
        d.args += ["--chunked-prefill-size", "-1"]
        if tokens:
            d.args += ["--max-prefill-tokens", str(tokens)]
    elif tokens:
        d.args += ["--chunked-prefill-size", str(tokens)]


def topology(d: Draft) -> None:
    layout = plan_topology(d.parsed.values, d.env, d.model)
    d.args += layout.args
    d.warnings += layout.warnings
    d.headless = layout.headless


def speculative(d: Draft) -> None:
    tp = parse_int(d.value("tensor_parallel_size", 1), "-tp")
    pp = parse_int(d.value("pipeline_parallel_size", 1), "-pp")
    prefill = "--disaggregation-mode" in d.args and d.args[d.args.index("--disaggregation-mode") + 1] == "prefill"
    planned = plan_speculative(d.parsed.values, tp, pp, attention_dp="--attn-dp-size" in d.args, prefill=prefill)
    d.args += planned.args
    d.dropped += planned.dropped
    d.warnings += [f"{what} ignored: {why}" for what, why in planned.dropped]


def kv_transfer(d: Draft) -> None:
    gpus = parse_int(d.value("tensor_parallel_size", 1), "-tp") * parse_int(d.value("pipeline_parallel_size", 1), "-pp")
    planned = plan_kv_transfer(d.parsed.values, d.env, gpus)
    d.args += planned.args
    d.dropped += planned.dropped
    d.warnings += planned.warnings + [f"{what} ignored: {why}" for what, why in planned.dropped]


def pooling(d: Draft) -> None:
    runner, convert, task = d.value("runner"), d.value("convert"), d.value("task")
    if runner == "draft" or task == "draft":
        raise CliError("argument --runner: draft models are not served by SGLang on their own")
    if runner == "pooling" or convert in POOLING_CONVERTS or task in POOLING_TASKS:
        d.args.append("--is-embedding")


def sleep_mode(d: Draft) -> None:
    enabled = bool(d.value("enable_sleep_mode"))
    if enabled:
        # vLLM's sleep level 1 keeps weights in CPU memory for wake_up; SGLang only does that with the backup flag.
        d.args += ["--enable-memory-saver", "--enable-weights-cpu-backup"]
    d.middleware = replace(
        d.middleware,
        enable_sleep_mode=enabled,
        dev_mode=bool(d.env["VLLM_SERVER_DEV_MODE"]),
        allow_runtime_lora=bool(d.env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"]),
    )


def log_level(d: Draft) -> None:
    level = d.value("log_level")
    if level:
        d.args += ["--log-level", str(level).lower()]
    uvicorn_level = d.value("uvicorn_log_level")
    if uvicorn_level:
        d.args += ["--log-level-http", "debug" if uvicorn_level == "trace" else str(uvicorn_level)]
        d.middleware = replace(d.middleware, log_level=str(uvicorn_level))


def middleware(d: Draft) -> None:
    d.middleware = replace(
        d.middleware,
        max_logprobs=parse_int(d.value("max_logprobs", 20), d.spelled("max_logprobs")),
        enable_request_id_headers=bool(d.value("enable_request_id_headers")),
        skip_model_name_validation=bool(d.env["VLLM_SKIP_MODEL_NAME_VALIDATION"]),
    )


def middleware_workers(d: Draft) -> None:
    """VLLM_SHIM_MIDDLEWARE_WORKERS, else vLLM's --api-server-count (its API server processes), else one worker per
    four CPUs of the pod's limit (shim/cpu_limit.py)."""
    explicit, asked = d.env["VLLM_SHIM_MIDDLEWARE_WORKERS"], d.value("api_server_count")
    if asked is not None and (explicit is not None or d.headless):
        why = "a headless worker pod serves no API" if d.headless else "VLLM_SHIM_MIDDLEWARE_WORKERS wins"
        d.dropped.append((d.spelled("api_server_count"), why))
        asked = None
    if explicit is not None:
        if explicit < 1:
            raise CliError(f"environment variable VLLM_SHIM_MIDDLEWARE_WORKERS: {explicit} workers (at least 1)")
        d.middleware_workers = explicit
    elif asked is not None:
        d.middleware_workers = parse_int(asked, d.spelled("api_server_count"))
        if d.middleware_workers < 1:
            raise CliError(f"argument {d.spelled('api_server_count')}: the API needs at least 1 server process")
    else:
        d.middleware_workers = default_workers(d.cpus)


def model(d: Draft) -> None:
    """The model is decided before the steps run (Draft.model); this row exists so the table is complete."""


Step = Callable[[Draft], None]
STEPS: dict[str, Step] = {
    "model": model,
    "ports": ports,
    "served_names": served_names,
    "api_key": api_key,
    "hf_token": hf_token,
    "tool_call_parser": tool_call_parser,
    "reasoning_parser": reasoning_parser,
    "lora": lora,
    "chunked_prefill": chunked_prefill,
    "topology": topology,
    "kv_transfer": kv_transfer,
    "speculative": speculative,  # after topology and kv_transfer: SGLang's limits depend on the layout and role
    "pooling": pooling,
    "sleep_mode": sleep_mode,
    "log_level": log_level,
    "middleware_workers": middleware_workers,  # after topology: a headless pod runs no middleware
    "middleware": middleware,
}
