"""The Plan: everything the run needs, decided once from the command line and the environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from middleware.config import MiddlewareConfig

REDACTED = "***"
# Options whose value is a secret. The plan never gives them to SGLang (SGLANG_EXTRA_ARGS refuses them too);
# redaction stays as a second net wherever arguments are shown.
SECRET_FLAGS = frozenset({"--api-key", "--admin-api-key", "--hf-token", "--ssl-keyfile-password"})
# The engine secrets file in the run dir (0600): the internal engine key and HF_TOKEN (shim/pod/engine_launch.py).
ENGINE_SECRETS_FILE = "engine-secrets.json"
# What the middleware workers share (sleep state; /load slots beside it): middleware/shared_state.py.
MIDDLEWARE_STATE_FILE = "middleware-state.json"


@dataclass(frozen=True)
class Ports:
    public: int
    middleware: int
    engine: int


@dataclass(frozen=True)
class Dropped:
    flag: str
    reason: str


@dataclass(frozen=True)
class Plan:
    model: str
    served_model_names: tuple[str, ...]
    host: str | None  # None: every interface, as vLLM's default
    ports: Ports
    engine_program: tuple[str, ...]
    engine_args: tuple[str, ...]
    dropped: tuple[Dropped, ...]
    warnings: tuple[str, ...]
    middleware: MiddlewareConfig
    run_dir: str
    drain_seconds: int
    middleware_workers: int
    haproxy: str
    python: str
    # Secret environment for the engine (HF_TOKEN), delivered by the engine secrets file: never argv, never shown.
    engine_env: tuple[tuple[str, str], ...] = ()
    # A P/D prefill pod: (public bootstrap port haproxy relays, SGLang's loopback bootstrap port) (shim/pd_plan.py).
    pd_bootstrap: tuple[int, int] | None = None
    headless: bool = False  # a multi-node worker: supervisord runs haproxy (health, metrics) and SGLang only

    @property
    def served_model_name(self) -> str:
        return self.served_model_names[0]

    def redacted_engine_args(self) -> list[str]:
        return redact(self.engine_args)

    def summary(self) -> dict[str, Any]:
        """The `vllm-shim translate` output: stable keys, secrets redacted."""
        return {
            "engine_args": self.redacted_engine_args(),
            "dropped": [{"flag": d.flag, "reason": d.reason} for d in self.dropped],
            "warnings": list(self.warnings),
            "ports": {"public": self.ports.public, "middleware": self.ports.middleware, "engine": self.ports.engine},
            "served_model_name": self.served_model_name,
        }


def redact(args: tuple[str, ...] | list[str]) -> list[str]:
    out: list[str] = []
    hide_next = False
    for arg in args:
        flag, eq, _ = arg.partition("=")
        if hide_next:
            out.append(REDACTED)
        elif eq and flag in SECRET_FLAGS:
            out.append(f"{flag}={REDACTED}")
        else:
            out.append(arg)
        hide_next = arg in SECRET_FLAGS
    return out
