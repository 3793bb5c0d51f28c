"""deploy/leaderworkerset.yaml: every pod runs the same line; LWS's environment makes a leader and a worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from shim.plan import Plan
from shim.render import programs
from shim.translate import translate

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "leaderworkerset.yaml"
GPUS_PER_POD = 8


def documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def lws() -> dict[str, Any]:
    return next(d for d in documents() if d["kind"] == "LeaderWorkerSet")


def container(role: str) -> dict[str, Any]:
    template = lws()["spec"]["leaderWorkerTemplate"][f"{role}Template"]
    return dict(template["spec"]["containers"][0])


def pod_plan(index: int) -> Plan:
    spec = lws()["spec"]["leaderWorkerTemplate"]
    command = container("leader" if index == 0 else "worker")["command"]
    assert command[0] == "vllm"
    environ = {
        "LWS_LEADER_ADDRESS": "mistral-large-0.mistral-large.default",
        "LWS_GROUP_SIZE": str(spec["size"]),
        "LWS_WORKER_INDEX": str(index),
    }
    return translate(command[1:], environ)


def after(args: tuple[str, ...], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_every_pod_runs_the_same_line() -> None:
    assert container("leader")["command"] == container("worker")["command"]


def test_the_group_is_tp8_pp2_over_its_gpus() -> None:
    size = lws()["spec"]["leaderWorkerTemplate"]["size"]
    args = pod_plan(0).engine_args
    tp, pp = int(after(args, "--tensor-parallel-size")), int(after(args, "--pipeline-parallel-size"))
    assert (tp, pp) == (8, 2)
    assert tp * pp == size * GPUS_PER_POD == size * int(container("worker")["resources"]["limits"]["nvidia.com/gpu"])


def test_leader_and_worker_rendezvous_without_ray() -> None:
    for index in (0, 1):
        args = pod_plan(index).engine_args
        assert (after(args, "--nnodes"), after(args, "--node-rank")) == ("2", str(index))
        assert after(args, "--dist-init-addr") == "mistral-large-0.mistral-large.default:29501"


def test_the_worker_is_headless_and_the_leader_serves() -> None:
    leader, worker = pod_plan(0), pod_plan(1)
    assert not leader.headless and worker.headless
    assert [p.name for p in programs(worker)] == ["haproxy", "engine"]
    assert [p.name for p in programs(leader)] == ["haproxy", "middleware", "engine"]


def test_probes_hit_the_public_port_on_both_pods() -> None:
    for role, index in (("leader", 0), ("worker", 1)):
        c = container(role)
        port = pod_plan(index).ports.public
        for probe in ("readinessProbe", "startupProbe"):
            assert c[probe]["httpGet"] == {"path": "/health", "port": port}


def test_the_service_selects_leaders_only() -> None:
    service = next(d for d in documents() if d["kind"] == "Service")
    assert service["spec"]["selector"]["role"] == "leader"
    assert lws()["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["metadata"]["labels"]["role"] == "leader"
