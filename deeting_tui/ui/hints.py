"""A fix (:class:`~deeting_tui.errors.Hint`) as the chat says it: the keys that do it.

The CLI says ``run: deeting plugin grant notes fs:read:~/notes``; in the chat the same fix is
a key on the plugin screen (F2): ``press F2, select notes, press g and grant
fs:read:~/notes``, and on the plugin screen itself just the key. A fix that no key does
(a rollback, a registry sync, an upgrade to one chosen version) is the command to run in a
shell, said as such: the chat never sends a person to a shell for what a key does.

Every part that came from a plugin (its name, a scope) is neutralised on one line here, so
a caller can put the phrase in any widget.
"""

from __future__ import annotations

from deeting_tui.command_output import cli_hint
from deeting_tui.errors import DeetingError, Fix, Hint
from deeting_tui.kernel.events import ErrorEvent, PluginNotice, Reply
from deeting_tui.terminal_text import one_line, quote_prefix

__all__ = ["chat_error", "chat_event_line", "chat_hint", "with_chat_hint"]

#: The plugin screen's key for each fix a key does (deeting_tui/ui/screens/plugins.py).
KEYS: dict[Fix, str] = {
    Fix.GRANT: "g",
    Fix.REVOKE: "g",
    Fix.ENABLE: "e",
    Fix.DISABLE: "d",
    Fix.INSTALL: "i",
    Fix.UNINSTALL: "x",
    Fix.UPGRADE: "u",
}


def chat_hint(hint: Hint, *, on_plugin_screen: bool = False) -> str:
    """The fix as what to press: from the chat (F2 first, then the plugin, then the key), or
    ``on_plugin_screen`` (the plugin, then the key)."""
    plugin = quote_prefix(hint.plugin) if hint.plugin else None
    argument = quote_prefix(hint.argument) if hint.argument else None
    if _needs_shell(hint):
        return f"run in a shell: {one_line(cli_hint(hint))}"
    if hint.fix is Fix.LIST:
        return "the plugins are listed here" if on_plugin_screen else "press F2 for the plugins"
    steps = [] if on_plugin_screen else ["press F2"]
    if plugin is not None and hint.fix is not Fix.INSTALL:
        steps.append(f"select {plugin}")
    if hint.fix is Fix.INFO:
        steps.append("read its details and log beside the list")
        return ", ".join(steps)
    key = f"press {KEYS[hint.fix]}"
    if hint.fix in (Fix.GRANT, Fix.REVOKE) and argument is not None:
        key += f" and {hint.fix} {argument}"
    elif hint.fix is Fix.INSTALL:
        what = f"{plugin}@{argument}" if plugin and argument else plugin or argument
        key += f" and enter {what}" if what else " and choose a folder or a .zip"
    steps.append(key)
    return ", ".join(steps)


def _needs_shell(hint: Hint) -> bool:
    """No key does it: a rollback, a sync, or an upgrade to a chosen version or with flags
    (the screen's ``u`` installs the newest, forward only)."""
    if hint.fix in (Fix.ROLLBACK, Fix.SYNC):
        return True
    if hint.fix is Fix.UPGRADE:
        return bool(hint.argument or hint.flags)
    return bool(hint.flags)


def chat_error(error: BaseException, *, on_plugin_screen: bool = False) -> str:
    """An error as the chat shows it: a known one (:func:`errors.is_known`) as its message
    and the keys that fix it; anything else is a bug, and its type says so."""
    if not isinstance(error, DeetingError):
        return f"{type(error).__name__}: {quote_prefix(str(error), 200)}"
    return with_chat_hint(error.message, error.hint, on_plugin_screen=on_plugin_screen)


def chat_event_line(event: Reply | ErrorEvent | PluginNotice) -> str:
    """A kernel event's words (an ``error``'s or a ``plugin_notice``'s message, a
    ``reply``'s text) as the chat shows them: the hint the event carries as data becomes the
    keys to press."""
    said = event.text if isinstance(event, Reply) else event.message
    return with_chat_hint(said, event.hint)


def with_chat_hint(message: str, hint: Hint | None, *, on_plugin_screen: bool = False) -> str:
    """``message — press …``, or the message alone when nothing fixes it."""
    if hint is None:
        return message
    return f"{message} — {chat_hint(hint, on_plugin_screen=on_plugin_screen)}"
