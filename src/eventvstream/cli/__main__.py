"""``python -m eventvstream.cli``: the same as ``evs``."""

from eventvstream.cli import main

raise SystemExit(main())
