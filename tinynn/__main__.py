"""``python -m tinynn``: the same as the ``tinynn`` command."""

import sys

from .cli import main

sys.exit(main())
