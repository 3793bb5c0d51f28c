"""Let SGLang's HTTP server import without torchvision.

PyPI's torchvision for Linux x86_64 is a CUDA build that fails to load beside the CPU torch. SGLang imports it
only from multimodal helpers that text requests never call, but it imports them while `http_server` loads.
transformers must still see torchvision as *absent* (else it imports torchvision.io), so its cached
availability check runs first; then every `torchvision.*` import gets an empty stand-in whose attributes raise
when used.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any


class _Unavailable:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("torchvision is not installed in the scripted-scheduler test environment")


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name == "torchvision" or name.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = types.ModuleType(spec.name)
        module.__path__ = []
        module.__getattr__ = lambda attr: _Unavailable  # type: ignore[method-assign]
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def install() -> None:
    if any(isinstance(f, _StubFinder) for f in sys.meta_path):
        return
    from transformers.utils import import_utils

    if import_utils.is_torchvision_available():
        return  # a working torchvision: nothing to stand in for
    sys.meta_path.insert(0, _StubFinder())
