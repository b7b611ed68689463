"""``python -m hopshop_stack`` is the `hopshop` command."""

from .cli import main

raise SystemExit(main())
