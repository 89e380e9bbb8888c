"""`python -m rungs ...`: the `rungs` command, for a Python whose scripts folder is not on PATH."""

import sys

from rungs.cli import main

sys.exit(main())
