"""The fail-fast event listener, fed real supervisor protocol lines."""

from __future__ import annotations

import io
import os
import signal

import pytest

from shim.listener import decide, parse_tokens, serve

CRITICAL = frozenset({"engine"})


@pytest.mark.parametrize(
    ("event", "payload", "stops"),
    [
        ("PROCESS_STATE_EXITED", "processname:engine groupname:engine from_state:RUNNING expected:0 pid:1", True),
        ("PROCESS_STATE_EXITED", "processname:engine groupname:engine from_state:RUNNING expected:1 pid:1", False),
        (
            "PROCESS_STATE_EXITED",
            "processname:middleware groupname:middleware from_state:RUNNING expected:0 pid:1",
            False,
        ),
        ("PROCESS_STATE_FATAL", "processname:haproxy groupname:haproxy from_state:BACKOFF", True),
        ("PROCESS_STATE_FATAL", "processname:engine groupname:engine from_state:BACKOFF", True),
    ],
)
def test_policy(event: str, payload: str, stops: bool) -> None:
    assert (decide(event, parse_tokens(payload), CRITICAL) is not None) is stops


def _event(name: str, payload: str) -> str:
    header = f"ver:3.0 server:supervisor serial:1 pool:failfast poolserial:1 eventname:{name} len:{len(payload)}\n"
    return header + payload


def test_protocol_and_signal(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig)))
    stdin = io.StringIO(
        _event(
            "PROCESS_STATE_EXITED", "processname:middleware groupname:middleware from_state:RUNNING expected:0 pid:9"
        )
        + _event("PROCESS_STATE_EXITED", "processname:engine groupname:engine from_state:RUNNING expected:0 pid:7")
    )
    stdout, stderr = io.StringIO(), io.StringIO()
    serve(CRITICAL, stdin, stdout, stderr, supervisord_pid=4242)
    assert stdout.getvalue() == "READY\nRESULT 2\nOKREADY\nRESULT 2\nOKREADY\n"
    assert sent == [(4242, signal.SIGTERM)]
    assert "engine died" in stderr.getvalue()
