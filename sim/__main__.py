"""`python -m sim <SGLang arguments>`."""

from sim.server import main

raise SystemExit(main())
