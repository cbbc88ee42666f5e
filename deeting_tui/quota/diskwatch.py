"""Disk quotas held as files are written, not found out seconds later.

One inotify instance per kernel watches every running plugin's folders (data, cache, temp),
recursively; its descriptor is a reader on the event loop. Each event names one entry of a
watched folder, and that one entry is lstat()ed again: the plugin's running total
(diskaccount.py, over its tree in disktree.py) is what its folders hold, give or take the
writes of the last few milliseconds. The moment the total passes ``limits.disk_mb`` the
owner (the watchdog's Box) is told, and stops the plugin through the same path a walk
would have.

What the events cannot see is looked at another way:

* a write tells nothing until it returns, and a file unlinked while open (or made with
  O_TMPFILE) has no name to lstat: while a plugin works with files, the files its
  processes hold open for writing (openfiles.py) are looked at every OPEN_TICK, down to
  NEAR_TICK as its writes near the quota, then — while it still holds some — whenever its
  ``write_bytes`` moves;
* a shared mapping fills a sparse file's holes with no event until it is dropped: files
  with holes are looked at every HOLE_TICK while they could take the plugin past its quota;
* a queue overflow, or a folder moved in from outside with more entries than are listed at
  once: a new walk of that plugin's folders, in a thread (events meanwhile are looked at
  again once it is in).

A plugin with more folders or files than a tree may hold, or a machine where inotify is
missing or used up, falls back to the watchdog's walk; the plugin's log and ``deeting
plugin info`` say so.

Per event the kernel pays one lstat of that entry (events that arrive together for the same
entry: one), about 20 µs in all (python -m bench.diskquota).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import stat
import time
from collections.abc import Sequence
from pathlib import Path

from . import disktree, openfiles, usage
from .diskaccount import NEAR_TICK, OPEN_TICK, Account
from .disktally import Owner
from .disktree import Dir
from .inotify import IN_ISDIR, IN_Q_OVERFLOW, Event, Inotify

log = logging.getLogger("deeting.diskwatch")

READS_PER_WAKE = 8  # reads of 64 KiB of events, then the loop runs others before reading on
HOLE_TICK = 0.01  # seconds between looks at files with holes, while they are a risk
HOLES_PER_TICK = 64
ACTIVE_GRACE = 0.05  # open files looked at this long after a plugin's last event or growth
IDLE_TICK = 0.1  # ... and this often, where /proc has no write_bytes, while it holds some
UNKNOWN_EVENTS = 65536  # events kept for folders a walk in flight is adding
WATCH_SHARE = 4  # the kernel uses at most 1/WATCH_SHARE of the user's inotify watches


class DiskWatch:
    """The kernel's one inotify instance, shared by the plugins' accounts."""

    def __init__(self) -> None:
        self.inotify: Inotify | None = None
        self.problem: str | None = None  # why inotify cannot be used here
        self.accounts: dict[tuple[str, ...], Account] = {}
        self.owners: dict[int, Account] = {}  # watch descriptor → account
        self.pending: dict[int, tuple[Account, Dir]] = {}  # moved-from folders, by cookie
        self.orphans: set[int] = set()  # watches to remove once no walk is in flight
        self.unknown: list[Event] = []
        self.scans = 0  # walks in flight
        self.budget = _watch_budget()
        self._polling: set[Account] = set()
        self._poll: asyncio.TimerHandle | None = None
        self.writing: dict[Account, float] = {}  # accounts whose open files are looked at
        self._open_poll: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, folders: Sequence[Path], quota: int, owner: Owner) -> Account | None:
        """Account ``folders`` for ``owner`` from now on; None where inotify cannot."""
        if not self._ready():
            return None
        roots = tuple(os.path.realpath(folder) for folder in folders)
        account = self.accounts.get(roots)
        if account is not None and account.live:
            # Another worker of the same plugin (a hot upgrade): one account, the new owner.
            account.owner, account.quota, account.over = owner, quota, False
            account.check()
            return account
        account = Account(self, roots, quota, owner)
        self.accounts[roots] = account
        account.rescan()
        return account

    def release(self, account: Account, owner: Owner) -> None:
        """``owner`` is done with ``account`` (its worker ended)."""
        if account.owner is owner and not account.closed:
            account.close()

    def _ready(self) -> bool:
        if self.inotify is not None:
            return True
        if self.problem is not None:
            return False
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            return False  # no loop to read events on (not a worker the kernel runs)
        try:
            self.inotify = Inotify()
            self._loop.add_reader(self.inotify.fd, self.drain)
        except OSError as exc:
            self.problem = exc.strerror or str(exc)
            log.warning("no inotify: plugins' folders are walked instead: %s", self.problem)
            if self.inotify is not None:
                self.inotify.close()
                self.inotify = None
            return False
        return True

    # -- watches -----------------------------------------------------------------------------

    def add(self, path: str) -> int:
        """Watch a folder (any thread)."""
        inotify = self.inotify
        if inotify is None:
            raise OSError(errno.EBADF, "the kernel is shutting down")
        return inotify.add_watch(path, disktree.MASK)

    def bind(self, wd: int, account: Account) -> None:
        self.owners[wd] = account

    def unbind(self, wd: int) -> None:
        """No folder of any account has this watch any more: remove it — once no walk is in
        flight, since a walk may have just added the same folder (watches are per inode)."""
        self.owners.pop(wd, None)
        self.orphans.add(wd)
        self.sweep()

    def sweep(self) -> None:
        if self.scans or self.inotify is None:
            return
        for wd in self.orphans:
            if wd not in self.owners:
                self.inotify.rm_watch(wd)
        self.orphans.clear()

    def dirs_allowed(self, account: Account) -> int:
        """How many folders ``account`` may have watched: its own cap, and the kernel's
        share of the user's inotify watches (the user's editors need theirs)."""
        others = len(self.owners) - len(account.dirs)
        return max(0, min(disktree.MAX_DIRS, self.budget - others))

    def forget(self, account: Account) -> None:
        if self.accounts.get(account.roots) is account:
            del self.accounts[account.roots]
        self._polling.discard(account)

    # -- events ------------------------------------------------------------------------------

    def drain(self) -> None:
        """Handle the events queued now (the loop calls it when there are some)."""
        if self.inotify is None:
            return
        events: list[Event] = []
        for _ in range(READS_PER_WAKE):
            got = self.inotify.read()
            if not got:
                break
            events.extend(got)
        try:
            self.dispatch(events)
        except Exception:  # a bug here must not end the watch
            log.exception("disk accounting failed")

    def dispatch(self, events: Sequence[Event]) -> None:
        overflow = False
        now = time.monotonic()
        seen: dict[Account, None] = {}
        for event in events:
            if event.wd < 0:
                overflow = overflow or bool(event.mask & IN_Q_OVERFLOW)
                continue
            account = self.owners.get(event.wd)
            node = account.dirs.get(event.wd) if account is not None else None
            if account is None or node is None:
                if self.scans and len(self.unknown) < UNKNOWN_EVENTS:
                    self.unknown.append(event)  # a folder a walk in flight is adding
                elif self.scans:
                    overflow = True
                continue
            account.event(node, event)
            seen[account] = None
            if event.name and not event.mask & IN_ISDIR:
                self.writing[account] = now  # it is working with files: look at them
        # A folder moved out with no arrival here: it left the plugin's folders.
        for account, node in self.pending.values():
            account._drop(node)
            seen[account] = None
        self.pending.clear()
        for account in seen:
            account.settle()
        if self.writing:
            # A plugin that just opened or wrote a file is looked at within a millisecond:
            # what it writes in one call shows nowhere else until that call returns.
            self._look_within(NEAR_TICK)
        if overflow:
            log.warning("inotify queue overflowed: walking every plugin's folders again")
            for account in list(self.accounts.values()):
                account.rescan()

    def replay(self, account: Account) -> None:
        """Events kept for folders ``account``'s walk has just installed."""
        if not self.unknown:
            return
        kept: list[Event] = []
        for event in self.unknown:
            node = account.dirs.get(event.wd) if self.owners.get(event.wd) is account else None
            if node is not None:
                account.event(node, event)
            elif self.scans:
                kept.append(event)
        self.unknown = kept

    # -- holes -------------------------------------------------------------------------------

    def poll_soon(self, account: Account) -> None:
        self._polling.add(account)
        if self._poll is None and self._loop is not None:
            self._poll = self._loop.call_later(HOLE_TICK, self._poll_holes)

    def _poll_holes(self) -> None:
        self._poll = None
        for account in list(self._polling):
            if not account.poll_holes(HOLES_PER_TICK):
                self._polling.discard(account)
        if self._polling and self._loop is not None:
            self._poll = self._loop.call_later(HOLE_TICK, self._poll_holes)

    # -- open files ---------------------------------------------------------------------------

    def _look_within(self, delay: float) -> None:
        if self._loop is None:
            return
        when = self._loop.time() + delay
        if self._open_poll is not None:
            if self._open_poll.when() <= when:
                return
            self._open_poll.cancel()
        self._open_poll = self._loop.call_at(when, self._poll_open)

    def _poll_open(self) -> None:
        """Every OPEN_TICK while a plugin works with files: its open files, looked at while it
        had events or they grew lately; after that, while it still holds files open for
        writing, its write_bytes (one read per process), and its files again if that moved."""
        self._open_poll = None
        try:
            delay = self._look_at_open_files()
        except Exception:  # a bug here must not end the watch
            log.exception("looking at plugins' open files failed")
            self.writing.clear()
            return
        if self.writing:
            self._look_within(delay)

    def _look_at_open_files(self) -> float:
        """One round of _poll_open; how soon the next should be."""
        now = time.monotonic()
        delay = OPEN_TICK
        for account, last in list(self.writing.items()):
            if now - last <= ACTIVE_GRACE or account.looked < last:
                grew = account.poll_open()
            elif account.writers:
                written = openfiles.write_bytes(account.owner.disk_pids())
                if written is None:  # no I/O accounting here: look at its files, less often
                    grew = now - account.looked >= IDLE_TICK and account.poll_open()
                else:
                    grew = written != account.io and account.poll_open()
            else:
                del self.writing[account]
                continue
            if grew:
                self.writing[account] = now
                delay = min(delay, account.next_look())
        return delay

    def close(self) -> None:
        for account in list(self.accounts.values()):
            account.close()
        if self._poll is not None:
            self._poll.cancel()
            self._poll = None
        if self._open_poll is not None:
            self._open_poll.cancel()
            self._open_poll = None
        if self.inotify is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self.inotify.fd)
            self.inotify.close()
            self.inotify = None


def walked_instead(folders: Sequence[Path], watch: DiskWatch | None = None) -> str | None:
    """Why ``folders`` are walked now and then rather than accounted as they are written,
    or None, for ``deeting plugin info``: a running kernel's own verdict where it has one
    (``watch``), else what this machine and the folders as they are now say."""
    roots = tuple(os.path.realpath(folder) for folder in folders)
    if watch is not None:
        if watch.problem is not None:
            return f"no inotify here: {watch.problem}"
        account = watch.accounts.get(roots)
        if account is not None:
            return account.fallback
    try:
        Inotify().close()
    except OSError as exc:
        return f"no inotify here: {exc.strerror or exc}"
    return _too_many(roots)


def _too_many(roots: Sequence[str]) -> str | None:
    """What a tree of these folders would give up on (counting stops there)."""
    tops = [root for root in roots if os.path.isdir(root) and not os.path.islink(root)]
    folders, files = len(tops), 0
    for _path, info in usage.tree_entries(tops):
        if stat.S_ISDIR(info.st_mode):
            folders += 1
            if folders > disktree.MAX_DIRS:
                return f"more than {disktree.MAX_DIRS} folders"
        elif disktree.tracked(info):
            files += 1
            if files > disktree.MAX_FILES:
                return f"more than {disktree.MAX_FILES} files"
    return None


def _watch_budget() -> int:
    try:
        with open("/proc/sys/fs/inotify/max_user_watches", "rb") as f:
            allowed = int(f.read())
    except (OSError, ValueError):
        allowed = 8192  # the kernel's old default
    return max(allowed // WATCH_SHARE, 1)
