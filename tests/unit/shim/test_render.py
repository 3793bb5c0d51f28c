"""Rendered configs are valid for the real tools: `haproxy -c` and supervisord's own config parser."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from middleware.config import MiddlewareConfig
from shim.cli import write_run_dir
from shim.errors import CliError
from shim.render import render, supervisor_command
from shim.translate import translate

LINES = [
    "serve facebook/opt-125m --host 0.0.0.0 --port 8000",
    "serve m --port 9100 --api-key s3cret --served-model-name a b --lora-modules x=/p%20q",
    "serve m --host :: --port 9200",
    "serve m",
]


def rendered(tmp_path: Path, line: str, **environ: str) -> tuple[Path, dict[str, str]]:
    plan = translate(shlex.split(line), {"VLLM_SHIM_RUN_DIR": str(tmp_path / "run"), **environ})
    files = render(plan, as_root=False)
    return write_run_dir(plan, files), files


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (scripts/install.sh)")
@pytest.mark.parametrize("line", LINES)
def test_haproxy_accepts_the_config(tmp_path: Path, line: str) -> None:
    run_dir, _ = rendered(tmp_path, line)
    result = subprocess.run(["haproxy", "-c", "-f", str(run_dir / "haproxy.cfg")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # The only warnings allowed are the state file starting the servers DOWN, which is the point of it.
    warnings = [line for line in (result.stdout + result.stderr).splitlines() if "[WARNING]" in line]
    assert all("changed from server-state" in w for w in warnings), warnings


@pytest.mark.parametrize("line", LINES)
def test_supervisord_parses_the_config(tmp_path: Path, line: str) -> None:
    run_dir, _ = rendered(tmp_path, line)
    options = ServerOptions()
    options.realize(args=["-c", str(run_dir / "supervisord.conf")])
    groups = {g.name: g for g in options.process_group_configs}
    assert set(groups) == {"haproxy", "middleware", "engine", "failfast"}
    procs = {g.name: g.process_configs[0] for g in options.process_group_configs}
    assert [
        n for n, _ in sorted(((n, p.priority) for n, p in procs.items() if n != "failfast"), key=lambda x: x[1])
    ] == [
        "haproxy",
        "middleware",
        "engine",
    ]
    assert procs["engine"].autorestart is False and procs["engine"].startretries == 0
    assert procs["haproxy"].autorestart and procs["middleware"].autorestart
    for name in ("haproxy", "middleware", "engine"):
        assert procs[name].stdout_logfile == "/dev/stdout" and procs[name].stdout_logfile_maxbytes == 0
        assert procs[name].stopasgroup and procs[name].killasgroup
    assert options.serverurl == f"unix://{run_dir}/supervisor.sock"


def test_everything_but_haproxy_binds_loopback(tmp_path: Path) -> None:
    _, files = rendered(tmp_path, "serve m --host 0.0.0.0 --port 9300")
    assert "bind 0.0.0.0:9300" in files["haproxy.cfg"]
    # haproxy talks only to the middleware (traffic, and the engine's health as the middleware sees it).
    assert "127.0.0.1:9302" in files["haproxy.cfg"] and "127.0.0.1:9301" not in files["haproxy.cfg"]
    assert "--host 127.0.0.1 --port 9302" in files["supervisord.conf"]
    assert "--host 127.0.0.1 --port 9301" in files["supervisord.conf"]
    config = MiddlewareConfig.from_dict(__import__("json").loads(files["middleware.json"]))
    assert config.engine_url == "http://127.0.0.1:9301"


def test_secret_files_are_owner_only(tmp_path: Path) -> None:
    run_dir, files = rendered(tmp_path, "serve m --api-key s3cret")
    # The user's key is the middleware's alone: never on the engine's command line in supervisord.conf.
    assert "s3cret" not in files["supervisord.conf"] and "s3cret" in files["middleware.json"]
    for name in files:
        assert (run_dir / name).stat().st_mode & 0o077 == 0, name
    assert run_dir.stat().st_mode & 0o077 == 0


def test_percent_is_escaped_for_supervisord(tmp_path: Path) -> None:
    _, files = rendered(tmp_path, "serve m --lora-modules x=/p%20q")
    assert "x=/p%%20q" in files["supervisord.conf"]


def test_command_with_ini_comment_is_refused() -> None:
    with pytest.raises(CliError, match="' ;'"):
        supervisor_command(["echo", "a ;b"])


def test_unwritable_run_dir_is_a_cli_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    plan = translate(["serve", "m"], {"VLLM_SHIM_RUN_DIR": str(blocker / "run")})
    with pytest.raises(CliError, match="VLLM_SHIM_RUN_DIR"):
        write_run_dir(plan, render(plan))


def test_render_is_pure(tmp_path: Path) -> None:
    plan = translate(["serve", "m"], {"VLLM_SHIM_RUN_DIR": str(tmp_path)})
    assert render(plan) == render(plan)
