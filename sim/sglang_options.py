"""The few SGLang options the simulator acts on, resolved once from the parsed command line."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sim.sglang_argv import explicit_options, parse_lora_paths

# Real SGLang reads these from the model's config; a simulated model has none, so pick typical values.
DEFAULT_CONTEXT_LENGTH = 32768
DEFAULT_MAX_RUNNING_REQUESTS = 128
KV_POOL_CONTEXTS = 8  # the simulated KV pool holds this many full contexts unless --max-total-tokens says otherwise
SECRETS = ("api_key", "admin_api_key")


@dataclass(frozen=True)
class SimConfig:
    model_path: str
    served_model_name: str
    host: str
    port: int
    context_length: int
    max_running_requests: int
    max_total_tokens: int
    api_key: str | None = None
    admin_api_key: str | None = None
    enable_lora: bool = False
    lora_adapters: dict[str, str] = field(default_factory=dict)
    enable_metrics: bool = False
    random_seed: int = 0
    tool_call_parser: str | None = None
    reasoning_parser: str | None = None
    enable_memory_saver: bool = False
    skip_server_warmup: bool = False
    allow_auto_truncate: bool = False
    enable_cache_report: bool = False
    trust_request_chat_template: bool = False
    weight_version: str = "default"
    node_rank: int = 0
    log_level: str = "info"
    log_level_http: str | None = None
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None
    ttft_buckets: tuple[float, ...] | None = None
    itl_buckets: tuple[float, ...] | None = None
    e2e_buckets: tuple[float, ...] | None = None
    disaggregation_mode: str = "null"
    disaggregation_bootstrap_port: int = 8998

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SimConfig:
        context_length = args.context_length or DEFAULT_CONTEXT_LENGTH
        adapters = parse_lora_paths(args.lora_paths)
        return cls(
            model_path=args.model_path,
            served_model_name=args.served_model_name or args.model_path,
            host=args.host,
            port=args.port,
            context_length=context_length,
            max_running_requests=args.max_running_requests or DEFAULT_MAX_RUNNING_REQUESTS,
            max_total_tokens=args.max_total_tokens or KV_POOL_CONTEXTS * context_length,
            api_key=args.api_key,
            admin_api_key=args.admin_api_key,
            enable_lora=bool(args.enable_lora or adapters),
            lora_adapters=adapters,
            enable_metrics=args.enable_metrics,
            random_seed=args.random_seed or 0,
            tool_call_parser=args.tool_call_parser,
            reasoning_parser=args.reasoning_parser,
            enable_memory_saver=args.enable_memory_saver,
            skip_server_warmup=args.skip_server_warmup,
            allow_auto_truncate=args.allow_auto_truncate,
            enable_cache_report=args.enable_cache_report,
            trust_request_chat_template=args.trust_request_chat_template,
            weight_version=args.weight_version,
            node_rank=args.node_rank,
            log_level=args.log_level,
            log_level_http=args.log_level_http,
            ssl_keyfile=args.ssl_keyfile,
            ssl_certfile=args.ssl_certfile,
            ttft_buckets=_buckets(args.bucket_time_to_first_token),
            itl_buckets=_buckets(args.bucket_inter_token_latency),
            e2e_buckets=_buckets(args.bucket_e2e_request_latency),
            disaggregation_mode=args.disaggregation_mode,
            disaggregation_bootstrap_port=args.disaggregation_bootstrap_port,
        )

    def describe(self) -> str:
        """One log line; secrets are masked because supervisord logs are widely readable."""
        return _pairs(asdict(self))


def describe_ignored(args: argparse.Namespace) -> str:
    """The options given on the command line that the simulator accepts but does not act on."""
    used = {f.name for f in fields(SimConfig)} | {"lora_paths", "bucket_time_to_first_token",
                                                  "bucket_inter_token_latency", "bucket_e2e_request_latency"}
    return _pairs({k: v for k, v in explicit_options(args).items() if k not in used}) or "none"


def _pairs(values: dict[str, Any]) -> str:
    shown = {k: ("***" if k in SECRETS and v else v) for k, v in values.items()}
    return " ".join(f"{k}={v!r}" for k, v in shown.items() if v not in (None, False, {}, ""))


def _buckets(values: list[float] | None) -> tuple[float, ...] | None:
    return tuple(sorted(values)) if values else None
