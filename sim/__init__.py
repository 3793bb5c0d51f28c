"""A simulated SGLang server (test double): SGLang 0.5.23's HTTP surface without a model or a GPU.

Used by the demo and every live test; never a fallback for a real engine. See docs/simulator.md.
"""

SGLANG_VERSION = "0.5.23"
