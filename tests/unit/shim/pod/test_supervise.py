"""supervisord as `vllm serve` runs it: stock, but for a first poll that does not wait."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from supervisor import poller, supervisord
from supervisor.options import ServerOptions

from shim import cli
from shim.pod import supervise


class Recorder(poller.BasePoller):
    """A poller that blocks nowhere and remembers the timeouts it was asked to wait."""

    def initialize(self) -> None:
        self.timeouts: list[float] = []

    def poll(self, timeout: float) -> tuple[list[int], list[int]]:
        self.timeouts.append(timeout)
        return [], []


@pytest.fixture
def restore(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Whatever install() replaces is put back after the test."""
    monkeypatch.setattr(poller, "Poller", poller.Poller)
    monkeypatch.setattr(supervisord, "go", supervisord.go)
    return monkeypatch


def test_first_poll_does_not_wait_and_later_polls_keep_their_timeout() -> None:
    patched = supervise.first_poll_immediate(Recorder)
    first = patched(None)
    for _ in range(3):
        first.poll(1)
    assert first.timeouts == [0, 1, 1]
    # A SIGHUP reload builds new options and a new poller: its first poll does not wait either.
    second = patched(None)
    second.poll(5)
    second.poll(5)
    assert second.timeouts == [0, 5]


def test_the_patched_real_poller_still_reports_ready_fds() -> None:
    patched = supervise.first_poll_immediate(poller.Poller)(SimpleNamespace(logger=None))
    read_end, write_end = os.pipe()
    try:
        patched.register_readable(read_end)
        assert patched.poll(1) == ([], [])  # the first poll: nothing to read, and no wait for it
        os.write(write_end, b"x")
        readable, _ = patched.poll(1)
        assert readable == [read_end]
    finally:
        patched.close()
        os.close(read_end)
        os.close(write_end)


def test_install_makes_supervisord_build_the_patched_poller(restore: pytest.MonkeyPatch) -> None:
    patched = supervise.install()
    options = ServerOptions()
    assert isinstance(options.poller, patched)
    assert isinstance(options.poller, poller.BasePoller)


def test_supervisord_that_builds_another_poller_fails_before_running(restore: pytest.MonkeyPatch) -> None:
    ran: list[Any] = []

    def stock_go(options: Any) -> None:
        ran.append(options)

    restore.setattr(supervisord, "go", stock_go)
    supervise.install()
    with pytest.raises(supervise.SupervisordMismatch, match="ServerOptions built a"):
        supervisord.go(SimpleNamespace(poller=Recorder(None)))
    assert ran == []


class PollTakesMore(poller.BasePoller):
    def poll(self, timeout: float, wake: bool) -> Any:
        return [], []


@pytest.mark.parametrize(
    ("module", "name", "value", "reason"),
    [
        (poller, "Poller", PollTakesMore, "Poller.poll takes"),
        (poller, "Poller", object, "not a BasePoller class"),
        (supervisord, "go", lambda options, test: None, "go\\(options\\) is gone"),
    ],
)
def test_an_api_change_fails_loudly(
    restore: pytest.MonkeyPatch, module: Any, name: str, value: Any, reason: str
) -> None:
    restore.setattr(module, name, value)
    with pytest.raises(supervise.SupervisordMismatch, match=reason) as raised:
        supervise.check_api()
    assert supervise.PINNED in str(raised.value)


def test_main_exits_with_the_reason_instead_of_running_unpatched(
    restore: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ran: list[Any] = []
    restore.setattr(supervisord, "main", lambda args: ran.append(args))
    restore.setattr(poller, "Poller", PollTakesMore)
    assert supervise.main(["-n", "-c", "/nonexistent"]) == 70
    assert ran == []
    assert "first-poll patch" in capsys.readouterr().err


def test_pinned_version_is_the_one_pyproject_pins_and_the_one_installed() -> None:
    pyproject = (Path(__file__).resolve().parents[4] / "pyproject.toml").read_text()
    assert f'"supervisor=={supervise.PINNED}"' in pyproject
    result = subprocess.run([sys.executable, "-m", "shim.pod.supervise", "-v"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == supervise.PINNED, result


def test_vllm_serve_execs_supervisord_through_the_wrapper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    execs: list[tuple[str, list[str]]] = []
    monkeypatch.setenv("VLLM_SHIM_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("VLLM_SHIM_ENGINE", "sim")
    monkeypatch.setattr(cli, "ensure_reopenable_stdio", lambda: None)
    monkeypatch.setattr(cli.os, "execvp", lambda file, argv: execs.append((file, list(argv))))
    assert cli.serve(["m"]) == 0
    ((file, argv),) = execs
    assert argv == [file, "-m", "shim.pod.supervise", "-n", "-c", str(tmp_path / "run" / "supervisord.conf")]
