"""`python -m steerbench.cli`: the same as the `steerbench` command."""

import sys

from steerbench.cli import main

sys.exit(main())
