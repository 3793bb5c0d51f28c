"""The Jenkinsfile that builds and pushes the image: checked as text (no Jenkins here to validate it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JENKINSFILE = (ROOT / "Jenkinsfile").read_text()


def code_only(groovy: str) -> str:
    """The Groovy with comments and string contents blanked, so that braces and words are the code's own."""
    token = re.compile(r"'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\"|//[^\n]*|/\*.*?\*/", re.S)
    return token.sub(lambda m: "" if m.group().startswith("/") else m.group()[0] * 2, groovy)


def stage(name: str) -> str:
    """The text of one stage, up to the next one."""
    start = JENKINSFILE.index(f"stage('{name}')")
    following = JENKINSFILE.find("stage('", start + 1)
    return JENKINSFILE[start : following if following != -1 else len(JENKINSFILE)]


def test_groovy_parses_it() -> None:
    """A declarative pipeline is Groovy: a syntax error shows up in a plain parse (where groovy is installed)."""
    if shutil.which("groovy") is None:
        pytest.skip("groovy is not installed (apt-get install groovy) to parse the Jenkinsfile")
    script = f'new GroovyShell().parse(new File("{ROOT / "Jenkinsfile"}")); println "parsed"'
    proc = subprocess.run(["groovy", "-e", script], capture_output=True, text=True, timeout=120)
    if "JAVA_HOME" in proc.stdout + proc.stderr:
        pytest.skip(f"groovy cannot find Java: {proc.stdout.strip() or proc.stderr.strip()}")
    assert (proc.returncode, proc.stdout.strip()) == (0, "parsed"), proc.stderr


def test_braces_and_parentheses_balance() -> None:
    code = code_only(JENKINSFILE)
    for opening, closing in ("{}", "()", "[]"):
        assert code.count(opening) == code.count(closing), f"unbalanced {opening}{closing}"


def test_parameters_name_the_registry_and_hard_code_no_host_or_secret() -> None:
    for name in ("REGISTRY", "IMAGE_NAME", "TAG", "REGISTRY_CREDENTIALS_ID"):
        assert re.search(rf"string\(name: '{name}'", JENKINSFILE), name
    for name in ("REGISTRY", "REGISTRY_CREDENTIALS_ID"):
        assert re.search(rf"string\(name: '{name}', defaultValue: ''", JENKINSFILE), f"{name} must default to empty"
    hosts = re.findall(r"\b(?:[a-z0-9-]+\.)+(?:io|com|net|org|dev|cloud|ai|local|internal)\b", JENKINSFILE)
    assert hosts == []
    assert not re.search(r"(?i)password\s*[:=]\s*['\"][^'\"]", JENKINSFILE)


def test_test_stage_runs_the_ci_entry_point() -> None:
    assert "sh 'bash .ci/run'" in stage("Test")


def test_build_stage_builds_both_variants_with_the_dockerfiles_build_args() -> None:
    build = stage("Build")
    dockerfile_args = set(re.findall(r"^ARG (\w+)", (ROOT / "Dockerfile").read_text(), re.M))
    used = re.findall(r"--build-arg (\w+)=", build)
    assert used and set(used) <= dockerfile_args
    assert build.count("docker build") == 2
    assert '"$IMAGE_NAME:$IMAGE_TAG"' in build and '"$IMAGE_NAME:$IMAGE_TAG-rocm"' in build
    assert "sglang-rocm" in build and "-cu129" in build


def test_latest_is_pushed_from_main_only() -> None:
    assert "pushAs(env.IMAGE_TAG)" in stage("Push")
    latest = stage("Push latest")
    assert "branch 'main'" in latest and "pushAs('latest')" in latest
    assert JENKINSFILE.count("pushAs('latest')") == 1, "latest is pushed in one place, under `when { branch 'main' }`"
    assert "docker push" not in JENKINSFILE.replace('docker push "$REGISTRY/$IMAGE_NAME:$PUSH_TAG$suffix"', "")


def test_secrets_reach_only_the_shell() -> None:
    """withCredentials binds them; the sh scripts that use them are single-quoted (no Groovy interpolation)."""
    assert "withCredentials([usernamePassword(credentialsId: params.REGISTRY_CREDENTIALS_ID" in JENKINSFILE
    assert "--password-stdin" in JENKINSFILE
    for script in re.findall(r'sh\s+"""(.*?)"""', JENKINSFILE, re.S):
        assert "REGISTRY_PASSWORD" not in script
