#!/usr/bin/env python3
"""SGLang launch-check oracle: "would the real SGLang START with this command line?", on a CPU, offline.

Runs INSIDE the cached SGLang virtualenv (like sglang_oracle.py, whose line protocol it speaks):

    stdin:  {"op": "launch_check", "argv": [...]}
            {"op": "version"}
    stdout: a {"ready": true, ...} line, then one answer line per request:
            {"ok", "stage": "parse"|"resolve_once"|"check_server_args"|null, "error", "resolved": {...}}

What runs is what `sglang serve` runs before it touches a GPU: SGLang's argparse parser
(`ServerArgs.add_cli_args`), `ServerArgs.from_cli_args`, then `resolve_once()` (the resolution pipeline: model
config from `--model-path`, memory defaults, parallel layout, LoRA, speculative, HiCache, P/D hooks) and
`check_server_args()` (the cross-checks that make SGLang refuse to launch). Each check builds a new record.

The stubs, all installed before sglang is imported, and nothing else:
- THE MACHINE (`FakeMachine`): `torch.cuda` answers as one node of 8 × H100 80 GB (sm90) and
  `torch.version.cuda` is set, because resolution asks the device for its kind, count, memory and compute
  capability (`utils.common.get_device`, `get_device_memory_capacity`, `get_device_sm`), and this CPU torch
  has no CUDA. No CUDA call is made beyond those questions; one that is would fail (not stubbed).
- MISSING GPU IMPORTS (`STUB_MODULES`): `sgl_kernel` and `tvm_ffi` (SGLang's CUDA kernels and their FFI:
  imported at module level by quantization and all-reduce modules that the model-config import pulls in;
  no kernel is called during resolution) and `torchvision` (image transforms imported by the multimodal
  config modules; there is no CPU wheel for this torch). A stub module answers any attribute with another
  stub; it is never offered to `transformers`' "is torchvision installed?" probe, which gets the truth (no).
- Offline: the caller sets HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE; `--model-path` must be a local directory
  holding a config.json (tests/data/models/).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.abc
import importlib.machinery
import io
import sys
import traceback
import types
from typing import Any

import sglang_oracle

GPUS_PER_NODE = 8
GPU_MEMORY_BYTES = 80 * 2**30
COMPUTE_CAPABILITY = (9, 0)
STUB_MODULES = frozenset({"sgl_kernel", "tvm_ffi", "torchvision"})
# Resolved fields reported back (what the shim's translation is checked for).
REPORTED = (
    "tp_size",
    "pp_size",
    "dp_size",
    "attn_dp_size",
    "ep_size",
    "nnodes",
    "node_rank",
    "dist_init_addr",
    "enable_lora",
    "lora_paths",
    "max_lora_rank",
    "lora_target_modules",
    "max_loras_per_batch",
    "max_loaded_loras",
    "speculative_algorithm",
    "speculative_draft_model_path",
    "speculative_num_steps",
    "speculative_eagle_topk",
    "speculative_num_draft_tokens",
    "enable_hierarchical_cache",
    "hicache_size",
    "hicache_ratio",
    "hicache_storage_backend",
    "disaggregation_mode",
    "disaggregation_transfer_backend",
    "disaggregation_bootstrap_port",
    "enable_priority_scheduling",
    "stream_interval",
    "enable_trace",
    "otlp_traces_endpoint",
    "kv_events_config",
    "mem_fraction_static",
    "context_length",
    "device",
)


class _H100:
    name = "NVIDIA H100 80GB HBM3"
    total_memory = GPU_MEMORY_BYTES
    major, minor = COMPUTE_CAPABILITY
    multi_processor_count = 132


def install_fake_machine() -> None:
    """torch.cuda as seen on one 8 × H100 node: only the questions resolution asks."""
    import torch

    torch.version.cuda = "12.8"  # type: ignore[misc]
    cuda: Any = torch.cuda
    cuda.is_available = lambda: True
    cuda.device_count = lambda: GPUS_PER_NODE
    cuda.get_device_capability = lambda device=None: COMPUTE_CAPABILITY
    cuda.get_device_properties = lambda device=None: _H100()
    cuda.get_device_name = lambda device=None: _H100.name
    cuda.mem_get_info = lambda device=None: (GPU_MEMORY_BYTES, GPU_MEMORY_BYTES)
    cuda.is_initialized = lambda: False
    cuda.current_device = lambda: 0


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _StubModule(f"{self.__name__}.{name}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _StubModule(f"{self.__name__}()")

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        return (object,)


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name.split(".")[0] not in STUB_MODULES or _asked_by_transformers():
            return None
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """A stub has no code."""


def _asked_by_transformers() -> bool:
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(("importlib", "_frozen_importlib")):
        frame = frame.f_back
    return frame is not None and frame.f_globals.get("__name__", "").startswith("transformers")


class LaunchOracle:
    def __init__(self) -> None:
        install_fake_machine()
        sys.meta_path.insert(0, _StubFinder())
        import sglang
        from sglang.srt.server_args import ServerArgs

        self.sglang = sglang
        self.ServerArgs = ServerArgs
        # Import the resolution pipeline now, so the first check does not pay for it.
        import sglang.srt.arg_groups.pipeline

    def op_version(self, _request: dict[str, Any]) -> dict[str, Any]:
        stubbed = sorted(m for m in sys.modules if m.split(".")[0] in STUB_MODULES)
        return {"ok": True, "version": self.sglang.__version__, "stubbed_modules": stubbed}

    def op_launch_check(self, request: dict[str, Any]) -> dict[str, Any]:
        argv = request["argv"]
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise TypeError("argv must be a list of strings")
        parser = argparse.ArgumentParser(prog="sglang serve")
        self.ServerArgs.add_cli_args(parser)
        captured = io.StringIO()
        try:
            with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(captured):
                namespace = parser.parse_args(argv)
        except SystemExit:
            text = captured.getvalue().strip()
            return {"ok": False, "stage": "parse", "error": text[text.rfind("sglang serve: error:") :]}
        record = self.ServerArgs.from_cli_args(namespace)
        for stage in ("resolve_once", "check_server_args"):
            try:
                getattr(record, stage)()
            except Exception as exc:  # SGLang's refusal: assertions, ValueError, RuntimeError, ...
                return {
                    "ok": False,
                    "stage": stage,
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(limit=-4),
                }
        resolved = record.resolved_dict()
        return {"ok": True, "stage": None, "error": None, "resolved": {k: resolved.get(k) for k in REPORTED}}

    handle = sglang_oracle.Oracle.handle


if __name__ == "__main__":
    sys.exit(sglang_oracle.main(factory=LaunchOracle))
