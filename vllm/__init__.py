"""Module shadow: `python -m vllm ...` and the vLLM entry-point modules run vllm-to-sglang's `vllm` command."""

from shim import VLLM_COMPAT_VERSION as __version__

__all__ = ["__version__"]
