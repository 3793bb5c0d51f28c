from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live.engines import READY_TIMEOUT, engine_environ, engine_params
from tests.live.stack import Stack, start_stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/live" in str(item.fspath):
            item.add_marker(pytest.mark.live)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is not installed: run scripts/install.sh")
    running = start_stack(tmp_path, "--max-model-len", "4096")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(params=engine_params())
def engine_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """A ready stack per engine (simulator, real SGLang with a scripted scheduler)."""
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is not installed: run scripts/install.sh")
    running = start_stack(tmp_path, "--max-model-len", "4096", **engine_environ(request.param))
    try:
        running.wait_health(200, timeout=READY_TIMEOUT[request.param])
        yield running
    finally:
        running.stop()
