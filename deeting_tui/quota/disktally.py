"""One plugin's tree and its running total, kept in step entry by entry.

The Account (diskaccount.py) decides *when* to look at an entry (an inotify event named it,
a walk missed it); this is what looking does: lstat the entry, charge its blocks once per
inode however many names it has, give them back when its last name goes, and drop a whole
folder that left the tree. The bookkeeping is apart from the events so each can be read and
checked alone.
"""

from __future__ import annotations

import asyncio
import os
import stat
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Sequence
from typing import Protocol

from . import disktree
from .disktree import Dir, GiveUp, Inode, Key, blocks, holes


class Unbinds(Protocol):
    """What the tally needs of the kernel's shared watch (diskwatch.DiskWatch)."""

    def unbind(self, wd: int) -> None:
        """No folder of this tally has watch ``wd`` any more."""


class Owner(Protocol):
    """Who answers for one plugin's folders (box.Box)."""

    def disk_over(self, used: int) -> None:
        """Its folders hold ``used`` bytes, over its quota: stop it."""

    def disk_fallback(self, reason: str) -> None:
        """Events can no longer account its folders (``reason``): walk them instead."""

    def disk_pids(self) -> list[int]:
        """The plugin's processes now (whose open files are looked at)."""
        return []


class Tally(ABC):
    """One plugin's folders as counted: the tree, its inodes and the running total."""

    def __init__(self, watch: Unbinds, roots: tuple[str, ...], quota: int, owner: Owner):
        self.watch = watch
        self.roots = roots
        self.quota = quota
        self.owner = owner
        self.dirs: dict[int, Dir] = {}
        self.inodes: dict[Key, Inode] = {}
        self.files = 0
        self.total = 0  # bytes
        self.holes = 0  # bytes sparse files could still take without a write
        self.hole_queue: deque[Key] = deque()  # files with holes, each once, round robin
        self.holed: set[Key] = set()
        self.epoch = 0
        self.live = True  # False once it gave up (fallback) or was closed
        self.closed = False
        self.over = False
        self.installed = False  # its first walk is in
        self.scanning = False
        self.scan_again = False
        self.scans = 0  # walks done, the first included
        self.fallback: str | None = None
        self.unnamed: dict[Key, int] = {}  # open for writing, with no name here: charges
        self.writers = False  # its processes held files open for writing, at the last look
        self.io: int | None = None  # their write_bytes then
        self.looked = float("-inf")  # when, by time.monotonic()
        self.rate = 0.0  # bytes a second its open files grew by, between the last two looks
        self.dirty: set[tuple[int, str]] = set()
        self.touched: dict[tuple[Dir, str], None] = {}  # entries to lstat again, in order
        self._waiters: list[asyncio.Future[None]] = []

    def _holed(self, keys: Sequence[Key]) -> None:
        for key in keys:
            if key not in self.holed:
                self.holed.add(key)
                self.hole_queue.append(key)

    def _named(self, key: Key) -> None:
        """``key`` has a name in the tree now: no longer counted as nameless."""
        self.total -= self.unnamed.pop(key, 0)

    # -- the tree ----------------------------------------------------------------------------

    def _refresh(self, node: Dir, name: str) -> None:
        base = node.path(self.epoch)
        if base is None:
            return
        if not name:  # the folder itself (roots are not counted, as in the walk)
            if node.root:
                return
            try:
                charge = blocks(os.lstat(base))
            except OSError:
                return
            self.total += charge - node.charge
            node.charge = charge
            return
        try:
            info = os.lstat(f"{base}/{name}")
        except OSError:
            self._forget(node, name)
            child = node.dirs.pop(name, None)
            if child is not None:
                self._drop(child)
            return  # gone (if still open, it is counted among its open files)
        if stat.S_ISDIR(info.st_mode):
            self._forget(node, name)
            if name not in node.dirs:
                self._adopt(node, name)
            return
        child = node.dirs.pop(name, None)
        if child is not None:  # a folder whose removal we did not see
            self._drop(child)
        if not disktree.tracked(info):
            self._forget(node, name)
            return
        key = (info.st_dev, info.st_ino)
        if node.files.get(name) != key:
            self._forget(node, name)
            if self.files >= disktree.MAX_FILES:
                raise GiveUp(f"more than {disktree.MAX_FILES} files")
            node.files[name] = key
            self.files += 1
            inode = self.inodes.get(key)
            if inode is None:
                inode = self.inodes[key] = Inode()
                self._named(key)
            inode.links += 1
        inode = self.inodes[key]
        charge, hole = blocks(info), holes(info)
        self.total += charge - inode.charge
        self.holes += hole - inode.holes
        if hole:
            self._holed([key])
        inode.charge, inode.holes, inode.where = charge, hole, (node, name)

    def _forget(self, node: Dir, name: str) -> None:
        key = node.files.pop(name, None)
        if key is None:
            return
        self.files -= 1
        inode = self.inodes.get(key)
        if inode is None:
            return
        inode.links -= 1
        if inode.where == (node, name):
            inode.where = None
        if inode.links <= 0:
            del self.inodes[key]
            self.total -= inode.charge
            self.holes -= inode.holes

    def _drop(self, node: Dir) -> None:
        """``node`` and everything below it left the tree (deleted, moved out, unwatched)."""
        parent = node.parent
        if parent is not None and parent.dirs.get(node.name) is node:
            del parent.dirs[node.name]
        node.parent = None
        node.root = False
        for below in node.walk():
            for name in list(below.files):
                self._forget(below, name)
            if self.dirs.get(below.wd) is below:
                del self.dirs[below.wd]
                self.total -= below.charge
                self.watch.unbind(below.wd)
        self.epoch += 1

    def _attach(self, node: Dir, parent: Dir, name: str) -> None:
        existing = parent.dirs.get(name)
        if existing is not None and existing is not node:
            self._drop(existing)
        self._forget(parent, name)
        disktree.attach(node, parent, name)
        self.epoch += 1

    @abstractmethod
    def _adopt(self, parent: Dir, name: str) -> None:
        """A folder appeared in ``parent``: watch it and list it (the Account)."""
