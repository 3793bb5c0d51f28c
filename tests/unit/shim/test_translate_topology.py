"""Parallel layout, node groups and worker pods (issue 11, items 3 and 4): translate() and render()."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from shim.errors import CliError
from shim.render import programs, render
from shim.topology import is_moe
from shim.translate import translate

MODELS = Path(__file__).resolve().parents[2] / "data" / "models"
DENSE, MOE = str(MODELS / "llama"), str(MODELS / "qwen3-moe")
LWS = {"LWS_LEADER_ADDRESS": "big-0.big", "LWS_GROUP_SIZE": "2", "LWS_WORKER_INDEX": "1"}


def plan_of(line: str, environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return translate(shlex.split(line), environ or {})


def after(args: tuple[str, ...], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args else None


def test_moe_is_read_from_the_config() -> None:
    assert is_moe(MOE, None, {}) is True
    assert is_moe(DENSE, None, {}) is False
    assert is_moe("org/not-here", None, {"HF_HUB_CACHE": "/nonexistent"}) is None


def test_moe_is_read_from_the_hf_cache(tmp_path: Path) -> None:
    snapshot = tmp_path / "models--org--moe" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"n_routed_experts": 256}))
    assert is_moe("org/moe", None, {"HF_HUB_CACHE": str(tmp_path)}) is True
    assert is_moe("org/moe", str(tmp_path), {}) is True  # --download-dir is a cache of the same layout


def test_dp_with_expert_parallel_on_moe_is_attention_dp_on_the_same_gpus() -> None:
    plan = plan_of(f"serve {MOE} -tp 4 -dp 2 --enable-expert-parallel")
    args = plan.engine_args
    assert after(args, "--tensor-parallel-size") == "8"
    assert after(args, "--attn-dp-size") == "2"
    assert after(args, "--ep-size") == "8"
    assert "--data-parallel-size" not in args
    assert any("MoE model" in w for w in plan.warnings)


def test_dp_on_a_dense_model_stays_replicas() -> None:
    plan = plan_of(f"serve {DENSE} -tp 2 -dp 4")
    assert after(plan.engine_args, "--tensor-parallel-size") == "2"
    assert after(plan.engine_args, "--data-parallel-size") == "4"
    assert "--attn-dp-size" not in plan.engine_args
    assert any("replicas" in w for w in plan.warnings)


def test_dp_with_an_unreadable_config_takes_the_memory_safe_layout() -> None:
    plan = plan_of("serve org/unknown -tp 2 -dp 2", {"HF_HUB_CACHE": "/nonexistent"})
    assert after(plan.engine_args, "--attn-dp-size") == "2"
    assert any("not readable" in w for w in plan.warnings)


def test_expert_parallel_without_dp_shards_over_tp() -> None:
    assert after(plan_of(f"serve {MOE} -tp 4 --enable-expert-parallel").engine_args, "--ep-size") == "4"


def test_multi_node_rendezvous_is_the_master() -> None:
    args = plan_of("serve m -tp 8 -pp 2 --nnodes 2 --node-rank 0 --master-addr 10.0.0.1 --master-port 1234").engine_args
    assert (after(args, "--nnodes"), after(args, "--node-rank")) == ("2", "0")
    assert after(args, "--dist-init-addr") == "10.0.0.1:1234"


def test_master_port_defaults_to_vllms() -> None:
    args = plan_of("serve m -tp 8 --nnodes 2 --node-rank 1 --master-addr h --headless").engine_args
    assert after(args, "--dist-init-addr") == "h:29501"


def test_leaderworkerset_fills_what_the_command_line_leaves_out() -> None:
    worker = plan_of("serve m -tp 8 -pp 2", LWS)
    assert after(worker.engine_args, "--nnodes") == "2"
    assert after(worker.engine_args, "--node-rank") == "1"
    assert after(worker.engine_args, "--dist-init-addr") == "big-0.big:29501"
    assert worker.headless
    leader = plan_of("serve m -tp 8 -pp 2", {**LWS, "LWS_WORKER_INDEX": "0"})
    assert after(leader.engine_args, "--node-rank") == "0" and not leader.headless
    assert after(plan_of("serve m --node-rank 0 -tp 8", LWS).engine_args, "--node-rank") == "0"  # the line wins


def test_multi_node_dp_maps_to_nodes() -> None:
    line = f"serve {MOE} -tp 1 -dp 16 -dpl 8 -dpa 10.0.0.1 -dpp 13345 --enable-expert-parallel"
    leader = plan_of(line).engine_args
    assert (after(leader, "--nnodes"), after(leader, "--node-rank")) == ("2", "0")
    assert after(leader, "--dist-init-addr") == "10.0.0.1:13345"
    assert after(leader, "--attn-dp-size") == "16" and after(leader, "--ep-size") == "16"
    worker = plan_of(line + " --headless --data-parallel-start-rank 8")
    assert after(worker.engine_args, "--node-rank") == "1" and worker.headless


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("serve m --nnodes 2 -tp 8", "--master-addr"),
        ("serve m --nnodes 2 --node-rank 2 --master-addr h", "--node-rank"),
        ("serve m --headless", "--headless"),
        ("serve m --distributed-executor-backend ray", "LeaderWorkerSet"),
    ],
)
def test_topology_errors(line: str, message: str) -> None:
    with pytest.raises(CliError, match=message):
        plan_of(line)


def test_mp_backend_is_sglangs_own() -> None:
    plan_of("serve m --distributed-executor-backend mp")


def test_a_headless_pod_runs_sglang_and_haproxy_only() -> None:
    plan = plan_of("serve m -tp 8 -pp 2", LWS)
    assert [p.name for p in programs(plan)] == ["haproxy", "engine"]
    assert "--drain-seconds 0 " in programs(plan)[1].command  # no API traffic to drain
    files = render(plan)
    assert "middleware" not in files["supervisord.conf"].split("[eventlistener")[0].replace("middleware.json", "")
    haproxy = files["haproxy.cfg"]
    assert f"server engine 127.0.0.1:{plan.ports.engine}" in haproxy
    assert "headless worker node" in haproxy and "backend middleware" not in haproxy
    assert f"- {plan.ports.engine} -" in files["haproxy.state"]


def test_the_leader_pod_runs_everything() -> None:
    plan = plan_of("serve m -tp 8 -pp 2", {**LWS, "LWS_WORKER_INDEX": "0"})
    assert [p.name for p in programs(plan)] == ["haproxy", "middleware", "engine"]
    assert "backend middleware" in render(plan)["haproxy.cfg"]
