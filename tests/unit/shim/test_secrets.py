"""Secrets stay off argv and out of logs: the plan, the run dir, the engine wrapper and the launcher's scrubber."""

from __future__ import annotations

import io
import json
import logging
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from middleware.config import MiddlewareConfig
from shim.cli import run_files, write_run_dir
from shim.plan import ENGINE_SECRETS_FILE
from shim.pod.engine_launch import REDACTED, SECRETS_ENV, install_log_scrubber, read_secrets
from shim.pod.engine_wrapper import engine_environment, pump
from shim.translate import translate

LINE = "serve m --api-key user-key-1 --hf-token hf_token_1"


def plan_for(tmp_path: Path, line: str = LINE, **environ: str):  # type: ignore[no-untyped-def]
    return translate(shlex.split(line), {"VLLM_SHIM_RUN_DIR": str(tmp_path / "run"), **environ})


def test_no_secret_in_engine_args_or_the_shown_plan(tmp_path: Path) -> None:
    plan = plan_for(tmp_path)
    shown = json.dumps(plan.summary()) + " ".join(plan.engine_args) + " ".join(plan.engine_program)
    for secret in ("user-key-1", "hf_token_1"):
        assert secret not in shown
    assert plan.engine_env == (("HF_TOKEN", "hf_token_1"),)
    assert plan.middleware.api_keys == ("user-key-1",)


def test_bare_hf_token_leaves_the_environment_alone(tmp_path: Path) -> None:
    assert plan_for(tmp_path, "serve m --hf-token").engine_env == ()


def test_run_dir_holds_a_fresh_engine_key_owner_only(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, LINE, VLLM_API_KEY="env-key")
    first, second = run_files(plan, as_root=False), run_files(plan, as_root=False)
    run_dir = write_run_dir(plan, first)
    data = read_secrets(str(run_dir / ENGINE_SECRETS_FILE))
    assert data["api_key"] != read_secrets_text(second[ENGINE_SECRETS_FILE])["api_key"]
    assert len(data["api_key"]) >= 32 and data["env"] == {"HF_TOKEN": "hf_token_1"}
    assert (run_dir / ENGINE_SECRETS_FILE).stat().st_mode & 0o077 == 0
    # Only the secrets file holds the engine key and the HF token; only middleware.json the user's key.
    for name, text in first.items():
        assert (data["api_key"] in text) == (name == ENGINE_SECRETS_FILE), name
        assert ("hf_token_1" in text) == (name == ENGINE_SECRETS_FILE), name
        assert ("user-key-1" in text) == (name == "middleware.json"), name
    # The middleware finds the engine key through its config.
    config = MiddlewareConfig.load(run_dir / "middleware.json")
    assert config.engine_key() == data["api_key"]


def read_secrets_text(text: str) -> dict[str, str]:
    return dict(json.loads(text))


def test_middleware_refuses_to_start_without_the_engine_key(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        MiddlewareConfig(engine_secrets_file=str(tmp_path / "missing.json")).engine_key()
    empty = tmp_path / "empty.json"
    empty.write_text('{"api_key": ""}')
    with pytest.raises(ValueError, match="no engine api_key"):
        MiddlewareConfig(engine_secrets_file=str(empty)).engine_key()
    assert MiddlewareConfig().engine_key() is None


def test_engine_environment(tmp_path: Path) -> None:
    secrets = tmp_path / ENGINE_SECRETS_FILE
    secrets.write_text(json.dumps({"api_key": "engine-key-1", "env": {"HF_TOKEN": "hf-token-1"}}))
    env, scrub = engine_environment({"VLLM_API_KEY": "user-key-1", "PATH": "/bin"}, str(secrets))
    assert env == {"PATH": "/bin", "HF_TOKEN": "hf-token-1", SECRETS_ENV: str(secrets)}
    assert set(scrub) == {b"engine-key-1", b"hf-token-1", b"user-key-1"}
    assert engine_environment({"VLLM_API_KEY": "user-key-1"}, None) == ({}, [])
    # Too short to scrub without blanking the log: "k" stays, the long secrets go.
    assert engine_environment({"VLLM_API_KEY": "k"}, str(secrets))[1] == [b"engine-key-1", b"hf-token-1"]


def test_pump_scrubs_every_line() -> None:
    source = io.BytesIO(b"server_args={'api_key': 'engine-k'}\nHF_TOKEN=hf-t and engine-k again\npartial")
    sink = io.BytesIO()
    pump(source, sink, b"[engine] ", [b"engine-k", b"hf-t"])
    assert sink.getvalue() == (
        b"[engine] server_args={'api_key': '***'}\n[engine] HF_TOKEN=*** and *** again\n[engine] partial\n"
    )


def test_log_scrubber_covers_fstrings_and_arguments() -> None:
    """Run in a child: the record factory is process-wide, as it is in the launcher."""
    code = """
import logging, sys
from shim.pod.engine_launch import install_log_scrubber
logging.basicConfig(stream=sys.stdout, format="%(message)s", level=logging.INFO)
install_log_scrubber(["k-123"])
log = logging.getLogger("sglang.srt.entrypoints.engine")
log.info(f"server_args={ {'api_key': 'k-123', 'port': 1} }")
log.info("args %s", {"nested": ["k-123"]})
log.info("plain %d", 5)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "k-123" not in out
    assert out.splitlines() == [
        f"server_args={{'api_key': '{REDACTED}', 'port': 1}}",
        f"args {{'nested': ['{REDACTED}']}}",
        "plain 5",
    ]


def test_scrubber_is_a_no_op_for_clean_records() -> None:
    previous = logging.getLogRecordFactory()
    try:
        install_log_scrubber(["never-logged"])
        record = logging.getLogRecordFactory()("x", logging.INFO, __file__, 1, "a %s", ("b",), None)
        assert (record.msg, record.args) == ("a %s", ("b",))
    finally:
        logging.setLogRecordFactory(previous)


def test_launcher_takes_sglangs_steps_with_the_key_set_between_parse_and_launch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """shim/engine_launch.main against stand-ins for the four SGLang functions (the contract test checks the
    real `__main__` block has exactly these steps)."""
    import types

    from shim.pod import engine_launch

    secrets = tmp_path / ENGINE_SECRETS_FILE
    secrets.write_text(json.dumps({"api_key": "engine-k", "env": {}}))
    monkeypatch.setenv(SECRETS_ENV, str(secrets))
    calls: list[tuple[str, object]] = []
    record = types.SimpleNamespace(api_key=None)

    def prepare(argv: list[str]) -> types.SimpleNamespace:
        calls.append(("prepare_server_args", list(argv)))
        return record

    def run_server(server_args: types.SimpleNamespace) -> None:
        calls.append(("run_server", server_args.api_key))

    fakes = {
        "sglang": types.ModuleType("sglang"),
        "sglang.launch_server": types.SimpleNamespace(run_server=run_server),
        "sglang.srt": types.ModuleType("sglang.srt"),
        "sglang.srt.plugins": types.SimpleNamespace(load_plugins=lambda: calls.append(("load_plugins", None))),
        "sglang.srt.server_args": types.SimpleNamespace(prepare_server_args=prepare),
        "sglang.srt.utils": types.SimpleNamespace(
            kill_process_tree=lambda pid, include_parent: calls.append(("kill_process_tree", include_parent))
        ),
    }
    for name, module in fakes.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(logging, "setLogRecordFactory", lambda factory: calls.append(("scrubber", None)))
    engine_launch.main(["--model-path", "m"])
    assert calls == [
        ("scrubber", None),  # before anything of SGLang's can log
        ("load_plugins", None),
        ("prepare_server_args", ["--model-path", "m"]),
        ("run_server", "engine-k"),
        ("kill_process_tree", False),
    ]
    assert [name for name, _ in calls[1:]] == list(engine_launch.SGLANG_MAIN_CALLS)


def test_launcher_refuses_to_start_without_its_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from shim.pod import engine_launch

    monkeypatch.delenv(SECRETS_ENV, raising=False)
    with pytest.raises(SystemExit, match=SECRETS_ENV):
        engine_launch.main([])
