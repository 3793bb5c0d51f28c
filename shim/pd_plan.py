"""Prefill/decode disaggregation, read from the engine's FINAL arguments (however a flag got there: a vLLM
option's translation or SGLANG_EXTRA_ARGS), for the middleware (middleware/pd.py) and haproxy.

SGLang's prefill server starts a bootstrap server (its KV-transfer control plane, which decode servers call)
on its own --host, which the plan pins to 127.0.0.1. So the engine's bootstrap server moves to a loopback port
and haproxy listens on the public host at the bootstrap port the deployment asked for, relaying it as TCP:
the one listener besides the API port a pod opens on purpose (docs/deploying.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shim.errors import CliError
from shim.extra_args import resolve
from shim.plan import Ports

SGLANG_DEFAULT_BOOTSTRAP_PORT = 8998
ROLES = ("prefill", "decode")
# Beyond SGLang's own bounds (bootstrap + waiting): SGLang normally answers the failure itself first.
ROOM_MARGIN_S = 30


@dataclass(frozen=True)
class PdPlan:
    role: str  # "prefill" or "decode"
    public_port: int  # what decode pods are told; haproxy's listener on a prefill pod
    engine_port: int  # SGLang's own bootstrap server, on loopback (prefill only)
    room_timeout_s: float
    # A multi-node group (--dist-init-addr): every rank registers with the bootstrap server at the
    # --dist-init-addr host and SGLang's own port, which a loopback bootstrap server cannot serve.
    multi_node: bool = False

    @property
    def relayed(self) -> bool:
        """Whether SGLang's bootstrap server moves to loopback behind haproxy's relay (a one-node prefill pod)."""
        return self.role == "prefill" and not self.multi_node


def engine_option(args: Sequence[str], dest: str) -> str | None:
    """The value argparse would give `dest` from `args` (last one wins; `--opt=value` or `--opt value`)."""
    value = None
    for i, word in enumerate(args):
        if resolve(word) != frozenset({dest}):
            continue
        head, eq, tail = word.partition("=")
        if eq:
            value = tail
        elif i + 1 < len(args):
            value = args[i + 1]
    return value


def pd_plan(args: Sequence[str], env: Mapping[str, Any], ports: Ports) -> PdPlan | None:
    """The pod's P/D role, or None when it serves whole requests. Raises CliError for a bad bootstrap port."""
    role = engine_option(args, "disaggregation_mode")
    if role not in ROLES:
        return None
    raw_port = engine_option(args, "disaggregation_bootstrap_port")
    try:
        port = int(raw_port) if raw_port is not None else SGLANG_DEFAULT_BOOTSTRAP_PORT
    except ValueError:
        raise CliError(f"--disaggregation-bootstrap-port: invalid int value: {raw_port!r}") from None
    if not 0 < port < 65536:
        raise CliError(f"--disaggregation-bootstrap-port {port} is out of range (1-65535)")
    engine_port = ports.public + 3
    taken = (ports.public, ports.engine, ports.middleware, engine_port)
    if port in taken or len(set(taken)) < len(taken):
        raise CliError(f"--disaggregation-bootstrap-port {port}: the pod's ports must differ (public, engine, "
                       f"middleware, SGLang's loopback bootstrap port = public + 3: {taken})")  # fmt: skip
    bound = env["SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT"] + env["SGLANG_DISAGGREGATION_WAITING_TIMEOUT"]
    multi_node = engine_option(args, "dist_init_addr") not in (None, "", "None")
    return PdPlan(role, port, engine_port, float(bound + ROOM_MARGIN_S), multi_node)


def engine_args(args: Sequence[str], pd: PdPlan | None) -> tuple[str, ...]:
    """On a prefill pod SGLang's bootstrap server moves to its loopback port (argparse: the last one wins)."""
    if pd is None or not pd.relayed:
        return tuple(args)
    return (*args, "--disaggregation-bootstrap-port", str(pd.engine_port))


_LOGIC = (
    "P/D {role} pod: only production-stack's 'disaggregated_prefill_orchestrated' routing logic pairs "
    "prefill and decode here (its kv_transfer_params carry the bootstrap room); requests without them, as "
    "'disaggregated_prefill' sends, are refused with a 400 (docs/deploying.md)"
)


def warnings(pd: PdPlan) -> list[str]:
    """Said at start: only one of production-stack's two P/D routing logics can pair the halves; a multi-node
    prefill group's bootstrap server stays on loopback, out of its other nodes' and the decode pods' reach."""
    said = [_LOGIC.format(role=pd.role)]
    if pd.role == "prefill" and pd.multi_node:
        said.append(
            "P/D prefill across nodes (--dist-init-addr) is not supported: SGLang's bootstrap server binds the "
            "engine's loopback host, so neither the group's other nodes nor decode pods can reach it"
        )
    return said

