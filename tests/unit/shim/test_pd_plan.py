"""shim/pd_plan.py: the P/D role and bootstrap port read from the FINAL engine arguments, the middleware's
settings, SGLang's bootstrap server moved to loopback and haproxy's relay of the public bootstrap port."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from shim.cli import write_run_dir
from shim.errors import CliError
from shim.pd_plan import engine_option
from shim.plan import Plan
from shim.render import render
from shim.translate import translate


def plan_of(extra: str, line: str = "serve m --host 0.0.0.0 --port 9300", **environ: str) -> Plan:
    return translate(shlex.split(line), {"SGLANG_EXTRA_ARGS": extra, **environ})


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["--disaggregation-mode", "prefill"], "prefill"),
        (["--disaggregation-mode=decode"], "decode"),
        (["--disaggregation-mode", "prefill", "--disaggregation-mode", "decode"], "decode"),  # argparse: last wins
        (["--disaggregation-m", "prefill"], "prefill"),  # a unique prefix, as argparse reads it
        (["--port", "1"], None),
    ],
)
def test_engine_option_reads_what_argparse_would(words: list[str], expected: str | None) -> None:
    assert engine_option(words, "disaggregation_mode") == expected


def test_prefill_role_port_and_bound_reach_the_middleware() -> None:
    timeouts = {"SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT": "10", "SGLANG_DISAGGREGATION_WAITING_TIMEOUT": "20"}
    plan = plan_of("--disaggregation-mode prefill --disaggregation-bootstrap-port 9400", **timeouts)
    config = plan.middleware
    assert (config.pd_role, config.pd_bootstrap_port, config.pd_room_timeout_s) == ("prefill", 9400, 60.0)
    # SGLang's own bootstrap server moves to loopback port public + 3; haproxy takes the public one.
    assert plan.engine_args[-2:] == ("--disaggregation-bootstrap-port", "9303")
    assert plan.pd_bootstrap == (9400, 9303)
    assert any("disaggregated_prefill_orchestrated" in w for w in plan.warnings)


def test_decode_role_opens_no_bootstrap_listener() -> None:
    plan = plan_of("--disaggregation-mode decode")
    assert (plan.middleware.pd_role, plan.middleware.pd_bootstrap_port) == ("decode", 8998)
    assert plan.pd_bootstrap is None and "--disaggregation-bootstrap-port" not in plan.engine_args


def test_loopback_bootstrap_port_must_not_meet_a_moved_engine_port() -> None:
    with pytest.raises(CliError, match="ports must differ"):
        plan_of("--disaggregation-mode prefill", VLLM_SHIM_ENGINE_PORT="9303")


def test_no_role_no_pd() -> None:
    plan = plan_of("")
    assert plan.middleware.pd_role == "" and plan.pd_bootstrap is None and not plan.warnings


@pytest.mark.parametrize("port", ["9301", "9303", "0", "x"])
def test_bootstrap_port_that_collides_or_is_invalid_exits_2(port: str) -> None:
    with pytest.raises(CliError, match="disaggregation-bootstrap-port"):
        plan_of(f"--disaggregation-mode prefill --disaggregation-bootstrap-port {port}")


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (scripts/install.sh)")
def test_haproxy_relays_the_public_bootstrap_port_to_sglangs_loopback_one(tmp_path: Path) -> None:
    plan = plan_of("--disaggregation-mode prefill", VLLM_SHIM_RUN_DIR=str(tmp_path))
    files = render(plan)
    run_dir = write_run_dir(plan, files)
    cfg = files["haproxy.cfg"]
    assert "bind 0.0.0.0:8998" in cfg and "server engine-bootstrap 127.0.0.1:9303" in cfg
    result = subprocess.run(["haproxy", "-c", "-f", str(run_dir / "haproxy.cfg")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    warnings = [line for line in (result.stdout + result.stderr).splitlines() if "[WARNING]" in line]
    assert all("changed from server-state" in w for w in warnings), warnings


def test_multi_node_prefill_keeps_sglangs_port_and_says_it_is_unsupported() -> None:
    plan = plan_of("--disaggregation-mode prefill --dist-init-addr 10.0.0.1:5000 --nnodes 2")
    assert plan.pd_bootstrap is None and "9303" not in plan.engine_args
    assert any("across nodes" in w for w in plan.warnings)
