"""`python -m benchmarks SUITE ...`: see benchmarks/cli.py."""

import sys

from benchmarks.cli import main

sys.exit(main())
