"""The one neutraliser: plugin text made safe to put on a terminal.

Every string a plugin controls (a reply, an error, a manifest description, a log line, a
stream's payload, a stored reply shown again on resume) reaches the user's terminal through
:func:`neutralise` first, in every front end: ``deeting --script``'s stdout and stderr, the
``deeting plugin`` commands, the renderers' cards and every widget of the chat. Without it a
plugin could retitle the terminal (OSC 0/2), write the clipboard (OSC 52), clear the screen,
move the cursor to overwrite what the kernel said, or reverse a line with a bidi override.

What becomes of what, and why:

- A whole escape sequence is dropped: CSI (``ESC [`` or 8-bit ``0x9B``, its parameters and
  final byte), the string sequences OSC, DCS, SOS, PM and APC (``ESC ] P X ^ _`` or their 8-bit
  forms) up to and including their BEL or ST terminator, and ``ESC`` with intermediates and
  one final character (``ESC c``, ``ESC ( B``). Its payload is an instruction to the
  terminal, never text for the reader: ``ESC ]0;title BEL`` shown as ``]0;title`` is garbage,
  and colours in a plugin's log would become confetti.
- An unterminated sequence is dropped up to where a terminal would stop reading it, but a
  string sequence never past the end of its line: a stray ``ESC ]`` can hide the rest of its
  own line, not the lines (or the kernel's words) after it. A sequence cut in two by a stream
  is therefore harmless: each piece is neutralised on its own and neither keeps an ``ESC``.
- Any other control character (C0 except newline and tab, DEL, C1, a lone ``ESC``) and a
  lone surrogate (from ``surrogateescape`` decoding: it would re-encode to a raw byte such as
  ``0x9B``) becomes U+FFFD, the replacement character: the reader sees that something was
  withheld (``a\\x00b`` does not read as ``ab``, ``rm\\x08\\x08ls`` not as ``rmls``), and the
  text always encodes to UTF-8.
- A carriage return becomes a newline (``\\r\\n`` one newline): ``safe\\rEVIL`` would
  otherwise print EVIL over the start of the line; as two lines nothing is hidden.
- Bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) are dropped, so the
  text shows in the order it is stored and cannot be reversed (``exe.txt`` shown as
  ``txt.exe``) nor leak an unclosed override into the kernel's text after it. The bidi marks
  LRM, RLM and ALM (U+200E, U+200F, U+061C) are kept: they are strong characters of no width
  that right-to-left text needs, and cannot reorder a run the way an override does.

``--json`` output is the exception: a consumer must get the plugin's strings exactly, so
:func:`terminal_safe_json` only spells the characters a terminal would act on as ``\\uXXXX``
escapes, which every JSON parser reads back as the same string.

Everything else, including newlines, tabs and any printable character, is kept as it is, so
``neutralise`` is idempotent and a clean string comes back unchanged (the same object).

It is one compiled regular expression, applied in one left-to-right pass (``re.sub``): no
pattern nests a repetition and every repeated class stops at the next ``ESC``, so the time is
linear in the length whatever the input (ten megabytes, a million ``ESC`` bytes, an endless
unterminated sequence). It imports nothing but the standard library, so the kernel, the CLI,
the renderers, the UI and the plugin pipeline's tools can all use it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any

__all__ = [
    "TerminalSafeLastResort",
    "neutralise",
    "neutralise_line",
    "neutralise_tree",
    "one_line",
    "quote_prefix",
    "terminal_safe_json",
]

# Every character that starts something to neutralise: a search skips to the next of these at
# C speed, so clean text costs one fast scan. What follows the character decides what it is.
_CONTROL = "\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_CSI_BODY = r"[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"  # parameters, intermediates, final
# A string sequence's body and terminator (BEL or ST); CAN, SUB, ESC and a line end cut it.
_STRING_BODY = r"[^\x07\x0a\x0d\x18\x1a\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
_PATTERN = re.compile(
    f"[{_CONTROL}]"
    "(?:"
    rf"(?<=\x1b)(?:\[{_CSI_BODY}|[\]PX^_]{_STRING_BODY}|[\x20-\x2f]*[\x30-\x7e])"
    rf"|(?<=\x9b){_CSI_BODY}"
    rf"|(?<=[\x90\x98\x9d\x9e\x9f]){_STRING_BODY}"
    r"|(?<=\r)\n"
    ")?"
)
#: What a single character found alone becomes; any other becomes U+FFFD.
_SINGLE = {
    "\r": "\n",
    # An 8-bit introducer alone is still a (cut) sequence: dropped like its 7-bit form.
    **dict.fromkeys("\x9b\x90\x98\x9d\x9e\x9f", ""),
    **dict.fromkeys("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069", ""),
}


def _replace(match: re.Match[str]) -> str:
    found = match.group()
    if len(found) > 1:  # an escape sequence, or CR LF
        return "\n" if found[0] == "\r" else ""
    return _SINGLE.get(found, "\N{REPLACEMENT CHARACTER}")


def neutralise(text: str) -> str:
    """``text`` fit to be written to a terminal as is: no escape sequence, no control
    character but newline and tab, no bidi override (see the module's docstring for what
    becomes of each). Linear time; a clean string is returned unchanged."""
    return _PATTERN.sub(_replace, text)


def one_line(text: str) -> str:
    """``text`` neutralised and on one line: each run of whitespace (newlines, tabs) becomes
    one space, and none leads or trails. For error lines, notices and titles."""
    return " ".join(neutralise(text).split())


#: How much of a user's or a plugin's text an error line quotes (:func:`quote_prefix`).
QUOTE_CHARS = 80


def quote_prefix(text: str, limit: int = QUOTE_CHARS) -> str:
    """At most ``limit`` characters of ``text``, on one line and neutralised, for an error
    line that names what it refused: a 10 MB argument must not become a 10 MB error line (nor
    be stored again with it). What is left out is counted (``… (9,999,920 more characters)``),
    so the reader knows the quote is cut. Only the prefix is read: linear in ``limit``, not in
    the text."""
    if len(text) <= limit:
        return one_line(text)
    return f"{one_line(text[:limit])}… ({len(text) - limit:,} more characters)"


def neutralise_line(text: str) -> str:
    """``text`` neutralised for one line of a listing: each newline becomes a space, other
    spacing is kept (columns stay aligned), so a plugin's newline cannot forge the next line
    (a fake ``ok`` or ``state: enabled``)."""
    return neutralise(text).replace("\n", " ")


def neutralise_tree(value: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, tuples, scalars) with every string in it,
    keys included, neutralised (a tuple comes back as a list, as JSON has it). Iterative, so a
    deeply nested payload cannot exhaust the stack; values that are not strings or containers
    come back as they are."""
    if isinstance(value, str):
        return neutralise(value)
    if not isinstance(value, dict | list | tuple):
        return value
    root: list[Any] = [None]
    # Each entry: a source container, and where its copy goes (the parent copy and its slot).
    pending: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while pending:
        source, parent, slot = pending.pop()
        items: Iterable[tuple[Any, Any]]
        if isinstance(source, dict):
            copy: Any = {}
            items = source.items()
        else:
            copy = [None] * len(source)
            items = enumerate(source)
        parent[slot] = copy
        for key, item in items:
            if isinstance(copy, dict) and isinstance(key, str):
                key = neutralise(key)
            if isinstance(item, str):
                copy[key] = neutralise(item)
            elif isinstance(item, dict | list | tuple):
                if isinstance(copy, dict):
                    copy[key] = None  # keeps the key's place; filled when popped
                pending.append((item, copy, key))
            else:
                copy[key] = item
    return root[0]


# In UTF-8 JSON text these bytes can only stand inside a string: DEL, C1 (C2 80 to C2 9F) and the
# bidi embeddings, overrides and isolates (E2 80 AA to E2 80 AE, E2 81 A6 to E2 81 A9).
_JSON_UNSAFE = re.compile(rb"\x7f|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]|\xe2\x81[\xa6-\xa9]")


def _json_escape(match: re.Match[bytes]) -> bytes:
    return b"\\u%04x" % ord(match.group().decode())


def terminal_safe_json(data: bytes) -> bytes:
    """UTF-8 JSON text (orjson's, which escapes C0 controls already) with DEL, C1 controls and
    bidi controls escaped as ``\\uXXXX``: the same JSON value, byte for byte once parsed, but
    nothing in it a terminal would act on. Linear time, like :func:`neutralise`."""
    return _JSON_UNSAFE.sub(_json_escape, data)


class TerminalSafeLastResort(logging.Handler):
    """Python's handler of last resort (WARNING and up, written to whatever ``sys.stderr`` is
    at that moment, so the chat's capture of stderr still holds), with each record neutralised:
    a kernel warning may quote a plugin (``deactivate failed: …``, a protocol error). The
    message is kept to one line, so a plugin's newline cannot forge a line of its own. The
    command-line front ends install it as ``logging.lastResort``."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = one_line(record.getMessage())
            if record.exc_info:
                text += "\n" + neutralise(logging.Formatter().formatException(record.exc_info))
            sys.stderr.write(text + "\n")
        except Exception:
            self.handleError(record)
