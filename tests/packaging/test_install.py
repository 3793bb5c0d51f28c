"""The image's build steps, run outside Docker: scripts/install.sh and deploy/image/setup-image.sh.

Each test installs the package from the Docker build context (a copy made with .dockerignore's patterns)
into fresh virtualenvs and then runs deploy/image/verify-install.sh: the check the image build ends with.
The wheels come from the package index once per module (the `wheelhouse` fixture), so the installs
themselves run with PIP_NO_INDEX. VLLM_SHIM_OFFLINE=1 skips them where no package index can be reached.
What only a real `docker build` exercises is listed in docs/building-image.md.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]
VERIFY = "deploy/image/verify-install.sh"
SETUP = "deploy/image/setup-image.sh"

# The tests that install: they need the package index (once per module, for the wheelhouse).
installs = pytest.mark.skipif(
    os.environ.get("VLLM_SHIM_OFFLINE") == "1", reason="VLLM_SHIM_OFFLINE=1: this test installs from the package index"
)


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's rule for the plain patterns .dockerignore uses: `**/x` matches at any depth, `x` at the root."""
    name = relative.rsplit("/", 1)[-1]
    for pattern in patterns:
        if pattern.startswith("**/"):
            if fnmatch.fnmatchcase(name, pattern[3:]):
                return True
        elif fnmatch.fnmatchcase(relative, pattern):
            return True
    return False


def build_context(dest: Path) -> Path:
    """A copy of the tree as `docker build .` sends it."""
    patterns = dockerignore_patterns()

    def skip(folder: str, names: list[str]) -> set[str]:
        base = Path(folder).relative_to(ROOT).as_posix()
        return {n for n in names if ignored(n if base == "." else f"{base}/{n}", patterns)}

    shutil.copytree(ROOT, dest, ignore=skip, symlinks=True)
    return dest


def run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    # A PYTHONPATH naming the checkout (how the suite is often run) would make the installed venv import the
    # checkout instead of what it installed, and the "imported from the venv" check fail.
    clean = {k: v for k, v in (os.environ if env is None else env).items() if k != "PYTHONPATH"}
    return subprocess.run(
        cmd, env=clean, cwd="/", capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def report(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}"


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], Path]:
    """Fresh virtualenvs (pip and nothing else), copied from one made once: ensurepip alone takes ~9 s here.
    A copy is a working venv: Python finds it through the pyvenv.cfg beside the bin/python it runs from."""
    template = tmp_path_factory.mktemp("venv-template") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(template)], check=True)

    def make(path: Path) -> Path:
        shutil.copytree(template, path, symlinks=True)
        return path / "bin" / "python"

    return make


def site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip())


def fake_distribution(python: Path, name: str, version: str, *, module: bool = False) -> None:
    """An installed distribution without an index: a dist-info (and optionally a module plus a console script),
    with a RECORD so that pip can uninstall it."""
    site = site_packages(python)
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text("pip\n")
    record = [f"{info.name}/METADATA,,", f"{info.name}/INSTALLER,,", f"{info.name}/RECORD,,"]
    if module:
        (site / name).mkdir()
        (site / name / "__init__.py").write_text("def main():\n    print('the real one')\n")
        script = python.parent / name
        script.write_text(f"#!{python}\nfrom {name} import main\nmain()\n")
        script.chmod(0o755)
        record += [f"{name}/__init__.py,,", f"{os.path.relpath(script, site)},,"]
    (info / "RECORD").write_text("\n".join(record) + "\n")


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment for an install from wheels fetched once: the package's build and run requirements."""
    wheels = tmp_path_factory.mktemp("wheelhouse")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = [*project["build-system"]["requires"], *project["project"]["dependencies"]]
    proc = run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels), *wanted])
    assert proc.returncode == 0, report(proc)
    return {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)}


def dockerfile_arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert match, f"Dockerfile has no default for ARG {name}"
    return match.group(1)


def test_every_python_package_is_listed_for_the_install() -> None:
    """setuptools installs only the packages pyproject.toml names: a new subpackage (middleware/rewrite/,
    shim/pod/, …) left off the list imports from a checkout and is missing from every install."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("shim", "middleware", "sim", "vllm")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert sorted(found - listed) == []


def test_build_context_keeps_what_the_package_needs() -> None:
    """.dockerignore must not drop a file that `pip install .` or the image scripts read."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {"pyproject.toml", "scripts/install.sh", SETUP, VERIFY}
    needed |= {name.split(".")[0] for name in project["tool"]["setuptools"]["packages"]}
    needed |= set(project["tool"]["setuptools"].get("package-dir", {}).values())
    readme = project["project"].get("readme")
    if isinstance(readme, str):
        needed.add(readme)
    patterns = dockerignore_patterns()
    assert not [p for p in patterns if p.startswith("!")], "keep .dockerignore free of ! exceptions (see its header)"
    assert sorted(path for path in needed if ignored(path, patterns)) == []


@installs
def test_install_sh_runtime_mode_into_a_clean_virtualenv(
    tmp_path: Path,
    wheelhouse: dict[str, str],
    clean_venv: Callable[[Path], Path],
    record_property: Callable[[str, object], None],
) -> None:
    src = build_context(tmp_path / "src")
    python = clean_venv(tmp_path / "venv")
    started = time.monotonic()
    proc = run([str(src / "scripts/install.sh")], env={**wheelhouse, "PYTHON": str(python)})
    seconds = time.monotonic() - started
    record_property("install_seconds", round(seconds, 1))
    print(f"scripts/install.sh into a clean virtualenv: {seconds:.1f} s")
    assert proc.returncode == 0, report(proc)

    check = run([str(src / VERIFY), str(tmp_path / "venv")])
    assert check.returncode == 0, report(check)


as_root = pytest.mark.skipif(os.geteuid() != 0, reason="setup-image.sh runs as root, as in `docker build`")
SYSTEM_PYTHON = Path("/usr/bin/python3")


def image_env(wheelhouse: dict[str, str], tmp_path: Path, base_python: Path) -> dict[str, str]:
    """setup-image.sh's variables pointed at tmp_path, as the Dockerfile's ENV sets them for the image."""
    venv = tmp_path / "opt-venv"
    return {
        **wheelhouse,
        "VENV": str(venv),
        "BASE_PYTHON": str(base_python),
        "BIN_DIR": str(tmp_path / "usr-local-bin"),
        "ETC_DIR": str(tmp_path / "etc"),
        "VLLM_SHIM_RUN_DIR": "/tmp/vllm-shim",
        "PATH": f"{venv / 'bin'}{os.pathsep}{wheelhouse['PATH']}",
    }


def assert_image_layout(tmp_path: Path) -> None:
    venv = tmp_path / "opt-venv"
    for tool in ("vllm", "vllm-shim", "supervisord", "supervisorctl"):
        assert (tmp_path / "usr-local-bin" / tool).resolve() == (venv / "bin" / tool).resolve()
    assert os.readlink(tmp_path / "etc" / "supervisord.conf") == "/tmp/vllm-shim/supervisord.conf"


@installs
@as_root
def test_setup_image_over_a_system_python(tmp_path: Path, wheelhouse: dict[str, str]) -> None:
    """The CUDA image's case: SGLang lives in the system interpreter (PEP 668 marker and all), so /opt/venv is
    made over it with --system-site-packages and the system's distributions are pinned."""
    probe = "import sys, pip; print(sys.version_info[:2] == tuple(map(int, sys.argv[1].split('.'))))"
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if not SYSTEM_PYTHON.exists() or run([str(SYSTEM_PYTHON), "-c", probe, here]).stdout.strip() != "True":
        pytest.skip(f"needs a distribution's {SYSTEM_PYTHON} {here} with pip (the wheelhouse is built for {here})")
    src = build_context(tmp_path / "src")
    proc = run([str(src / SETUP)], env=image_env(wheelhouse, tmp_path, SYSTEM_PYTHON))
    assert proc.returncode == 0, report(proc)

    assert_image_layout(tmp_path)
    assert "include-system-site-packages = true" in (tmp_path / "opt-venv" / "pyvenv.cfg").read_text()
    # OpenShift: a random uid in group 0 gets the owner's rights on what the build made.
    launcher = (tmp_path / "opt-venv" / "bin" / "vllm").stat()
    assert launcher.st_gid == 0
    assert (launcher.st_mode >> 3) & 0o7 == (launcher.st_mode >> 6) & 0o7


@installs
@as_root
def test_setup_image_over_a_virtualenv_with_sglang_and_a_real_vllm(
    tmp_path: Path, wheelhouse: dict[str, str], clean_venv: Callable[[Path], Path]
) -> None:
    """A base image whose python3 is a virtualenv: the shim goes into it, a real vllm comes out, and the build
    checks that python3 on PATH sees the pinned SGLang."""
    src = build_context(tmp_path / "src")
    base = clean_venv(tmp_path / "base")
    sglang_version = dockerfile_arg("SGLANG_VERSION")
    fake_distribution(base, "sglang", sglang_version)
    fake_distribution(base, "vllm", "0.0.1", module=True)
    env = {**image_env(wheelhouse, tmp_path, base), "EXPECT_SGLANG_VERSION": sglang_version}
    proc = run([str(src / SETUP)], env=env)
    assert proc.returncode == 0, report(proc)

    assert_image_layout(tmp_path)
    assert (tmp_path / "opt-venv").resolve() == base.parent.parent.resolve()
    assert "shim.cli" in (base.parent / "vllm").read_text(), "bin/vllm is not the shim's"
    assert run([str(base), "-m", "pip", "show", "vllm"]).returncode != 0, "the base image's vllm is still installed"


@installs
@as_root
def test_setup_image_fails_rather_than_replace_a_base_package(
    tmp_path: Path, wheelhouse: dict[str, str], clean_venv: Callable[[Path], Path]
) -> None:
    """A dependency the base has at an unacceptable version stops the build instead of being shadowed."""
    src = build_context(tmp_path / "src")
    requirement = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"][0]
    name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]
    base = clean_venv(tmp_path / "base")
    fake_distribution(base, name, "0.0.1")
    proc = run([str(src / SETUP)], env=image_env(wheelhouse, tmp_path, base))
    assert proc.returncode != 0, report(proc)
    assert "conflict" in (proc.stdout + proc.stderr).lower(), report(proc)
    assert not (tmp_path / "usr-local-bin" / "vllm").exists()
