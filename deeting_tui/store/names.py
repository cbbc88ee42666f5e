"""What a registry SOURCE looks like on the command line and in the install dialog.

The rule itself lives with the plugin name (``deeting_tui.plugin.names``), below the kernel,
which decides between a path and a registry name for every front end; this keeps the
store's old name for it.
"""

from __future__ import annotations

from deeting_tui.plugin.names import split_source

__all__ = ["split_source"]
