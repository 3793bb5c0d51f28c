"""SharedState: what N middleware workers (and a restarted middleware) must agree on, via the run dir."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import os
import time
from pathlib import Path

from middleware.shared_state import SLOTS, SharedState, initial_text


def _state_file(tmp_path: Path) -> str:
    path = tmp_path / "middleware-state.json"
    path.write_text(initial_text())
    return str(path)


def test_sleep_tags_are_seen_by_every_worker_and_survive_a_restart(tmp_path: Path) -> None:
    path = _state_file(tmp_path)
    one, two = SharedState(path), SharedState(path)
    assert one.sleeping_tags() == two.sleeping_tags() == frozenset()
    one.update_sleep(add=("kv_cache", "weights"))
    assert two.sleeping_tags() == {"kv_cache", "weights"}
    assert SharedState(path).sleeping_tags() == {"kv_cache", "weights"}  # a restarted middleware
    assert two.update_sleep(remove=("weights",)) == {"kv_cache"}
    assert one.sleeping_tags() == {"kv_cache"}


def test_the_shims_fresh_file_means_awake(tmp_path: Path) -> None:
    path = _state_file(tmp_path)
    SharedState(path).update_sleep(add=("kv_cache",))
    Path(path).write_text(initial_text())  # the shim rewrites it at every start (a new engine)
    assert SharedState(path).sleeping_tags() == frozenset()


def _sleep_and_wake(path: str, tag: str, rounds: int) -> None:
    state = SharedState(path)
    for _ in range(rounds):
        state.update_sleep(add=(tag,))
        state.update_sleep(remove=(tag,))
    state.update_sleep(add=(tag,))


def test_concurrent_updates_from_processes_lose_nothing(tmp_path: Path) -> None:
    path = _state_file(tmp_path)
    tags = [f"t{i}" for i in range(4)]
    procs = [multiprocessing.Process(target=_sleep_and_wake, args=(path, tag, 50)) for tag in tags]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    assert SharedState(path).sleeping_tags() == set(tags)  # a lost read-modify-write would drop one


def test_load_sums_live_workers_only(tmp_path: Path) -> None:
    path = _state_file(tmp_path)
    me = SharedState(path)
    me.enter()
    me.enter()
    ready, done = multiprocessing.Event(), multiprocessing.Event()
    child = multiprocessing.Process(target=_hold_requests, args=(path, 3, ready, done))
    child.start()
    assert ready.wait(30)
    assert SharedState(path).server_load() == 5
    done.set()
    child.join(30)
    assert me.server_load() == 2  # the exited worker's 3 no longer count
    me.leave()
    me.leave()
    assert me.server_load() == 0


def _hold_requests(
    path: str, count: int, ready: multiprocessing.synchronize.Event, done: multiprocessing.synchronize.Event
) -> None:
    state = SharedState(path)
    for _ in range(count):
        state.enter()
    ready.set()
    done.wait(30)
    os._exit(0)  # like a crash: no leave()


def test_without_a_file_it_is_per_process() -> None:
    state = SharedState(None)
    state.enter()
    state.update_sleep(add=("weights",))
    assert state.server_load() == 1 and state.sleeping_tags() == {"weights"}


def test_per_request_cost_is_microseconds(tmp_path: Path) -> None:
    """/health and /is_sleeping read the tags on every call; forwarding enters and leaves /load."""
    state = SharedState(_state_file(tmp_path))
    state.update_sleep(add=("kv_cache",))
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        state.sleeping_tags()
        state.enter()
        state.leave()
    per_call = (time.perf_counter() - start) / n
    assert per_call < 200e-6, per_call  # measured ~3 µs; the bound leaves room for a loaded CI box
    assert SLOTS * 16 <= 4096  # the slot file is one page
