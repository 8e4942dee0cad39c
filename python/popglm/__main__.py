"""``python -m popglm``: the command line (see popglm.cli)."""

from .cli import main

raise SystemExit(main())
