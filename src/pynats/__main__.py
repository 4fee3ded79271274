"""``python -m pynats``: the ``pynats`` command line (see :mod:`pynats.cli`)."""

from pynats.cli import main

raise SystemExit(main())
