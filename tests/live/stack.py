"""Run the real stack (`vllm serve` → supervisord → haproxy, middleware, simulated SGLang) on free ports."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SIM_KNOBS = {
    "VLLM_SHIM_SIM_LOAD_SECONDS": "1.5",
    "VLLM_SHIM_SIM_WARMUP_SECONDS": "1.0",
    "VLLM_SHIM_SIM_TOKENS_PER_SECOND": "200",
}


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port_block(size: int = 3) -> int:
    """A port p such that p .. p+size-1 are free on 127.0.0.1, chosen below the kernel's ephemeral range.

    The stack binds its ports seconds after they are chosen; an ephemeral port could be taken in between by
    any outgoing connection on the machine, a port below that range only by another listener.
    """
    low, _ = _ephemeral_range()
    for _ in range(500):
        base = random.randrange(10000, max(10001, low - size))
        sockets = []
        try:
            for port in range(base, base + size):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free block of ports")


@dataclass
class Stack:
    run_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def health(self) -> int | None:
        try:
            return httpx.get(self.url + "/health", timeout=2).status_code
        except httpx.HTTPError:
            return None

    def wait_health(self, status: int, timeout: float = 30) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.health() == status:
                return time.monotonic() - start
            if self.process.poll() is not None:
                raise AssertionError(f"stack exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"/health never became {status} in {timeout}s:\n{self.log()[-3000:]}")

    def supervisorctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        conf = str(self.run_dir / "supervisord.conf")
        command = [sys.executable, "-m", "supervisor.supervisorctl", "-c", conf, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=30)

    def pid_of(self, program: str) -> int:
        return int(self.supervisorctl("pid", program).stdout.strip())

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()


def start_stack(tmp_path: Path, *vllm_args: str, port: int | None = None, model: str = "test-model",
                **environ: str) -> Stack:
    port = port or free_port_block()
    run_dir = tmp_path / "run"
    env = {**os.environ, **SIM_KNOBS, "VLLM_SHIM_ENGINE": "sim", "VLLM_SHIM_RUN_DIR": str(run_dir), **environ}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = tmp_path / "stack.log"
    command = [sys.executable, "-m", "vllm", "serve", model, "--port", str(port), *vllm_args]
    # Append mode: supervisord reopens /dev/stdout for its programs, so the file is written through several
    # open file descriptions; without O_APPEND its own lines overwrite the programs' from offset 0.
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return Stack(run_dir=run_dir, port=port, process=process, log_path=log_path, env=env)
