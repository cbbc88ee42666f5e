"""What one message from the user may be: the cap, and what is refused with it.

Both front ends hand every line to ``Kernel.submit``, which refuses a message this module
finds a problem with (one error event, nothing else stored or sent); the chat asks the same
question before it clears its input line, so a refused message stays there to be edited.

Why a cap: a message is stored in the session, sent to the model with every later turn of
the conversation, offered to plugins and drawn by the chat. At 1 MiB (a 300-page book) no
real message is refused, while a stray ``cat`` of a log or a binary into ``--script`` cannot
grow the session by gigabytes or make the chat slow to open.
"""

from __future__ import annotations

__all__ = ["MAX_MESSAGE_BYTES", "message_problem"]

#: The largest message, in UTF-8 bytes (README, "Limits").
MAX_MESSAGE_BYTES = 1024 * 1024


def message_problem(text: str) -> str | None:
    """Why ``text`` cannot be sent as a message, on one line; None when it can.

    Linear time; a text short enough that it cannot be over the cap is not measured.
    """
    if len(text) * 4 > MAX_MESSAGE_BYTES:  # a character is 1 to 4 bytes
        size = _utf8_size(text)
        if size > MAX_MESSAGE_BYTES:
            return (
                f"message not sent: {size:,} bytes, over the {MAX_MESSAGE_BYTES >> 20} MiB "
                "limit for one message — split it into smaller messages"
            )
    for index, char in _surrogates(text):
        return (
            f"message not sent: it is not valid text (a byte that is not UTF-8, read as "
            f"U+{ord(char):04X}, at character {index + 1:,}) — save it as UTF-8 and send it again"
        )
    return None


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _surrogates(text: str) -> list[tuple[int, str]]:
    """The first lone surrogate (as from ``surrogateescape`` decoding), if any: such a string
    cannot be stored (orjson, SQLite) nor sent to a model or a plugin as JSON."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return [(exc.start, text[exc.start])]
    return []
