"""The chat's last line of defence: nothing any widget draws reaches the terminal unneutralised.

Plugin text is neutralised where it enters the UI (``KernelEvent``, the plugin manager, the
dialogs, every toast), so it is laid out and shown cleanly. This filter makes sure a place
that is missed one day (a new widget, a Textual widget quoting a string) still cannot put an
escape sequence, a control character or a bidi override on the terminal: Textual writes each
segment's text to the terminal as it is (Rich drops only BEL, BS, VT, FF and CR), so every
segment of every rendered line goes through the same neutraliser, and so does the URL of a
terminal hyperlink (OSC 8), which is written inside an escape sequence.

It is a Textual line filter (the mechanism of its ``NO_COLOR`` support), applied to each line
once and cached with it. A line keeps its width: what neutralising removed is padded with
spaces, what it added (U+FFFD for a control character, which had no width) is cut at the end,
so the layout Textual computed still holds.
"""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter

from deeting_tui.terminal_text import neutralise


class TerminalGuard(LineFilter):
    """Neutralises the text and hyperlink of every segment; a clean line passes unchanged."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        guarded: list[Segment] | None = None
        for index, segment in enumerate(segments):
            safe = self._segment(segment)
            if safe is not segment:
                if guarded is None:
                    guarded = list(segments)
                guarded[index] = safe
        return segments if guarded is None else guarded

    @staticmethod
    def _segment(segment: Segment) -> Segment:
        text, style, control = segment
        if control:
            return segment
        safe = neutralise(text)
        link = style.link if style is not None else None
        if safe == text and (not link or neutralise(link) == link):
            return segment
        if safe != text:
            safe = set_cell_size(safe, cell_len(text))
        if style is not None and link and neutralise(link) != link:
            style = style.update_link(None)
        return Segment(safe, style)
