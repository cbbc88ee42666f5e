"""``deeting view [--session ID] [--no-open] [--port N]``: a session's cards in the browser.

Serves a session from 127.0.0.1 (``web.CardServer``): ``--session ID``, or else the newest,
moving to each newer session as any process starts one (a ``deeting --script`` run started
after the view shows up in it; with no session yet, the page waits for the first). It
prints its URL as the first line on stdout at once (flushed, so a script reading a pipe gets
it before anything else happens), opens the system browser where that is safe
(``web.opening``; otherwise says how to reach the page, SSH forwarding included), loads the
events the session holds, then follows what any process appends to it (the chat, a
``deeting --script`` run) until SIGINT or SIGTERM, which stop it at once with exit 0.

No kernel, no plugin, no worker: this reads the session store and serves pages, so it starts
in a fraction of a second. The web modules are imported when the command runs, never by
``deeting --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from deeting_tui.errors import DeetingError
from deeting_tui.terminal_text import one_line

if TYPE_CHECKING:
    from deeting_tui.kernel.sessions.store import SessionInfo, SessionStore
    from deeting_tui.web.opening import Opened
    from deeting_tui.web.server import CardServer


class ViewUsageError(DeetingError):
    """``deeting view`` was asked for something that does not exist (exit 2)."""


def add_view_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    text = "a session's cards in the browser"
    view = commands.add_parser(
        "view",
        help=text,
        description=f"Serve {text} (tool results and live streams) from 127.0.0.1: the URL "
        "is the first line on stdout; the system browser opens unless --no-open; cards that "
        "any deeting process adds to the session appear as they come. Ctrl-C stops.",
    )
    view.add_argument(
        "--session",
        dest="view_session",
        metavar="ID",
        help="stay on session ID (default: the newest, moving to each newer one as it starts; "
        "ids: F3 in the chat)",
    )
    view.add_argument("--no-open", action="store_true", help="print the URL only; open no browser")
    view.add_argument(
        "--port",
        type=_port,
        default=0,
        metavar="N",
        help="serve on 127.0.0.1:N (default: a free port)",
    )


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0-65535)")
    return port


def run_view_command(args: argparse.Namespace) -> int:
    from deeting_tui.kernel.sessions.store import SessionStore
    from deeting_tui.paths import resolve_paths

    with SessionStore(resolve_paths().sessions_db) as store:
        session_id = args.view_session or args.session
        info = None if session_id is None else _chosen_session(store, session_id)
        return asyncio.run(_serve(store, info, port=args.port, open_browser=not args.no_open))


def _chosen_session(store: SessionStore, session_id: str) -> SessionInfo:
    from deeting_tui.kernel.sessions.database import SessionNotFound

    try:
        return store.get(session_id)
    except SessionNotFound as exc:
        raise ViewUsageError(
            f"--session {session_id}: {exc} — without --session, the newest is shown"
        ) from None


async def _serve(
    store: SessionStore, info: SessionInfo | None, *, port: int, open_browser: bool
) -> int:
    from deeting_tui.web.opening import open_url_async
    from deeting_tui.web.server import CardServer
    from deeting_tui.web.terminal_theme import terminal_theme

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = CardServer(port=port, theme=terminal_theme())
    await server.start()
    follower: asyncio.Task[None] | None = None
    try:
        sys.stdout.write(server.url + "\n")
        sys.stdout.flush()
        if open_browser:
            opening = asyncio.ensure_future(open_url_async(server.url))
            opening.add_done_callback(lambda done: _said_if_not_opened(done, server))
        if info is None:
            follower = asyncio.create_task(_follow_newest(store, server))
        else:
            follower = asyncio.create_task(_follow_one(store, server, info))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({follower, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if follower.done():
            follower.result()  # what ended it, if it failed, is said as the command's error
            await stop.wait()  # the session was deleted: the page keeps what it shows
        return 0
    finally:
        if follower is not None:
            follower.cancel()
        await server.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _said_if_not_opened(opening: asyncio.Future[Opened], server: CardServer) -> None:
    """Where no browser opened, the URL is for the user to open: say so, and how over SSH.
    Stopped before the browser answered (Ctrl-C at once): nothing to say."""
    from deeting_tui.web.opening import ssh_hint

    if opening.cancelled() or opening.result().ok:
        return
    opened = opening.result()
    port = urlsplit(server.url).port or 0
    print(
        one_line(f"deeting: no browser opened ({opened.reason}): open the URL above in one")
        + "\n"
        + one_line(f"deeting: {ssh_hint(port)}"),
        file=sys.stderr,
        flush=True,
    )


def _showing(store: SessionStore, info: SessionInfo) -> str | None:
    """Say on stderr which session the page shows; its title, for the page."""
    title = info.title or store.first_message(info.id)
    said = f"session {info.id}" + (f" ({title})" if title else "")
    print(one_line(f"deeting: showing {said} — Ctrl-C stops"), file=sys.stderr, flush=True)
    return title


async def _follow_one(store: SessionStore, server: CardServer, info: SessionInfo) -> None:
    await _follow(store, server, info.id, _showing(store, info))


async def _follow_newest(store: SessionStore, server: CardServer) -> None:
    """The newest session, and each newer one as any process starts it; a failure to follow
    one ends the command with its error, as with ``--session``."""
    from deeting_tui.web.follow import newest_sessions

    failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def _report(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None and not failed.done():
            failed.set_exception(task.exception())  # type: ignore[arg-type]

    following: asyncio.Task[None] | None = None

    def show(info: SessionInfo) -> None:
        nonlocal following
        if following is not None:
            following.cancel()
        title = _showing(store, info)
        following = asyncio.create_task(_follow(store, server, info.id, title))
        following.add_done_callback(_report)

    first = store.latest()  # said at once, before a Ctrl-C can come
    if first is None:
        print(
            "deeting: no session yet — the page shows the first one that deeting (the chat) "
            "or deeting --script starts; Ctrl-C stops",
            file=sys.stderr,
            flush=True,
        )
    else:
        show(first)

    async def switch() -> None:
        async for info in newest_sessions(store, shown=first.id if first else None):
            show(info)

    switching = asyncio.create_task(switch())
    try:
        await asyncio.wait({switching, failed}, return_when=asyncio.FIRST_COMPLETED)
        if failed.done():
            failed.result()
        switching.result()
    finally:
        switching.cancel()
        if following is not None:
            following.cancel()


async def _follow(
    store: SessionStore, server: CardServer, session_id: str, title: str | None
) -> None:
    """Load what the session holds, then publish what any process appends to it."""
    from deeting_tui.kernel.sessions.database import SessionNotFound
    from deeting_tui.web.follow import follow_session
    from deeting_tui.web.loading import stored_events

    try:
        events, last = await asyncio.to_thread(stored_events, store, session_id)
        server.load(session_id, title, events)
        async for _seq, event in follow_session(store, session_id, after_seq=last):
            server.publish(event)
    except SessionNotFound:
        print(
            f"deeting: session {session_id} was deleted; the page keeps what it shows — "
            "Ctrl-C stops",
            file=sys.stderr,
            flush=True,
        )
