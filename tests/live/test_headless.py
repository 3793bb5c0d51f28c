"""A headless worker pod (node rank > 0) under real supervisord and haproxy, with the simulated SGLang."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.live.stack import start_stack

WORKER = (
    "--tensor-parallel-size",
    "2",
    "--nnodes",
    "2",
    "--node-rank",
    "1",
    "--master-addr",
    "127.0.0.1",
    "--headless",
)


def test_worker_pod_runs_sglang_and_haproxy_and_answers_the_probes(tmp_path: Path) -> None:
    stack = start_stack(tmp_path, *WORKER)
    try:
        stack.wait_health(200, timeout=60)
        status = stack.supervisorctl("status").stdout
        running = {line.split()[0] for line in status.splitlines() if "RUNNING" in line}
        assert running == {"engine", "haproxy", "failfast"}, status
        api = httpx.get(stack.url + "/v1/models", timeout=5)
        assert api.status_code == 404 and "headless worker node" in api.json()["error"]["message"]
        metrics = httpx.get(stack.url + "/metrics", timeout=5)
        assert metrics.status_code == 200
        assert "--node-rank 1" in stack.log() and "--dist-init-addr 127.0.0.1:29501" in stack.log()
    finally:
        assert stack.stop() == 0, stack.log()[-3000:]
