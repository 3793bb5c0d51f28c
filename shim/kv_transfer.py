"""The `kv_transfer` plan step: vLLM's KV connectors and offloading → SGLang's HiCache and P/D roles (issue 11).

- Offload (LMCache with kv_role kv_both, the chart's `LMCACHE_*` environment; vLLM's `--kv-offloading-size`):
  SGLang's hierarchical cache with the same host-memory capacity (`--enable-hierarchical-cache --hicache-size`).
- P/D (kv_role kv_producer / kv_consumer with NixlConnector, MooncakeConnector, or LMCache over NIXL as the
  chart's P/D values set it): `--disaggregation-mode prefill|decode` with the matching transfer backend and
  SGLang's bootstrap port, stated. Pairing requests across the two halves is the router bridge's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shim.errors import CliError
from shim.transforms import parse_json_object

LMCACHE = {"LMCacheConnectorV1", "LMCacheConnector", "LMCacheMPConnector"}
BACKENDS = {"NixlConnector": "nixl", "MooncakeConnector": "mooncake", "MooncakeConnectorV1": "mooncake"}
ROLES = {"kv_producer": "prefill", "kv_consumer": "decode"}
SGLANG_BOOTSTRAP_PORT = 8998
LMCACHE_CPU_GB = 5.0  # LMCache's default max_local_cpu_size
NOT_CARRIED = {
    "LMCACHE_REMOTE_URL": "remote LMCache servers do not plug into SGLang: the KV cache is not shared across pods",
    "LMCACHE_ENABLE_CONTROLLER": "the LMCache controller does not see SGLang's cache",
    "LMCACHE_MAX_LOCAL_DISK_SIZE": "the LMCache disk tier does not carry over: HiCache keeps host memory only",
    "LMCACHE_CHUNK_SIZE": "HiCache moves the KV cache by SGLang's page (--page-size), not LMCache chunks",
}


@dataclass
class KvPlan:
    args: list[str] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    no_prefix_cache: bool = False


def _config(raw: Any) -> dict[str, Any]:
    return parse_json_object(raw, "--kv-transfer-config")


def _hicache(gigabytes: float, out: KvPlan, source: str) -> None:
    if gigabytes <= 0:
        return
    if out.no_prefix_cache:
        # HiCache is a host-memory tier of SGLang's radix (prefix) cache; SGLang refuses one without the other.
        out.dropped.append(
            (source, "SGLang's HiCache extends the prefix cache, which --no-enable-prefix-caching turns off")
        )
        return
    size = max(1, round(gigabytes))
    out.args += ["--enable-hierarchical-cache", "--hicache-size", str(size)]
    out.warnings.append(f"{source}: KV offload to host memory → SGLang HiCache of {size} GB per GPU")


def _lmcache_offload(env: Mapping[str, Any], out: KvPlan) -> None:
    if env.get("LMCACHE_LOCAL_CPU") is not False:
        size = env.get("LMCACHE_MAX_LOCAL_CPU_SIZE")
        _hicache(LMCACHE_CPU_GB if size is None else size, out, "LMCache")
    for name, why in NOT_CARRIED.items():
        if env.get(name):
            out.dropped.append((name, why))


def _role(config: Mapping[str, Any], connector: str, out: KvPlan) -> None:
    role = str(config.get("kv_role") or "kv_both")
    if role not in ROLES:
        raise CliError(
            f"argument --kv-transfer-config: {connector} with kv_role {role}: SGLang needs the P/D role at launch "
            "(kv_producer for a prefill pod, kv_consumer for a decode pod)"
        )
    backend = "nixl" if connector in LMCACHE else BACKENDS[connector]
    out.args += ["--disaggregation-mode", ROLES[role], "--disaggregation-transfer-backend", backend]
    out.args += ["--disaggregation-bootstrap-port", str(SGLANG_BOOTSTRAP_PORT)]
    out.warnings.append(
        f"P/D: SGLang {ROLES[role]} server over {backend}; "
        "requests must carry SGLang's bootstrap room (the router bridge)"
    )


def plan_kv_transfer(values: Mapping[str, Any], env: Mapping[str, Any], gpus: int) -> KvPlan:
    out = KvPlan(no_prefix_cache=values.get("enable_prefix_caching") is False)
    raw = values.get("kv_transfer_config")
    if raw is not None:
        config = _config(raw)
        connector = str(config.get("kv_connector") or "")
        role = str(config.get("kv_role") or "kv_both")
        if connector in LMCACHE and role == "kv_both":
            _lmcache_offload(env, out)
        elif connector in LMCACHE or connector in BACKENDS:
            _role(config, connector, out)
        elif connector == "OffloadingConnector":
            pass  # vLLM's native offloading, sized by --kv-offloading-size below
        else:
            why = f"kv_connector {connector or '(none)'} has no SGLang counterpart: KV transfer/offload is off"
            out.dropped.append(("--kv-transfer-config", why))
    size = values.get("kv_offloading_size")
    if size is not None and "--enable-hierarchical-cache" not in out.args:
        # vLLM's size is the total over the TP × PP ranks; SGLang's --hicache-size is per rank.
        try:
            total = float(size)
        except ValueError:
            raise CliError(f"argument --kv-offloading-size: invalid float value: {size!r}") from None
        _hicache(total / gpus, out, "--kv-offloading-size")
    return out
