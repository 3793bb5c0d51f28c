"""State every middleware worker must agree on, kept outside any one process (issue 14 item 4).

With VLLM_SHIM_MIDDLEWARE_WORKERS=N there are N processes, and supervisord restarts the middleware on any
crash; state in a process would make /is_sleeping, /health and /load depend on which worker answered, and
be forgotten on restart. SGLang is the source of truth where it can answer (LoRA adapters: its /v1/models,
see `engine_state.py`); it cannot say whether it released its memory, nor count our in-flight requests, so:

- sleep: the released memory tags, one small JSON file in the run dir (written by the shim at every start,
  so a new engine starts awake). Writes are read-modify-write under an exclusive `flock` on a lock file and
  land with `os.replace` (atomic); reads are one `os.stat` while nothing changed (cached by inode/mtime/size).
- /load: one mmap'd file of fixed slots, (pid, in-flight count) per SharedState (one per worker process). It
  claims a slot on its first request (under the lock) and then updates only its own count, without a lock;
  /load sums the slots of live pids, so a crashed worker's requests stop counting when it is gone.

`SharedState(None)` keeps both in this process only (in-process tests, a middleware run without a run dir).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import mmap
import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

SLOTS = 256
_SLOT = struct.Struct("<qq")  # pid, in-flight count
LOAD_SUFFIX = ".load"
LOCK_SUFFIX = ".lock"


def initial_text() -> str:
    """What the shim writes at every start: nothing released."""
    return json.dumps({"sleeping_tags": []}) + "\n"


class SharedState:
    def __init__(self, state_file: str | None) -> None:
        self._path = Path(state_file) if state_file else None
        self._tags: frozenset[str] = frozenset()
        self._seen: tuple[int, int, int] | None = None
        self._local_load = 0
        self._map: mmap.mmap | None = None
        self._slot = -1

    # ---- sleep ----------------------------------------------------------------------------------------

    def sleeping_tags(self) -> frozenset[str]:
        if self._path is None:
            return self._tags
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            return frozenset()  # never written: a middleware started without the shim's run dir
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        if seen != self._seen:
            self._tags = self._read()
            self._seen = seen
        return self._tags

    def update_sleep(self, add: Iterable[str] = (), remove: Iterable[str] = ()) -> frozenset[str]:
        """Add/remove released tags atomically across workers; returns the new set."""
        if self._path is None:
            self._tags = (self._tags | frozenset(add)) - frozenset(remove)
            return self._tags
        with self._locked():
            tags = (self._read() | frozenset(add)) - frozenset(remove)
            tmp = self._path.with_name(f".{self._path.name}.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump({"sleeping_tags": sorted(tags)}, handle)
            os.replace(tmp, self._path)
        return tags

    def _read(self) -> frozenset[str]:
        assert self._path is not None
        try:
            data = json.loads(self._path.read_text())
        except FileNotFoundError:
            return frozenset()
        return frozenset(str(t) for t in data.get("sleeping_tags") or ())

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        assert self._path is not None
        fd = os.open(str(self._path) + LOCK_SUFFIX, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    # ---- /load ----------------------------------------------------------------------------------------

    def enter(self) -> None:
        self._add_load(1)

    def leave(self) -> None:
        self._add_load(-1)

    def server_load(self) -> int:
        view = self._load_map()
        if view is None:
            return self._local_load
        total = 0
        for i in range(SLOTS):
            pid, count = _SLOT.unpack_from(view, i * _SLOT.size)
            if count > 0 and (pid == os.getpid() or _alive(pid)):
                total += count
        return total

    def _add_load(self, delta: int) -> None:
        self._local_load += delta
        view = self._load_map()
        if view is None:
            return
        if self._slot < 0:
            self._slot = self._claim(view)
        _SLOT.pack_into(view, self._slot * _SLOT.size, os.getpid(), self._local_load)

    def _load_map(self) -> mmap.mmap | None:
        if self._path is None:
            return None
        if self._map is None:
            with self._locked():
                fd = os.open(str(self._path) + LOAD_SUFFIX, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    if os.fstat(fd).st_size < SLOTS * _SLOT.size:
                        os.ftruncate(fd, SLOTS * _SLOT.size)
                    self._map = mmap.mmap(fd, SLOTS * _SLOT.size)
                finally:
                    os.close(fd)
        return self._map

    def _claim(self, view: mmap.mmap) -> int:
        """Take a slot that is free or whose process is gone (under the lock), once per SharedState."""
        with self._locked():
            for i in range(SLOTS):
                pid, _ = _SLOT.unpack_from(view, i * _SLOT.size)
                if pid == 0 or not _alive(pid):
                    _SLOT.pack_into(view, i * _SLOT.size, os.getpid(), 0)
                    return i
        raise RuntimeError(f"{self._path}{LOAD_SUFFIX}: all {SLOTS} worker slots are taken by live processes")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
