"""The engine program of the scripted-scheduler test engine: SGLang's own launch_server, scheduler replaced.

`vllm serve` starts it through VLLM_SHIM_ENGINE_COMMAND exactly as it starts SGLang, with SGLang's translated
arguments appended; they go through SGLang's real parser, resolve_once() and check_server_args() before anything
listens. Only two things are added: the model path points at the generated model directory (no weights, loaded as
dummy on the CPU), and the served name stays the one the shim asked for. Run it with the server environment's
Python (scripts/setup-sglang-server-env.sh), which keeps the model directory under its prefix.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Also runs in each spawned SGLang subprocess (multiprocessing re-imports the main module there).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.sglang_engine import torchvision_stub

torchvision_stub.install()
MODEL_DIR = Path(sys.prefix) / "model"


def engine_argv(argv: list[str], model_dir: Path = MODEL_DIR) -> list[str]:
    """The arguments SGLang gets: the shim's, the model path swapped for the local directory, CPU and no weights."""
    out = list(argv)
    given = out[out.index("--model-path") + 1] if "--model-path" in out else None
    if given is not None and not Path(given).is_dir():
        out[out.index("--model-path") + 1] = str(model_dir)
        if "--served-model-name" not in out:
            out += ["--served-model-name", given]
    return [*out, "--device", "cpu", "--load-format", "dummy"]


def no_gpu_memory_hook() -> None:
    """--enable-memory-saver: keep SGLang's real import of torch_memory_saver, drop only its LD_PRELOAD.

    SGLang starts the scheduler with torch_memory_saver's CUDA hook preloaded; without libcuda.so.1 the dynamic
    loader kills that process (exit 127) before any Python runs. The scripted scheduler holds no GPU memory.
    """
    from sglang.srt.utils import torch_memory_saver_adapter as adapter

    real = adapter._TorchMemorySaverAdapterReal
    real.configure_subprocess = lambda self: self._noop_context()  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sglang.srt.entrypoints.http_server import launch_server
    from sglang.srt.server_args import prepare_server_args

    from tests.sglang_engine.scheduler import run_scripted_scheduler

    no_gpu_memory_hook()
    server_args = prepare_server_args(engine_argv(argv))
    launch_server(server_args, run_scheduler_process_func=run_scripted_scheduler)


if __name__ == "__main__":
    main(sys.argv[1:])
