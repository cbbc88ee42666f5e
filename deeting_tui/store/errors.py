"""The one error the registry client raises: what was refused or failed, and that nothing
changed. Front ends print its message as it is."""

from __future__ import annotations

from deeting_tui.errors import DeetingError

__all__ = ["StoreError", "UpdaterBusy"]


class StoreError(DeetingError):
    """A registry operation was refused or failed; nothing was changed."""


class UpdaterBusy(StoreError):
    """Another updater holds the lock; the message names it and says to retry."""
