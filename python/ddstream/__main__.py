"""``python -m ddstream``: the same as the ``ddstream`` command."""

import sys

from .cli import main

sys.exit(main())
