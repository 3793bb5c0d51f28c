import sys

from shim.cli import shim_main

sys.exit(shim_main())
