"""``python -m pynats.server``: the same as the ``pynats-server`` command."""

import sys

from pynats.server.cli import main

if __name__ == "__main__":
    sys.exit(main())
