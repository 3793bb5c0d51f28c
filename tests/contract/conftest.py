"""Contract tests: the shim's output checked by the REAL SGLang (its parser and request validation).

SGLang lives in its own cached virtualenv (scripts/setup-sglang-env.sh); `sglang_oracle.py` runs there as
one long-lived process per test session, answering JSON requests on stdin. See docs/contract-tests.md.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SGLANG_VERSION = os.environ.get(
    "SGLANG_VERSION", (Path(__file__).resolve().parents[2] / "conf" / "sglang-version").read_text().strip()
)
ORACLE = Path(__file__).with_name("sglang_oracle.py")
LAUNCH_ORACLE = Path(__file__).with_name("sglang_launch_oracle.py")
SETUP = "scripts/setup-sglang-env.sh"
STAMP = ".vllm-shim-stamp"
START_TIMEOUT = float(os.environ.get("VLLM_SHIM_ORACLE_START_TIMEOUT", "600"))
CALL_TIMEOUT = float(os.environ.get("VLLM_SHIM_ORACLE_CALL_TIMEOUT", "120"))


def sglang_venv() -> Path:
    default = Path.home() / ".cache" / "vllm-shim" / f"sglang-{SGLANG_VERSION}"
    return Path(os.environ.get("VLLM_SHIM_SGLANG_VENV") or default)


class OracleError(RuntimeError):
    """The oracle itself failed: never to be read as SGLang accepting or rejecting something."""


class SGLangOracle:
    """Client of one `sglang_oracle.py` process running in the SGLang venv."""

    def __init__(self, python: Path, script: Path = ORACLE) -> None:
        self._stderr = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (lives as long as the process)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        # No model download, no GPU probing: the oracle needs neither.
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", CUDA_VISIBLE_DEVICES="", TOKENIZERS_PARALLELISM="0")
        self._proc = subprocess.Popen(
            [str(python), str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            cwd=tempfile.gettempdir(),
        )
        self._buffer = b""
        self._next_id = 0
        ready = self._read(START_TIMEOUT, "starting (importing sglang)")
        if not ready.get("ready"):
            raise OracleError(f"the oracle could not start: {ready.get('error')}\n{ready.get('traceback', '')}")
        self.version: str = ready["version"]
        self.import_seconds: float = ready["import_seconds"]

    # -- transport ----------------------------------------------------------------------------------------

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")[-4000:]

    def _read(self, timeout: float, doing: str) -> dict[str, Any]:
        assert self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise OracleError(f"the oracle timed out after {timeout:.0f} s {doing}\n{self._stderr_tail()}")
            readable, _, _ = select.select([fd], [], [], left)
            if readable:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    code = self._proc.wait()
                    raise OracleError(f"the oracle exited ({code}) while {doing}\n{self._stderr_tail()}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._proc.poll() is not None:
            raise OracleError(f"the oracle is not running (exit {self._proc.returncode})\n{self._stderr_tail()}")
        self._next_id += 1
        request = {**request, "id": self._next_id}
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(request).encode() + b"\n")
        self._proc.stdin.flush()
        answer = self._read(CALL_TIMEOUT, f"answering {request['op']}")
        if answer.get("id") != self._next_id:
            raise OracleError(f"out-of-step answer {answer!r} to request {self._next_id}")
        if answer.get("internal"):
            raise OracleError(f"the oracle failed on {request!r}: {answer['error']}\n{answer.get('traceback', '')}")
        return answer

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._stderr.close()

    # -- operations ---------------------------------------------------------------------------------------

    def parse_args(self, argv: list[str] | tuple[str, ...]) -> dict[str, Any]:
        """SGLang's own argparse parser (`ServerArgs.add_cli_args`) on `argv`, then `ServerArgs.from_cli_args`.

        → {"ok", "error", "args": {dest: value}}
        """
        return self.call({"op": "parse_args", "argv": list(argv)})

    def options(self) -> set[str]:
        """Every option string SGLang's parser defines."""
        return set(self.call({"op": "options"})["options"])

    def request_fields(self) -> dict[str, list[str]]:
        """route → the fields SGLang's request model for it declares."""
        return self.call({"op": "request_fields"})

    def validate_chat(self, body: Any, **options: Any) -> dict[str, Any]:
        """`/v1/chat/completions` validation as SGLang does it. → {"ok", "status", "error", "stage"}"""
        return self.call({"op": "validate_chat", "body": body, **options})

    def validate_completion(self, body: Any, **options: Any) -> dict[str, Any]:
        """`/v1/completions` validation as SGLang does it. → {"ok", "status", "error", "stage"}"""
        return self.call({"op": "validate_completion", "body": body, **options})

    def validate_json_schema(self, schema: Any) -> dict[str, Any]:
        """SGLang's xgrammar-backend check of a structured-output schema. → {"ok", "error"}"""
        return self.call({"op": "validate_json_schema", "schema": schema})

    def validate(self, route: str, body: Any, **options: Any) -> dict[str, Any]:
        if route == "/v1/chat/completions":
            return self.validate_chat(body, **options)
        if route == "/v1/completions":
            return self.validate_completion(body, **options)
        raise ValueError(f"no oracle for route {route}")

    def info(self) -> dict[str, Any]:
        return self.call({"op": "version"})

    def launch_check(self, argv: list[str] | tuple[str, ...]) -> dict[str, Any]:
        """(launch oracle only) parse, `resolve_once()`, `check_server_args()` as `sglang serve` does.

        → {"ok", "stage", "error", "resolved": {field: value}}
        """
        return self.call({"op": "launch_check", "argv": list(argv)})


def _start(script: Path) -> SGLangOracle:
    if os.environ.get("VLLM_SHIM_SKIP_CONTRACT") == "1":
        pytest.skip("VLLM_SHIM_SKIP_CONTRACT=1: contract tests against the real SGLang are skipped")
    venv = sglang_venv()
    python = venv / "bin" / "python"
    if not python.exists() or not (venv / STAMP).exists():
        pytest.fail(
            f"the SGLang {SGLANG_VERSION} contract venv is missing or incomplete at {venv}: "
            f"run {SETUP} (it builds it once; set VLLM_SHIM_SKIP_CONTRACT=1 to skip these tests)",
            pytrace=False,
        )
    oracle = SGLangOracle(python, script)
    if oracle.version != SGLANG_VERSION:
        oracle.close()
        pytest.fail(f"{venv} holds sglang {oracle.version}, not {SGLANG_VERSION}: run {SETUP}", pytrace=False)
    return oracle


@pytest.fixture(scope="session")
def sglang_oracle() -> Iterator[SGLangOracle]:
    oracle = _start(ORACLE)
    try:
        yield oracle
    finally:
        oracle.close()


@pytest.fixture(scope="session")
def launch_oracle() -> Iterator[SGLangOracle]:
    """SGLang's launch-time resolution and checks on a stubbed 8 × H100 node (sglang_launch_oracle.py)."""
    oracle = _start(LAUNCH_ORACLE)
    try:
        yield oracle
    finally:
        oracle.close()
