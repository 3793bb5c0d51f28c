"""What the middleware needs to know about the deployment, rendered by the shim into the run directory.

The shim writes this as JSON (mode 0600: it holds the user's API keys) and passes its path on the middleware's
command line, so the middleware never re-parses the vLLM command line or reads the shim's environment.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LoraModule:
    name: str
    path: str


@dataclass(frozen=True)
class MiddlewareConfig:
    engine_url: str = "http://127.0.0.1:8001"
    # Every --served-model-name; the first is the one SGLang knows.
    served_model_names: tuple[str, ...] = ("default",)
    model_path: str = "default"
    max_model_len: int | None = None
    # The user's keys (--api-key / VLLM_API_KEY): checked here, never given to SGLang.
    api_keys: tuple[str, ...] = ()
    # Where the internal engine key is (0600, run dir): sent to SGLang as Bearer. Empty: SGLang has no key.
    engine_secrets_file: str = ""
    # State the middleware workers share (sleep tags; /load slots in `<state_file>.load`). Empty: per process.
    state_file: str = ""
    max_logprobs: int = 20
    enable_lora: bool = False
    lora_modules: tuple[LoraModule, ...] = ()
    # VLLM_ALLOW_RUNTIME_LORA_UPDATING: registers /v1/load_lora_adapter and /v1/unload_lora_adapter.
    allow_runtime_lora: bool = False
    # VLLM_SERVER_DEV_MODE: registers /sleep, /wake_up, /is_sleeping, /reset_prefix_cache.
    dev_mode: bool = False
    enable_sleep_mode: bool = False
    enable_request_id_headers: bool = False
    # VLLM_SKIP_MODEL_NAME_VALIDATION: accept any `model` in requests instead of vLLM's 404.
    skip_model_name_validation: bool = False
    max_body_bytes: int = 32 * 1024 * 1024
    vllm_version: str = "0.33.0"
    log_level: str = "info"
    # One half of a prefill/decode pair (middleware/pd.py): "prefill" or "decode", from the engine's final
    # --disaggregation-mode; "" when the pod serves whole requests.
    pd_role: str = ""
    # The bootstrap port decode pods are told to use: haproxy's public listener for SGLang's bootstrap server.
    pd_bootstrap_port: int = 8998
    # How long a prefill room may run in the background before the middleware gives up on its decode peer.
    pd_room_timeout_s: float = 630.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def served_model_name(self) -> str:
        return self.served_model_names[0]

    def engine_key(self) -> str | None:
        """The internal key SGLang was started with (read once at startup; a missing file fails the start)."""
        if not self.engine_secrets_file:
            return None
        key = json.loads(Path(self.engine_secrets_file).read_text()).get("api_key")
        if not isinstance(key, str) or not key:
            raise ValueError(f"{self.engine_secrets_file}: no engine api_key")
        return key

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MiddlewareConfig:
        data = dict(data)
        data["served_model_names"] = tuple(data.get("served_model_names") or ("default",))
        data["api_keys"] = tuple(data.get("api_keys") or ())
        data["lora_modules"] = tuple(LoraModule(**m) for m in data.get("lora_modules") or ())
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> MiddlewareConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))
