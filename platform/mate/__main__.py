"""`python -m mate` is the `mate` command (for subprocesses that must use this interpreter)."""

from mate.cli import main

raise SystemExit(main())
