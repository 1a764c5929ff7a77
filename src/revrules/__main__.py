"""``python -m revrules``: the same as the ``revrules`` command."""

import sys

from .cli import main

sys.exit(main())
