"""The fail-fast event listener, fed real supervisor protocol lines."""

from __future__ import annotations

import io
import os
import signal

import pytest

from shim.pod.failfast import CRASH_LOOP, Policy, parse_tokens, serve

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
    assert (Policy(CRITICAL).decide(event, parse_tokens(payload)) is not None) is stops


def test_a_front_program_that_keeps_crashing_takes_the_pod_down() -> None:
    now = [0.0]
    policy = Policy(CRITICAL, clock=lambda: now[0])
    crash = parse_tokens("processname:middleware groupname:middleware from_state:RUNNING expected:0 pid:1")
    reasons = []
    for _ in range(CRASH_LOOP):
        now[0] += 5
        reasons.append(policy.decide("PROCESS_STATE_EXITED", crash))
    assert reasons[:-1] == [None] * (CRASH_LOOP - 1)
    assert reasons[-1] is not None and "keeps crashing" in reasons[-1]


def test_occasional_front_crashes_are_restarted_in_place() -> None:
    now = [0.0]
    policy = Policy(CRITICAL, clock=lambda: now[0])
    crash = parse_tokens("processname:haproxy groupname:haproxy from_state:RUNNING expected:0 pid:1")
    for _ in range(CRASH_LOOP * 3):
        now[0] += 30  # one crash every 30 s never adds up to a loop
        assert policy.decide("PROCESS_STATE_EXITED", crash) is None


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
    serve(Policy(CRITICAL), stdin, stdout, stderr, supervisord_pid=4242)
    assert stdout.getvalue() == "READY\nRESULT 2\nOKREADY\nRESULT 2\nOKREADY\n"
    assert sent == [(4242, signal.SIGTERM)]
    assert "engine died" in stderr.getvalue()
