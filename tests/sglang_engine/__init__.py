"""SGLang's own server with a scripted scheduler: the test engine for the live suites (test-only, never shipped).

`scripts/setup-sglang-server-env.sh` builds its environment; `launch.py` is the program `vllm serve` starts
through VLLM_SHIM_ENGINE_COMMAND; `scheduler.py` replaces only SGLang's scheduler subprocess.
"""
