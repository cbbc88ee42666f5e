"""``deeting --script``: one user message per line, results on stdout, errors on stderr.

A thin front end: it feeds lines to ``Kernel.submit`` and prints the kernel's events, so it
behaves exactly as the chat does. Plain mode prints each reply's text; ``--json`` prints one
JSON object per event (JSON Lines), each with its ``type`` and ``session_id``.

Plain text and stderr lines carry plugin text, so each goes through the neutraliser
(``deeting_tui.terminal_text``): a reply cannot retitle the terminal, write the clipboard or
clear the screen. ``--json`` keeps the plugin's strings exact: orjson escapes C0 controls, and
``terminal_safe_json`` spells C1 and bidi controls as ``\\uXXXX`` too, which a JSON parser reads
back as the very same strings.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import stat
import threading
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

import orjson

from deeting_tui.command_output import event_line, with_cli_hint
from deeting_tui.kernel.events import (
    ErrorEvent,
    Event,
    PluginNotice,
    Reply,
    ReplyDelta,
    StreamFrame,
    ToolCall,
    ToolResult,
    from_json,
)
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.limits import MAX_MESSAGE_BYTES
from deeting_tui.terminal_text import neutralise, one_line, terminal_safe_json

#: The events ``--json`` prints (DESIGN: reply, tool_call, tool_result, stream, error).
JSON_EVENT_TYPES: tuple[type[Event], ...] = (Reply, ToolCall, ToolResult, StreamFrame, ErrorEvent)


class ScriptPrinter:
    """Turns kernel events into the script mode's output formats.

    On a terminal (``cards=True``), plain mode also draws each tool result as the chat's card
    (the same renderer functions) and writes a reply as the model streams it, so a long answer
    is read as it comes, as in the chat; piped output stays the bare reply
    text (README.md, "A short tour").
    """

    def __init__(self, out: IO[bytes], err: IO[str], json_mode: bool, cards: bool = False) -> None:
        self.out = out
        self.err = err
        self.json_mode = json_mode
        self.cards = cards and not json_mode
        #: The first failed write (a closed pipe, a full disk): the run stops on it.
        self.write_error: OSError | None = None
        self._streaming = False  # a reply's pieces are on the terminal, its line not ended

    def __call__(self, event: Event | Mapping[str, Any]) -> None:
        """Print one kernel event (or its JSON, read with ``from_json``)."""
        if self.write_error is not None:
            return  # nobody can read what follows: say it once, where the run ends
        try:
            self._print(event if isinstance(event, Event) else from_json(event))
        except OSError as exc:
            self.write_error = exc

    def flush(self) -> None:
        try:
            self.out.flush()
            self.err.flush()
        except OSError as exc:
            self.write_error = self.write_error or exc

    def _print(self, event: Event) -> None:
        if isinstance(event, PluginNotice):  # a crash, a restart, an upgrade made elsewhere
            self.err.write(f"notice: {one_line(event_line(event))}\n")
        elif self.json_mode:
            if isinstance(event, JSON_EVENT_TYPES):
                line = orjson.dumps(event.to_json(), option=orjson.OPT_NON_STR_KEYS)
                self.out.write(terminal_safe_json(line) + b"\n")
            if isinstance(event, ErrorEvent):
                self._error_line(event)
        elif isinstance(event, ReplyDelta) and self.cards:
            # Each piece neutralised on its own: a sequence cut in two leaves no ESC in either.
            self.out.write(neutralise(event.text).encode())
            self.out.flush()
            self._streaming = True
        elif isinstance(event, Reply):
            # A fix the reply points to, as this front end says it: the command to run.
            phrase = with_cli_hint("", event.hint)  # the CLI's own words: " — run: …" or none
            if self._streaming:  # its text is on the terminal already
                self._streaming = False
                self.out.write(neutralise(phrase).encode() + b"\n")
            else:
                self.out.write(neutralise(event.text + phrase).encode() + b"\n")
        elif isinstance(event, ToolResult) and self.cards and event.ok:
            self._card(event)
        elif isinstance(event, ErrorEvent):
            self._end_stream()
            self._error_line(event)

    def _end_stream(self) -> None:
        """A reply cut short (an error, Esc): its line ends before anything else is said."""
        if self._streaming:
            self._streaming = False
            self.out.write(b"\n")
            self.out.flush()

    def _card(self, event: ToolResult) -> None:
        from rich.console import Console  # only on a terminal: keeps piped runs lean

        self._end_stream()
        from deeting_tui.render import render

        buffer = io.StringIO()
        width = shutil.get_terminal_size((100, 24)).columns
        console = Console(file=buffer, width=width, force_terminal=True, color_system="auto")
        console.print(render(event.renderer, event.data, text=event.text))
        self.out.write(buffer.getvalue().encode())

    def _error_line(self, event: ErrorEvent) -> None:
        # The same prefix as every other error the command prints (cli.main), so one grep
        # (or a wrapper script) finds them all.
        self.err.write(f"deeting: error: {one_line(event_line(event))}\n")


@dataclass(frozen=True, slots=True)
class ScriptLine:
    """One line of a script to act on: a message to send, or why it cannot be sent.

    ``input`` keeps what the user wrote when it cannot be sent as it is (bytes that are not
    UTF-8, spelled ``\\xff``), so the session's error event still holds it.
    """

    number: int
    text: str = ""
    problem: str | None = None
    input: str | None = None


@dataclass(frozen=True, slots=True)
class _TooLong:
    size: int  # in bytes (characters, for a text stream)


#: A line is read up to this much: anything longer is over the message cap whatever it holds
#: (two more for a CR LF ending), so reading never holds more than this in memory.
_READ_LIMIT = MAX_MESSAGE_BYTES + 2


def _raw_lines(source: Iterable[str | bytes]) -> Iterator[str | bytes | _TooLong]:
    """The source's lines as read, a line past the cap as its size only (the rest of it is
    read and dropped, never held)."""
    readline = getattr(source, "readline", None)
    if readline is None:  # a list of lines (tests, the library use)
        for line in source:
            yield _TooLong(len(line)) if len(line) > _READ_LIMIT else line
        return
    while chunk := readline(_READ_LIMIT):
        if len(chunk) < _READ_LIMIT or chunk[-1:] in ("\n", b"\n"):
            yield chunk
            continue
        size = len(chunk)
        while chunk and chunk[-1:] not in ("\n", b"\n"):
            chunk = readline(_READ_LIMIT)
            size += len(chunk)
        ending = chunk[len(chunk.rstrip("\r\n" if isinstance(chunk, str) else b"\r\n")) :]
        yield _TooLong(size - len(ending))


def script_lines(lines: Iterable[str | bytes]) -> Iterator[ScriptLine]:
    """The lines to act on, numbered from 1 as an editor does. Blank lines and ``#`` comments
    are skipped. Bytes are read as UTF-8; a line that is not UTF-8, or is over the
    message cap, comes with its problem instead of its text: it is reported, not sent (a
    message changed by guessing its encoding could name another file or say another thing),
    and the lines after it run."""
    for number, raw in enumerate(_raw_lines(lines), start=1):
        if isinstance(raw, _TooLong):
            yield ScriptLine(
                number,
                problem=f"line {number}: {raw.size:,} bytes, over the "
                f"{MAX_MESSAGE_BYTES >> 20} MiB limit for one message — not sent; split it "
                "into smaller messages",
            )
            continue
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                if raw.strip().startswith(b"#"):
                    continue  # a comment, whatever its encoding
                yield ScriptLine(
                    number,
                    problem=f"line {number}: not UTF-8 (byte 0x{raw[exc.start]:02x} at byte "
                    f"{exc.start + 1:,}) — not sent; save the script as UTF-8 (for example: "
                    "iconv -f latin1 -t utf-8)",
                    input=raw.rstrip(b"\r\n").decode("utf-8", "backslashreplace"),
                )
                continue
        else:
            text = raw
        line = text.strip()
        if line and not line.startswith("#"):
            yield ScriptLine(number, line)


async def _lines_off_the_loop(lines: Iterable[str | bytes]) -> AsyncIterator[ScriptLine]:
    """The script's lines, read so that waiting for the next one never blocks the loop.

    A pipe or a terminal can keep the reader waiting for minutes, and meanwhile the kernel
    must go on (plugin streams, a hot upgrade made by ``deeting plugin upgrade`` elsewhere).
    Such input is read by a daemon thread (so Ctrl-C or the end of the run never waits for
    it); a regular file or a list is read in place, which is faster.
    """
    if not _may_block(lines):
        for line in script_lines(lines):
            yield line
        return
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[ScriptLine | BaseException | None] = asyncio.Queue(maxsize=1024)

    def read() -> None:
        try:
            for line in script_lines(lines):
                _hand_over(loop, queue.put(line))
            item: ScriptLine | BaseException | None = None
        except BaseException as exc:  # handed to the loop, raised there
            item = exc
        with contextlib.suppress(Exception):  # the loop is gone: nobody is listening
            _hand_over(loop, queue.put(item))

    threading.Thread(target=read, name="deeting-script-reader", daemon=True).start()
    while (item := await queue.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item


def _hand_over(loop: asyncio.AbstractEventLoop, put: Coroutine[Any, Any, None]) -> None:
    """Run ``put`` (a ``queue.put``) on ``loop`` from the reader thread, and wait for it.

    The thread holds the coroutine until then: when the run ends first (a closed pipe,
    Ctrl-C) and the loop never runs it, it is not collected un-awaited as the loop closes,
    which Python would report on stderr ("coroutine 'Queue.put' was never awaited")."""
    try:
        future = asyncio.run_coroutine_threadsafe(put, loop)
    except RuntimeError:  # the loop is closed
        put.close()
        raise
    future.result()


def _may_block(lines: Iterable[str | bytes]) -> bool:
    try:
        fileno = lines.fileno()  # type: ignore[attr-defined]
        return not stat.S_ISREG(os.fstat(fileno).st_mode)
    except (AttributeError, OSError, ValueError):
        return False


async def run_script(
    kernel: Kernel,
    lines: Iterable[str | bytes],
    *,
    session_id: str | None,
    out: IO[bytes],
    err: IO[str],
    json_mode: bool,
) -> int:
    """Run every line; 0 when all succeeded, 1 when any failed."""
    session = kernel.open_session(session_id)
    cards = hasattr(out, "isatty") and out.isatty()
    printer = ScriptPrinter(out, err, json_mode, cards=cards)
    remove = kernel.add_listener(printer)
    failed = False
    try:
        async for line in _lines_off_the_loop(lines):
            if line.problem is not None:  # one error line (stored too); the run goes on
                kernel.error(session.id, line.problem, line=line.number, input=line.input)
                failed = True
            else:
                turn = await kernel.submit(session.id, line.text)
                failed = failed or turn.failed
            printer.flush()
            if printer.write_error is not None:
                _stop_on(printer.write_error)
    finally:
        remove()
    return 1 if failed else 0


def _stop_on(error: OSError) -> None:
    """The output cannot be written: the rest of the script would run for nobody. A closed
    pipe (``deeting --script - | head -1``) ends the run as a shell expects, quietly; any
    other failure (a full disk) is an error that says so."""
    if isinstance(error, BrokenPipeError):
        raise error
    raise OSError(error.errno, f"cannot write the output: {error.strerror or error}") from None
