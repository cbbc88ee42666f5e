"""The chat's input line: Textual's Input, with keys that arrive in a burst inserted at once.

Without bracketed paste, a terminal delivers pasted text as one key event per character.
Textual's Input inserts each of them on its own: every insertion sets ``value`` (its watchers
validate, re-measure the whole line in cells, scroll, ask the suggester in a worker), so the
work per key grows with the line and a burst of N keys costs O(N²) — 8,000 characters took
6.5 s, 200,000 over a minute at full CPU. Here a printable key only appends its character to
a buffer, and the buffer is inserted once, when the keys already queued have been read (a
callback queued behind them) or before anything else touches the line (another key, a paste,
a click). A burst of N keys is one insertion of N characters; a key typed alone is inserted as
soon as it is read, as before.

Enter sends the line in turn with the keys (not through a binding, which Textual resolves
only once the key has bubbled up to the app) and empties it in the same step: keys typed
ahead, before the chat has handled the line sent, start the next line. Before, they were
appended to the line sent (``/newsleep 60``) and then wiped with it. A line the chat refuses is
put back, ahead of them.

A pasted text keeps all its lines (Textual's Input keeps the first line of a paste and drops
the rest): each line break shows as ``LINE_BREAK`` in the one-line input and goes back to a
line break in the message sent (:meth:`PromptInput.message`).
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input

#: How a line break of a pasted text shows in the one-line input.
LINE_BREAK = "↵"


def as_line(text: str) -> str:
    """A message as the input line shows it: its line breaks as ``LINE_BREAK``."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", LINE_BREAK)


class PromptInput(Input):
    """An Input whose printable keys are inserted in batches (see the module's docstring)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._typed: list[str] = []

    async def _on_key(self, event: events.Key) -> None:
        if event.is_printable and event.character is not None:
            event.stop()
            event.prevent_default()  # Input's own handler would insert it now
            if not self._typed:
                self.call_later(self.flush_typed)
            self._typed.append(event.character)
            return
        self.flush_typed()  # Enter, arrows, Backspace: they act on the line as typed so far
        if event.key == "enter":
            # Sent here, in turn with the keys: Input's binding would run only once the key
            # has bubbled up to the app, after keys typed ahead had already reached the line.
            event.stop()
            event.prevent_default()
            await self.action_submit()

    def _on_paste(self, event: events.Paste) -> None:
        self.flush_typed()
        event.prevent_default()  # Input's own handler keeps the first line only
        event.stop()
        if not event.text:
            return
        text = as_line(event.text)
        selection = self.selection
        if selection.is_empty:
            self.insert_text_at_cursor(text)
        else:
            self.replace(text, *selection)

    async def action_submit(self) -> None:
        """Send the line and empty it in the same step (see the module's docstring)."""
        self.flush_typed()
        value = self.value
        validation = self.validate(value) if "submitted" in self.validate_on else None
        self.value = ""
        self.post_message(self.Submitted(self, value, validation))

    def restore(self, line: str) -> None:
        """Put a line that was sent back (the chat refused it), ahead of what was typed since."""
        self.flush_typed()
        self.value = line + self.value
        self.cursor_position = len(line)

    @staticmethod
    def message(value: str) -> str:
        """The message a line of the input stands for: ``LINE_BREAK`` back to line breaks."""
        return value.replace(LINE_BREAK, "\n")

    async def _on_mouse_down(self, event: events.MouseDown) -> None:
        self.flush_typed()

    def flush_typed(self) -> None:
        """Insert what was typed and not inserted yet, at the cursor (over a selection)."""
        if not self._typed:
            return
        text = "".join(self._typed)
        self._typed.clear()
        self._restart_blink()
        selection = self.selection
        if selection.is_empty:
            self.insert_text_at_cursor(text)
        else:
            self.replace(text, *selection)
