"""``python -m gb_backfill``: the same as the ``gb-backfill`` command."""

from ._cli import main

raise SystemExit(main())
