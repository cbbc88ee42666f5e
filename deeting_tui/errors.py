"""The error family: what went wrong, and what would fix it, as data.

A person meets Deeting's errors on two faces, the command line and the chat, and each phrases
a fix its own way: the CLI says ``run: deeting plugin grant notes fs:read:~/notes``, the
plugin screen says ``press g``. So an error that has a fix carries it as a :class:`Hint` (what
to do, to which plugin, with which argument), never as a command baked into its text; the
front end that shows the error phrases the hint (``command_output.cli_hint`` for the CLI,
``ui.hints.chat_hint`` for the chat).

Every error a person can act on derives from :class:`DeetingError`, so a front end catches
one type instead of a ladder of them, and anything else that escapes is a bug and is shown
as one.

Stdlib only, below every layer: the kernel, the store, the front ends and the CI tools all
raise these.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["DeetingError", "Fix", "Hint", "is_known"]


class Fix(StrEnum):
    """What a person can do about an error; each front end knows how to say it."""

    GRANT = "grant"  # plugin, argument = the scope
    REVOKE = "revoke"  # plugin, argument = the scope
    ENABLE = "enable"  # plugin
    DISABLE = "disable"  # plugin
    INSTALL = "install"  # plugin (argument: a version) or argument = a path
    UNINSTALL = "uninstall"  # plugin
    UPGRADE = "upgrade"  # plugin (argument: a version)
    ROLLBACK = "rollback"  # plugin
    INFO = "info"  # plugin: read its details and log
    LIST = "list"  # the installed plugins
    SYNC = "sync"  # fetch the registry's latest list


@dataclass(frozen=True)
class Hint:
    """One fix: ``fix`` applied to ``plugin`` with ``argument`` (a scope, a version, a path)
    and ``flags`` (such as ``--allow-downgrade``), for a front end to phrase."""

    fix: Fix
    plugin: str | None = None
    argument: str | None = None
    flags: tuple[str, ...] = ()

    def as_data(self) -> dict[str, Any]:
        """The hint as JSON-ready data, for a kernel event (``"hint"``) that a front end
        phrases when it shows the event."""
        data: dict[str, Any] = {"fix": str(self.fix)}
        if self.plugin is not None:
            data["plugin"] = self.plugin
        if self.argument is not None:
            data["argument"] = self.argument
        if self.flags:
            data["flags"] = list(self.flags)
        return data

    @classmethod
    def from_data(cls, data: Any) -> Hint | None:
        """The hint an event carries, or None when it carries none or nothing readable: an
        event may come from an older stored session, and a wrong hint must never stop the
        message it belongs to from being shown."""
        if not isinstance(data, dict) or data.get("fix") not in set(Fix):
            return None
        fix = Fix(data["fix"])
        plugin, argument, flags = data.get("plugin"), data.get("argument"), data.get("flags", ())
        if not isinstance(flags, list | tuple) or not all(isinstance(f, str) for f in flags):
            flags = ()
        return cls(
            fix,
            plugin if isinstance(plugin, str) else None,
            argument if isinstance(argument, str) else None,
            tuple(flags),
        )


class DeetingError(Exception):
    """An error a person can act on: a one-line ``message`` stating what is wrong, and the
    ``hint`` that fixes it, if there is one.

    ``str(error)`` is the message alone; a front end adds the phrased hint."""

    def __init__(self, message: str, hint: Hint | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def is_known(error: BaseException) -> bool:
    """Whether ``error`` is one a person can act on (shown as its one line, no type name) or
    a bug (shown with its type and the way to see the traceback). The one rule every front
    end asks: the CLI, the script and the chat."""
    return isinstance(error, DeetingError)
