"""One plugin's folders, accounted as they change (see diskwatch.py for the whole picture).

An Account applies inotify events to the plugin's tree (disktree.py), lstat()s the entries
they name, keeps the running total, and tells its Owner (the watchdog's Box) the moment the
total passes the quota. It also looks, when DiskWatch asks, at what events cannot tell:
the files the plugin's processes hold open for writing, and files with holes. Walks of the
folders run in a thread and are installed here. What looking at one entry does to the
total is the Tally's (disktally.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from . import disktree, openfiles
from .disktally import Owner, Tally
from .disktree import Builder, Dir, GiveUp, Snapshot, blocks, holes
from .inotify import (
    IN_CREATE,
    IN_DELETE,
    IN_DELETE_SELF,
    IN_IGNORED,
    IN_ISDIR,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_OPEN,
    Event,
)

log = logging.getLogger("deeting.diskwatch")

OPEN_TICK = 0.01  # seconds between looks at the files a writing plugin holds open ...
NEAR_TICK = 0.001  # ... down to this often as its writes near its quota


class Watch(Protocol):
    """What an account needs of the kernel's one inotify instance (diskwatch.DiskWatch),
    shared by every plugin's account."""

    owners: dict[int, Account]  # watch descriptor → account
    pending: dict[int, tuple[Account, Dir]]  # moved-from folders, by cookie
    orphans: set[int]  # watches to remove once no walk is in flight
    writing: dict[Account, float]  # accounts whose open files are looked at
    scans: int  # walks in flight

    def add(self, path: str) -> int: ...
    def bind(self, wd: int, account: Account) -> None: ...
    def unbind(self, wd: int) -> None: ...
    def sweep(self) -> None: ...
    def dirs_allowed(self, account: Account) -> int: ...
    def replay(self, account: Account) -> None: ...
    def poll_soon(self, account: Account) -> None: ...
    def forget(self, account: Account) -> None: ...


class Account(Tally):
    """One plugin's folders, accounted live."""

    watch: Watch

    def __init__(self, watch: Watch, roots: tuple[str, ...], quota: int, owner: Owner):
        super().__init__(watch, roots, quota, owner)

    # -- events ------------------------------------------------------------------------------

    def event(self, node: Dir, event: Event) -> None:
        """Apply what changes the tree's shape now; note the entries to look at again."""
        mask, name = event.mask, event.name
        if self.scanning:
            self.dirty.add((node.wd, name))
        if mask & (IN_IGNORED | IN_DELETE_SELF):
            self._drop(node)
            return
        if not name:
            self.touched[(node, "")] = None
            return
        if not mask & IN_ISDIR:
            if not mask & ~IN_OPEN:
                return  # opened: nothing changed yet (diskwatch looks at its open files)
            self.touched[(node, name)] = None
            if mask & (IN_CREATE | IN_MOVED_TO):
                self.touched[(node, "")] = None  # a folder grows with its entries
            return
        if mask & IN_MOVED_FROM:
            child = node.dirs.pop(name, None)
            if child is not None:
                child.parent = None
                self.epoch += 1
                self.watch.pending[event.cookie] = (self, child)
        elif mask & IN_MOVED_TO:
            moved = self.watch.pending.pop(event.cookie, None)
            if moved is not None and moved[0] is self:
                self._attach(moved[1], node, name)
            else:
                if moved is not None:
                    moved[0]._drop(moved[1])
                self._adopt(node, name)
        elif mask & IN_CREATE:
            self._adopt(node, name)
        elif mask & IN_DELETE:
            child = node.dirs.pop(name, None)
            if child is not None:
                self._drop(child)
        elif name in node.dirs:
            self.touched[(node.dirs[name], "")] = None
        if mask & (IN_CREATE | IN_MOVED_TO):
            self.touched[(node, "")] = None

    def settle(self) -> None:
        """Look again at every entry the last events named; then judge the total."""
        if not self.live:
            return
        touched, self.touched = self.touched, {}
        try:
            for node, name in touched:
                if self.dirs.get(node.wd) is node:
                    self._refresh(node, name)
        except GiveUp as exc:
            self.give_up(str(exc))
            return
        self.check()

    def check(self) -> None:
        if self.over or not self.live or not self.installed:
            return
        if self.total > self.quota:
            self.over = True
            self.owner.disk_over(self.total)
        elif self.hole_queue and self.total + self.holes > self.quota:
            self.watch.poll_soon(self)

    def poll_holes(self, count: int) -> bool:
        """Look again at up to ``count`` files with holes; True while they are still a risk."""
        for _ in range(min(count, len(self.hole_queue))):
            key = self.hole_queue.popleft()
            inode = self.inodes.get(key)
            if inode is None or not inode.holes or inode.where is None:
                self.holed.discard(key)
                continue
            self.hole_queue.append(key)
            node, name = inode.where
            if self.dirs.get(node.wd) is node:
                self.touched[(node, name)] = None
        self.settle()
        return self.live and not self.over and self.total + self.holes > self.quota

    def poll_open(self) -> bool:
        """Look at the files its processes hold open for writing (openfiles.py): blocks a
        write in flight has added, and files with no name here. True if anything grew."""
        if not self.live or self.over:
            return False
        now = time.monotonic()
        before, since = self.total, now - self.looked
        self.looked = now
        pids = self.owner.disk_pids()
        found = openfiles.writable_files(pids, self.roots)
        self.io = openfiles.write_bytes(pids)
        grew = False
        for key, info in found.items():
            charge = blocks(info)
            inode = self.inodes.get(key)
            if inode is not None:
                grew = grew or charge > inode.charge
                self.total += charge - inode.charge
                self.holes += holes(info) - inode.holes
                inode.charge, inode.holes = charge, holes(info)
            else:
                held = self.unnamed.get(key, 0)
                grew = grew or charge > held
                self.total += charge - held
                self.unnamed[key] = charge
        for key in [key for key in self.unnamed if key not in found]:
            self.total -= self.unnamed.pop(key)  # closed: freed, or it has a name by now
        self.writers = bool(found)
        if not grew:
            self.rate = 0.0
        elif 0 < since < 1:
            self.rate = (self.total - before) / since
        else:
            self.rate = float("inf")  # growing, and no measure of how fast yet: look soon
        self.check()
        return grew

    def next_look(self) -> float:
        """How soon to look at its open files again: sooner as its writes near the quota,
        so that what it adds between two looks stays small."""
        if self.rate <= 0:
            return OPEN_TICK
        left = max(self.quota - self.total, 0)
        return min(max(left / self.rate / 4, NEAR_TICK), OPEN_TICK)

    def _adopt(self, parent: Dir, name: str) -> None:
        """A folder appeared in ``parent``: watch it and list it (a walk, if it is large)."""
        base = parent.path(self.epoch)
        if base is None or not self.live:
            return
        self._forget(parent, name)
        builder = Builder(
            self.watch.add,
            self.inodes,
            self.dirs,
            files=self.files,
            max_dirs=self.watch.dirs_allowed(self),
            budget=disktree.INLINE_ENTRIES,
        )
        try:
            builder.folder(parent, name, f"{base}/{name}")
        except (GiveUp, OSError) as exc:
            self._absorb(builder)
            self.give_up(str(exc) if isinstance(exc, GiveUp) else (exc.strerror or str(exc)))
            return
        self._absorb(builder)
        if builder.over_budget:
            self.rescan()

    def _absorb(self, builder: Builder) -> None:
        self.files = builder.files
        self.total += builder.total
        self.holes += builder.holes
        self._holed(builder.holed)
        for key in [key for key in self.unnamed if key in self.inodes]:
            self._named(key)
        for node in builder.new:
            self.watch.bind(node.wd, self)
        if builder.moved:
            self.epoch += 1

    # -- walks -------------------------------------------------------------------------------

    def rescan(self) -> None:
        """Walk the folders again, in a thread, and take the result as the truth."""
        if not self.live:
            return
        if self.scanning:
            self.scan_again = True
            return
        self.scanning = True
        self.dirty = set()
        self.watch.scans += 1
        loop = asyncio.get_running_loop()
        allowed = self.watch.dirs_allowed(self)
        future = loop.run_in_executor(None, disktree.scan, self.roots, self.watch.add, allowed)
        future.add_done_callback(self._scanned)

    def _scanned(self, future: asyncio.Future[Snapshot]) -> None:
        self.scanning = False
        self.watch.scans -= 1
        try:
            self._take(future)
        finally:
            self.watch.sweep()
            if not self.scanning:
                waiters, self._waiters = self._waiters, []
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)

    def _take(self, future: asyncio.Future[Snapshot]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            if self.live:  # a bug in the walk: say so, and let the watchdog walk instead
                log.error("walking %s failed: %s", self.roots[0], error)
                self.give_up(f"walking its folders failed: {error}")
            return
        snapshot = future.result()
        if not self.live or snapshot.gave_up:
            self.watch.orphans.update(wd for wd in snapshot.dirs if wd not in self.watch.owners)
            if snapshot.gave_up:
                self.give_up(snapshot.gave_up)
            return
        self._install(snapshot)
        if self.scan_again and self.live:
            self.scan_again = False
            self.rescan()

    async def walked(self) -> None:
        """Until no walk of its folders is in flight (its result installed)."""
        while self.scanning and self.live:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def _install(self, snapshot: Snapshot) -> None:
        old = self.dirs
        self.dirs, self.inodes, self.files = snapshot.dirs, snapshot.inodes, snapshot.files
        self.total = sum(d.charge for d in self.dirs.values())
        self.total += sum(i.charge for i in self.inodes.values())
        self.unnamed = {k: c for k, c in self.unnamed.items() if k not in self.inodes}
        self.total += sum(self.unnamed.values())
        self.holes = sum(i.holes for i in self.inodes.values())
        self.hole_queue.clear()
        self.holed.clear()
        self._holed([key for key, inode in self.inodes.items() if inode.holes])
        self.epoch += 1
        self.installed = True
        self.scans += 1
        for wd in self.dirs:
            self.watch.bind(wd, self)
        # What changed while the walk ran may have been missed by it: look again.
        for wd, name in self.dirty:
            node = self.dirs.get(wd)
            if node is not None:
                self.touched[(node, name)] = None
        self.dirty = set()
        self.watch.replay(self)
        self.settle()
        for wd in old:
            if wd not in self.dirs and self.watch.owners.get(wd) is self:
                self.watch.unbind(wd)

    # -- the end -----------------------------------------------------------------------------

    def give_up(self, reason: str) -> None:
        """Stop accounting live; the owner walks the folders from now on."""
        if not self.live:
            return
        self._release()
        self.fallback = reason
        self.owner.disk_fallback(reason)

    def close(self) -> None:
        self.closed = True
        self._release()
        self.watch.forget(self)

    def _release(self) -> None:
        self.live = False
        for wd in self.dirs:
            if self.watch.owners.get(wd) is self:
                self.watch.unbind(wd)
        self.dirs, self.inodes, self.touched = {}, {}, {}
        self.unnamed = {}
        self.hole_queue.clear()
        self.holed.clear()
        self.watch.writing.pop(self, None)
