"""`python -m sim` as a real process: port closed -> 503 -> 200, the official openai client, and the crash faults."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.live


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(tmp_path: Path, name: str, *argv: str, **knobs: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "VLLM_SHIM_SIM_LOAD_SECONDS": "0.5",
           "VLLM_SHIM_SIM_WARMUP_SECONDS": "1.0", "VLLM_SHIM_SIM_TOKENS_PER_SECOND": "500", **knobs}
    log = tmp_path / f"{name}.log"
    command = [sys.executable, "-m", "sim", "--model-path", "org/sim-model", "--host", "127.0.0.1", "--port",
               str(port), *argv]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    return process, port, log


def health(port: int) -> int | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code
    except httpx.TransportError:
        return None  # connection refused: nothing listens yet


Crashes = dict[str, tuple[subprocess.Popen[bytes], int, Path]]


@pytest.fixture(scope="module")
def crashes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crashes]:
    """The crash-fault processes, started once and early so their start-up overlaps the lifecycle test."""
    tmp = tmp_path_factory.mktemp("crashes")
    started = {
        "on_load": start(tmp, "load", VLLM_SHIM_SIM_FAULT="crash_on_load", VLLM_SHIM_SIM_LOAD_SECONDS="0.2"),
        "after": start(tmp, "after", VLLM_SHIM_SIM_FAULT="crash_after:0.5", VLLM_SHIM_SIM_LOAD_SECONDS="0",
                       VLLM_SHIM_SIM_WARMUP_SECONDS="0"),
    }
    yield started
    for process, _, _ in started.values():
        if process.poll() is None:
            process.kill()
            process.wait()


def test_process_lifecycle_and_openai_client(tmp_path: Path, crashes: Crashes) -> None:
    multiproc_dir = tmp_path / "prom"
    multiproc_dir.mkdir()
    process, port, log = start(tmp_path, "sim", "--served-model-name", "served", "--enable-metrics",
                               PROMETHEUS_MULTIPROC_DIR=str(multiproc_dir))
    try:
        seen: list[int | None] = []
        deadline = time.monotonic() + 60
        while not seen or seen[-1] != 200:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"never healthy; saw {seen}\n{log.read_text()}"
            status = health(port)
            if not seen or seen[-1] != status:
                seen.append(status)
            time.sleep(0.05)
        assert seen == [None, 503, 200]

        oai = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        reply = oai.chat.completions.create(model="served", messages=[{"role": "user", "content": "ping pong"}],
                                            max_tokens=3)
        assert reply.choices[0].message.content == "ping pong ping" and reply.usage is not None
        assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 3
        chunks = list(oai.chat.completions.create(model="served", stream=True, stream_options={"include_usage": True},
                                                  messages=[{"role": "user", "content": "a b c"}], max_tokens=20))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "a b c a b c a b"
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8

        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        requests = {s.labels["is_streaming"]: s.value for f in text_string_to_metric_families(text)
                    for s in f.samples if s.name == "sglang:num_requests_total"}
        assert requests == {"false": 1.0, "true": 1.0}
        assert not list(multiproc_dir.iterdir()), "PROMETHEUS_MULTIPROC_DIR must not switch on multiprocess mode"
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=15)
    output = log.read_text()
    assert code in (0, -signal.SIGTERM), output  # uvicorn re-raises the signal it shut down on
    assert " sim INFO simulated SGLang 0.5.23" in output and " sim INFO knobs:" in output


def test_crash_faults_exit_1(crashes: Crashes) -> None:
    on_load, on_load_port, on_load_log = crashes["on_load"]
    after, after_port, after_log = crashes["after"]
    assert on_load.wait(timeout=60) == 1, on_load_log.read_text()
    assert health(on_load_port) is None
    assert after.wait(timeout=60) == 1, after_log.read_text()
    assert "fault crash_after:0.5" in after_log.read_text()
    assert "Uvicorn running" in after_log.read_text()  # it was up before it crashed
    assert health(after_port) is None
