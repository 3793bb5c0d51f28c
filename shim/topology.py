"""The `topology` plan step: vLLM's parallel layout, node group and worker role → SGLang's (issue 11).

- Multi-node without Ray: `--nnodes/--node-rank/--master-addr/--master-port` (or a LeaderWorkerSet's
  LWS_GROUP_SIZE / LWS_WORKER_INDEX / LWS_LEADER_ADDRESS) → `--nnodes/--node-rank/--dist-init-addr`. A node
  of rank > 0 (vLLM's `--headless`) runs SGLang only: it serves no API, as SGLang's rank ≥ 1 nodes do not.
- `-dp N`: replicas for a dense model; for an MoE model (or when the model's config cannot be read, the
  layout that never needs more memory per GPU than vLLM) SGLang's attention-DP layout on the same GPUs:
  `--tensor-parallel-size TP×N --attn-dp-size N`, experts over all of them with `--enable-expert-parallel`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shim.errors import CliError
from shim.transforms import parse_int

VLLM_MASTER_PORT = 29501  # vLLM's --master-port default
VLLM_DP_RPC_PORT = 29550  # vLLM's --data-parallel-rpc-port default
MOE_FIELDS = ("num_experts", "n_routed_experts", "num_local_experts", "moe_num_experts")
RAY_MESSAGE = (
    "Ray is not used with SGLang: run every node of the group with the same command line and "
    "--nnodes/--node-rank/--master-addr (node rank > 0 with --headless), or in a LeaderWorkerSet, which sets them "
    "(docs/deploying.md, deploy/leaderworkerset.yaml)"
)


@dataclass(frozen=True)
class Topology:
    args: tuple[str, ...]
    warnings: tuple[str, ...]
    headless: bool


def _config_json(model: str, download_dir: str | None, env: Mapping[str, Any]) -> Path | None:
    """The model's config.json: a local directory, or the newest snapshot in the Hugging Face cache."""
    local = Path(model) / "config.json"
    if local.is_file():
        return local
    hub = env.get("HF_HUB_CACHE") or (Path(env["HF_HOME"]) / "hub" if env.get("HF_HOME") else None)
    caches = [Path(download_dir)] if download_dir else []
    caches.append(Path(hub) if hub else Path.home() / ".cache" / "huggingface" / "hub")
    for cache in caches:
        snapshots = cache / f"models--{model.replace('/', '--')}" / "snapshots"
        found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime) if snapshots.is_dir() else []
        if found:
            return found[-1]
    return None


def is_moe(model: str, download_dir: str | None, env: Mapping[str, Any]) -> bool | None:
    """True/False from the model's config (its expert count, or a nested text_config's); None: unreadable."""
    path = _config_json(model, download_dir, env)
    if path is None:
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    for section in (config, config.get("text_config") or {}, config.get("language_config") or {}):
        if any(int(section.get(name) or 0) > 1 for name in MOE_FIELDS):
            return True
    return False


def _int(values: Mapping[str, Any], dest: str, default: int | None, spelled: str) -> int | None:
    value = values.get(dest)
    return default if value is None else parse_int(value, spelled)


def _nodes(v: Mapping[str, Any], env: Mapping[str, Any], dp: int) -> tuple[int, int, str | None, list[str]]:
    """(node count, rank, rendezvous host:port, notes) from the command line, else vLLM's multi-node DP, else LWS."""
    notes: list[str] = []
    nnodes = _int(v, "nnodes", None, "--nnodes")
    rank = _int(v, "node_rank", None, "--node-rank")
    host, port = v.get("master_addr"), _int(v, "master_port", None, "--master-port")
    local_dp = _int(v, "data_parallel_size_local", None, "--data-parallel-size-local")
    if nnodes is None and local_dp and local_dp < dp:
        if dp % local_dp:
            raise CliError(f"argument --data-parallel-size-local: {local_dp} does not divide --data-parallel-size {dp}")
        nnodes = dp // local_dp
        rank = (_int(v, "data_parallel_start_rank", 0, "--data-parallel-start-rank") or 0) // local_dp
        host = host or v.get("data_parallel_address")
        port = port or _int(v, "data_parallel_rpc_port", VLLM_DP_RPC_PORT, "--data-parallel-rpc-port")
    if nnodes is None and (env.get("LWS_GROUP_SIZE") or 1) > 1:
        nnodes, notes = env["LWS_GROUP_SIZE"], [f"LeaderWorkerSet group of {env['LWS_GROUP_SIZE']} nodes"]
    if nnodes is not None and rank is None:
        rank = env.get("LWS_WORKER_INDEX") or 0
    host = host or env.get("LWS_LEADER_ADDRESS")
    nnodes, rank = nnodes or 1, rank or 0
    if nnodes > 1 and not host:
        raise CliError("multi-node (--nnodes > 1) needs the rendezvous address: --master-addr (or LWS_LEADER_ADDRESS)")
    if not 0 <= rank < nnodes:
        raise CliError(f"argument --node-rank: {rank} is not in 0..{nnodes - 1}")
    address = f"{host}:{port or VLLM_MASTER_PORT}" if nnodes > 1 else None
    return nnodes, rank, address, notes


def _dp_layout(tp: int, dp: int, ep: bool, moe: bool | None, nnodes: int) -> tuple[list[str], str | None]:
    """SGLang's flags for vLLM's tp × dp (× ep), and the decision to log when dp > 1."""
    if dp == 1:
        return ["--tensor-parallel-size", str(tp)] + (["--ep-size", str(tp)] if ep else []), None
    if moe is False and nnodes == 1:
        replicas = ["--tensor-parallel-size", str(tp), "--data-parallel-size", str(dp)]
        return replicas, f"-dp {dp}: dense model: {dp} replicas of TP {tp}"
    if moe:
        why = "MoE model"
    elif moe is None:
        why = "model config not readable, so the layout that needs no more memory per GPU than vLLM's"
    else:
        why = "dense model across nodes (SGLang runs no replicas across nodes)"
    args = ["--tensor-parallel-size", str(tp * dp), "--attn-dp-size", str(dp)]
    experts = f"experts sharded over all {tp * dp} GPUs" if ep else f"experts tensor-parallel over {tp * dp} GPUs"
    return args + (
        ["--ep-size", str(tp * dp)] if ep else []
    ), f"-dp {dp}: {why}: attention DP {dp} × TP {tp}, {experts}"


def plan_topology(values: Mapping[str, Any], env: Mapping[str, Any], model: str) -> Topology:
    backend = values.get("distributed_executor_backend")
    if backend == "ray":
        raise CliError(f"argument --distributed-executor-backend: {RAY_MESSAGE}")
    tp = _int(values, "tensor_parallel_size", 1, "--tensor-parallel-size") or 1
    pp = _int(values, "pipeline_parallel_size", 1, "--pipeline-parallel-size") or 1
    dp = _int(values, "data_parallel_size", 1, "--data-parallel-size") or 1
    nnodes, rank, address, warnings = _nodes(values, env, dp)
    ep = bool(values.get("enable_expert_parallel"))
    moe = is_moe(model, values.get("download_dir"), env) if dp > 1 else None
    args, decision = _dp_layout(tp, dp, ep, moe, nnodes)
    if pp > 1:
        args += ["--pipeline-parallel-size", str(pp)]
    if decision:
        warnings.append(decision)
    if nnodes > 1:
        args += ["--nnodes", str(nnodes), "--node-rank", str(rank), "--dist-init-addr", str(address)]
    headless = bool(values.get("headless")) or rank > 0
    if headless and rank == 0:
        raise CliError("argument --headless: node rank 0 serves the API; a headless node needs --node-rank > 0")
    if headless:
        warnings.append(f"node {rank} of {nnodes}: a headless worker (SGLang only, no API; rank 0 serves it)")
    return Topology(tuple(args), tuple(warnings), headless)
