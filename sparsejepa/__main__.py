"""`python -m sparsejepa ...`: the `sparsejepa` command line (see sparsejepa/cli.py)."""

from sparsejepa.cli import main

main()
