"""The pod's CPU limit from fake cgroup trees, and the middleware worker count it and the command line give."""

from __future__ import annotations

from pathlib import Path

import pytest

from shim.cpu_limit import cgroup_cpus, default_workers, pod_cpus
from shim.errors import CliError
from shim.translate import translate


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    return root


@pytest.mark.parametrize(
    ("files", "cpus"),
    [
        ({"cpu.max": "max 100000"}, None),  # v2, no limit
        ({"cpu.max": "800000 100000"}, 8.0),  # v2, limits.cpu: 8
        ({"cpu.max": "250000 100000"}, 2.5),  # v2, limits.cpu: 2500m
        ({"cpu.max": "50000 100000", "cpu/cpu.cfs_quota_us": "900000"}, 0.5),  # v2 wins where both are mounted
        ({"cpu/cpu.cfs_quota_us": "400000", "cpu/cpu.cfs_period_us": "100000"}, 4.0),  # v1
        ({"cpu,cpuacct/cpu.cfs_quota_us": "150000", "cpu,cpuacct/cpu.cfs_period_us": "50000"}, 3.0),  # v1, joint
        ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),  # v1, no limit
        ({"cpu.max": "garbage"}, None),
        ({}, None),  # no cgroup files at all
    ],
)
def test_cgroup_cpus(tmp_path: Path, files: dict[str, str], cpus: float | None) -> None:
    assert cgroup_cpus(tree(tmp_path, files)) == cpus


def test_pod_cpus_is_the_quota_capped_by_the_cpus_it_may_run_on(tmp_path: Path) -> None:
    limited = tree(tmp_path / "a", {"cpu.max": "1200000 100000"})
    assert pod_cpus(limited, schedulable=64) == 12.0
    assert pod_cpus(limited, schedulable=4) == 4.0
    assert pod_cpus(tree(tmp_path / "b", {"cpu.max": "max 100000"}), schedulable=6) == 6.0
    assert pod_cpus(tmp_path / "none", schedulable=3) == 3.0


@pytest.mark.parametrize(
    ("cpus", "workers"),
    [(None, 1), (0.5, 1), (2.0, 1), (3.9, 1), (4.0, 1), (7.9, 1), (8.0, 2), (16.0, 4), (31.0, 7), (32.0, 8), (96, 8)],
)
def test_default_workers(cpus: float | None, workers: int) -> None:
    assert default_workers(cpus) == workers


def workers(args: list[str], env: dict[str, str] | None = None, cpus: float | None = None) -> tuple[int, list[str]]:
    plan = translate(["serve", "m", *args], env or {}, cpus=cpus)
    return plan.middleware_workers, [dropped.flag for dropped in plan.dropped]


def test_the_pods_cpus_decide_without_flag_or_variable() -> None:
    assert workers([], cpus=16) == (4, [])
    assert workers([]) == (1, [])


def test_api_server_count_is_the_worker_count() -> None:
    assert workers(["--api-server-count", "3"], cpus=16) == (3, [])
    assert workers(["-asc", "2"]) == (2, [])


def test_the_variable_wins_over_flag_and_cpus() -> None:
    env = {"VLLM_SHIM_MIDDLEWARE_WORKERS": "5"}
    assert workers([], env, cpus=64) == (5, [])
    assert workers(["--api-server-count", "3"], env) == (5, ["--api-server-count"])


def test_a_headless_pod_drops_the_flag() -> None:
    args = ["-tp", "8", "--nnodes", "2", "--node-rank", "1", "--master-addr", "h", "--headless", "-asc", "4"]
    assert workers(args)[1] == ["-asc"]


def test_rendered_command_line_has_the_count() -> None:
    from shim.render import render

    files = render(translate(["serve", "m", "-asc", "3"], {}), as_root=False)
    assert "--workers 3" in files["supervisord.conf"]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--api-server-count", "0"], {}, "--api-server-count: the API needs at least 1"),
        (["-asc", "two"], {}, "argument -asc: invalid int value"),
        ([], {"VLLM_SHIM_MIDDLEWARE_WORKERS": "0"}, "VLLM_SHIM_MIDDLEWARE_WORKERS"),
    ],
)
def test_bad_counts_exit_2(args: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(CliError, match=message):
        translate(["serve", "m", *args], env)
