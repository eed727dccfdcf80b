"""`python -m theory PATH ...`: the multiinfo CLI (see theory/cli.py)."""

import sys

from theory.cli import main

sys.exit(main())
