"""Everything a request handler needs, hung on `app.state.sim`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from fastapi import Request

from sim.disagg import Disagg
from sim.knobs import Fault, Settings
from sim.metrics import SimMetrics
from sim.scheduler import Scheduler
from sim.sglang_options import SimConfig
from sim.textgen import Vocab

ServerStatus = Literal["Starting", "Up"]


@dataclass
class SimState:
    cfg: SimConfig
    settings: Settings
    engine: Scheduler
    metrics: SimMetrics | None
    vocab: Vocab = field(default_factory=Vocab)
    loras: dict[str, str] = field(default_factory=dict)
    disagg: Disagg | None = None  # --disaggregation-mode prefill|decode
    started_at: float = field(default_factory=time.monotonic)
    startup_wall_time: float = field(default_factory=time.time)

    @property
    def fault(self) -> Fault:
        return self.settings.parsed_fault()

    def mark_started(self) -> None:
        """The warmup clock starts when the server listens (lifespan startup), not when the app object is built."""
        self.started_at = time.monotonic()

    def status(self) -> ServerStatus:
        if self.fault.kind == "never_healthy":
            return "Starting"
        warmup = 0.0 if self.cfg.skip_server_warmup else self.settings.warmup_seconds
        return "Up" if time.monotonic() - self.started_at >= warmup else "Starting"


def get_state(request: Request) -> SimState:
    state = request.app.state.sim
    assert isinstance(state, SimState)
    return state
