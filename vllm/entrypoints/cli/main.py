"""`python -m vllm.entrypoints.cli.main serve ...`: the module behind vLLM's `vllm` console script."""

import sys

from shim.cli import main

if __name__ == "__main__":
    sys.exit(main())
