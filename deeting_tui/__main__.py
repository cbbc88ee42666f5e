"""``python -m deeting_tui`` is the ``deeting`` command."""

import sys

from deeting_tui.cli import main

sys.exit(main())
