"""Environment knobs of the simulator, declared once.

Each knob is a field of `Settings` whose metadata carries its variable name and doc line; `KNOBS` and the
docs table are derived from those fields, so adding a knob is a one-line change.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

_T = TypeVar("_T", float, str)

FaultKind = Literal[
    "", "crash_on_load", "never_healthy", "hang_mid_stream", "split_error_mid_stream", "garbage", "crash_after"
]
_FAULT_KINDS: tuple[str, ...] = typing.get_args(FaultKind)


class SettingsError(ValueError):
    """A knob has a value we cannot use; the message names the variable."""


def _knob(env: str, default: _T, doc: str) -> _T:
    return field(default=default, metadata={"env": env, "doc": doc})


@dataclass(frozen=True)
class Fault:
    kind: FaultKind = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Settings:
    load_seconds: float = _knob(
        "VLLM_SHIM_SIM_LOAD_SECONDS", 2.0, "Port closed (connection refused) this long, like SGLang loading weights."
    )
    warmup_seconds: float = _knob(
        "VLLM_SHIM_SIM_WARMUP_SECONDS", 1.0, "Then listening but `/health` answers 503 (server warming up) this long."
    )
    tokens_per_second: float = _knob(
        "VLLM_SHIM_SIM_TOKENS_PER_SECOND", 200.0, "Generation speed per request; 0 means as fast as possible."
    )
    ttft_seconds: float = _knob("VLLM_SHIM_SIM_TTFT_SECONDS", 0.0, "Extra delay before the first token (prefill).")
    health_delay_seconds: float = _knob(
        "VLLM_SHIM_SIM_HEALTH_DELAY_SECONDS", 0.0, "Time `/health` takes once up (real SGLang: about 1 s)."
    )
    fault: str = _knob(
        "VLLM_SHIM_SIM_FAULT",
        "",
        "Fault injection: `crash_on_load`, `never_healthy`, `hang_mid_stream`, `split_error_mid_stream`, "
        "`garbage` or `crash_after:N`.",
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and value < 0:
                raise SettingsError(f"{f.metadata['env']} must be >= 0, got {value}")
        self.parsed_fault()  # reject a bad fault at startup, not at the first request

    def parsed_fault(self) -> Fault:
        kind, _, arg = self.fault.partition(":")
        if kind not in _FAULT_KINDS:
            raise SettingsError(f"VLLM_SHIM_SIM_FAULT: unknown fault {self.fault!r}; expected one of {_FAULT_KINDS}")
        if kind != "crash_after":
            if arg:
                raise SettingsError(f"VLLM_SHIM_SIM_FAULT: {kind} takes no argument")
            return Fault(kind=typing.cast(FaultKind, kind))
        try:
            seconds = float(arg)
        except ValueError:
            raise SettingsError(
                f"VLLM_SHIM_SIM_FAULT: crash_after needs seconds, e.g. crash_after:5; got {arg!r}"
            ) from None
        return Fault(kind="crash_after", seconds=seconds)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        values: dict[str, Any] = {}
        for knob in KNOBS:
            raw = environ.get(knob.env)
            if raw is None or raw == "":
                continue
            try:
                values[knob.field] = knob.type(raw)
            except ValueError:
                raise SettingsError(f"{knob.env} must be a {knob.type.__name__}, got {raw!r}") from None
        return cls(**values)


@dataclass(frozen=True)
class Knob:
    env: str
    field: str
    type: type
    default: float | str
    doc: str


def _knobs() -> tuple[Knob, ...]:
    hints = typing.get_type_hints(Settings)
    return tuple(
        Knob(f.metadata["env"], f.name, hints[f.name], f.default, f.metadata["doc"])  # type: ignore[arg-type]
        for f in dataclasses.fields(Settings)
    )


KNOBS: tuple[Knob, ...] = _knobs()


def env_table_markdown() -> str:
    """The knob table for docs/simulator.md (a test keeps the docs in sync)."""
    rows = ["| Variable | Type | Default | Meaning |", "|---|---|---|---|"]
    for k in KNOBS:
        default = f"`{k.default}`" if k.default != "" else '`""` (none)'
        rows.append(f"| `{k.env}` | {k.type.__name__} | {default} | {k.doc} |")
    return "\n".join(rows)
