"""`python -m middleware`: argument parsing, uvicorn options, log format, and one real start."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from middleware.__main__ import TIMEOUT_KEEP_ALIVE_S, log_config, parse_args, uvicorn_options
from middleware.config import MiddlewareConfig


def test_uvicorn_options_defaults() -> None:
    args = parse_args(["--config", "c.json", "--port", "8002"])
    options = uvicorn_options(args, MiddlewareConfig(log_level="warning"))
    assert options["host"] == "127.0.0.1" and options["port"] == 8002 and options["workers"] == 1
    assert options["timeout_keep_alive"] == TIMEOUT_KEEP_ALIVE_S > 10  # above haproxy's idle reuse
    assert options["access_log"] is False
    assert options["loop"] == options["http"] == "auto"
    assert options["log_level"] == "warning"


def test_cli_log_level_and_access_log_override() -> None:
    args = parse_args(["--config", "c", "--port", "1", "--log-level", "DEBUG", "--access-log", "--workers", "3"])
    options = uvicorn_options(args, MiddlewareConfig())
    assert options["log_level"] == "debug" and options["access_log"] is True and options["workers"] == 3


def test_every_log_line_names_the_program() -> None:
    # Checked without dictConfig: reconfiguring global logging here would leak into other tests.
    config = log_config("info")
    assert set(config["loggers"]) == {"middleware", "uvicorn", "uvicorn.error", "uvicorn.access"}
    assert {logger["handlers"][0] for logger in config["loggers"].values()} == {"stdout"}
    formatter = logging.Formatter(config["formatters"]["plain"]["format"])
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "hello", None, None)
    assert " middleware INFO uvicorn.error: hello" in formatter.format(record)


def test_python_dash_m_middleware_serves(tmp_path: Path) -> None:
    pytest.importorskip("middleware.rewrite.route_rules", reason="middleware/rewrite/route_rules.py has not landed yet")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "mw.json"
    config.write_text(MiddlewareConfig(vllm_version="9.9.9").to_json())
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "middleware", "--config", str(config), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                resp = httpx.get(f"http://127.0.0.1:{port}/version", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert resp.json() == {"version": "9.9.9"}
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    assert "middleware" in output and "GET /version" not in output  # access log off by default
