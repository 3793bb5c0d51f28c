"""OpenShift style: the stack runs as an arbitrary uid in group 0, writing only its run dir and /tmp.

The interpreter the tests run under may sit in root's home (pyenv), which another uid cannot read, so
this test installs the package (as the Dockerfile does, non-editable) into a world-readable virtualenv
over the system Python, cached under /tmp between runs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.live.stack import SIM_KNOBS, free_port_block

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")
VENV = Path(os.environ.get("VLLM_SHIM_ANYUID_VENV", "/tmp/vllm-shim-anyuid-venv"))
UID = 54321


def _venv() -> Path:
    stamp = VENV / "deps.sha256"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if not stamp.exists() or stamp.read_text() != digest:
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(VENV)], check=True)
        subprocess.run([*pip, str(ROOT)], check=True, timeout=600)
        stamp.write_text(digest)
    else:  # dependencies unchanged: only this checkout's code
        subprocess.run([*pip, "--no-deps", "--force-reinstall", str(ROOT)], check=True, timeout=300)
    subprocess.run(["chmod", "-R", "a+rX", str(VENV)], check=True)
    return VENV


def _uid_of(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    uid = next(line for line in status if line.startswith("Uid:")).split()[1]
    gid = next(line for line in status if line.startswith("Gid:")).split()[1]
    return int(uid), int(gid)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")
@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="no system python3 to build a world-readable venv from")
def test_runs_as_a_random_uid_in_group_zero(tmp_path: Path) -> None:
    venv = _venv()
    # Directly under /tmp: pytest's own tmp tree is root's alone, as it should be.
    home = Path(tempfile.mkdtemp(prefix="vllm-shim-anyuid-"))
    os.chown(home, UID, 0)
    port = free_port_block()
    env = {
        "PATH": f"{venv / 'bin'}:/usr/sbin:/usr/bin:/bin",
        "HOME": str(home),
        "VLLM_SHIM_ENGINE": "sim",
        "VLLM_SHIM_RUN_DIR": str(home / "run"),
        **SIM_KNOBS,
    }
    log = tmp_path / "stack.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(venv / "bin" / "vllm"), "serve", "test-model", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=home, user=UID, group=0, extra_groups=[],
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, log.read_text()[-3000:]
            time.sleep(0.3)
        else:
            pytest.fail(log.read_text()[-3000:])
        reply = httpx.post(
            f"http://127.0.0.1:{port}/v1/completions", json={"model": "test-model", "prompt": "hi"}, timeout=30
        )
        assert reply.status_code == 200
        assert _uid_of(process.pid) == (UID, 0)
        status = subprocess.run(
            [str(venv / "bin" / "supervisorctl"), "-c", str(home / "run" / "supervisord.conf"), "status"],
            capture_output=True, text=True, user=UID, group=0, extra_groups=[], env=env,
        )  # fmt: skip
        assert status.stdout.count("RUNNING") >= 3, status.stdout + status.stderr
    finally:
        process.terminate()
        process.wait(timeout=90)
        shutil.rmtree(home, ignore_errors=True)
    assert "Permission denied" not in log.read_text()

