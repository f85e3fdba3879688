"""``python -m gaplab`` runs the command line."""

import sys

from gaplab.cli import main

sys.exit(main())
