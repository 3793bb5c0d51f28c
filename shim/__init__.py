"""`vllm` command that runs SGLang behind haproxy and a vLLM-compatible middleware."""

__version__ = "0.1.0"
# The vLLM release whose command line and HTTP surface we present (`vllm --version`, `/version`).
VLLM_COMPAT_VERSION = "0.33.0"
