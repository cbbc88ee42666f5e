"""A fix said as the key that does it in the chat's plugin manager (``press g``).

The kernel's errors carry their fix as data (:class:`deeting_tui.errors.Hint`); the CLI says
it as a command (``command_output.cli_hint``), the plugin screens as a key. A fix with no key
(a registry sync, say) is said as the command to run in a terminal.
"""

from __future__ import annotations

from deeting_tui.command_output import cli_hint
from deeting_tui.errors import DeetingError, Fix, Hint

__all__ = ["chat_error", "chat_hint"]

#: The plugin manager's key for each fix it offers (see PluginManager.BINDINGS).
KEYS = {
    Fix.GRANT: ("g", "grant it"),
    Fix.REVOKE: ("g", "revoke it"),
    Fix.ENABLE: ("e", "enable it"),
    Fix.DISABLE: ("d", "disable it"),
    Fix.INSTALL: ("i", "install it"),
    Fix.UNINSTALL: ("x", "uninstall it"),
    Fix.UPGRADE: ("u", "upgrade it"),
    Fix.LIST: ("F2", "see the plugins"),
    Fix.INFO: ("F2", "see its details and log"),
}


def chat_hint(hint: Hint) -> str:
    """``press g to grant it``; a fix without a key: ``run: deeting registry sync``."""
    # The dialogs ask for consent, so a "--grant SCOPE" is what pressing the key leads to.
    flags = [f for f in hint.flags if f.startswith("--") and f != "--grant"]
    if hint.fix in KEYS and not flags:
        key, what = KEYS[hint.fix]
        return f"press {key} to {what}"
    return f"run: {cli_hint(hint)}"


def chat_error(error: DeetingError) -> str:
    """An error as the plugin screens say it: the message, then the key that fixes it."""
    if error.hint is None:
        return error.message
    return f"{error.message} — {chat_hint(error.hint)}"
