"""``python -m interpkit``: the same as the ``interpkit`` command."""

import sys

from interpkit.cli import main

sys.exit(main())
