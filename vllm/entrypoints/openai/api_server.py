"""`python -m vllm.entrypoints.openai.api_server --model M ...` (KServe, the production stack's Gateway example).

vLLM's module takes the serve options without the `serve` word; so do we.
"""

import sys

from shim.cli import main


def run() -> int:
    return main(["serve", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(run())
