"""The vllm_shim:* counters of every middleware worker on every worker's /metrics (issue 14 item 4).

Each worker process counts in memory and publishes its totals to its own file in a directory of the run dir
(`<state_file>.counters/<pid>-<start>.json`, atomic `os.replace`) at most `FLUSH_SECONDS` after a change;
a scrape adds the files of every other worker (alive or gone: counters never go down) to its own live
counts. So any worker answers /metrics with the pod's totals, at most `FLUSH_SECONDS` behind for the others.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

Counts = dict[str, dict[tuple[str, ...], int]]
FLUSH_SECONDS = 0.5


class CountStore:
    def __init__(self, directory: str) -> None:
        self._dir = Path(directory)
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._mine = self._dir / f"{os.getpid()}-{time.time_ns()}.json"

    def publish(self, counts: Counts) -> None:
        rows = [[key, list(labels), value] for key, series in counts.items() for labels, value in series.items()]
        tmp = self._mine.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(rows, handle)
        os.replace(tmp, self._mine)

    def others(self) -> Counts:
        """The sum of every other worker's last published counts."""
        total: Counts = {}
        for path in self._dir.glob("*.json"):
            if path == self._mine:
                continue
            try:
                rows = json.loads(path.read_text())
            except (OSError, ValueError):  # a file replaced while read: its next version counts next scrape
                continue
            for key, labels, value in rows:
                series = total.setdefault(key, {})
                series[tuple(labels)] = series.get(tuple(labels), 0) + int(value)
        return total
