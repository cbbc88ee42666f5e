"""One plugin's folders as the kernel accounts them: a tree of watched folders, a size per
file, and the running total that its disk quota (``limits.disk_mb``) is held to.

What a file costs is ``st_blocks * 512``: the space really allocated to it, as ``du`` counts
and as the walk in usage.folder_usage counts, so that the two always agree (``deeting plugin
enable`` asks the walk). Its apparent size would be wrong both ways: a sparse file's holes
take no disk, and blocks preallocated past the end (``fallocate`` with KEEP_SIZE) do. So:

* sparse files count their allocated blocks only. Their holes can be filled without an
  event by writing through a shared mapping, so the tree also keeps the holes' sum; while
  the total plus the holes could pass the quota, files with holes are re-read every few
  milliseconds (diskwatch.py), so what is filled that way is seen almost at once too;
* a hard-linked file counts once, however many of its names are in the folders (sizes are
  kept per inode, with the number of names the folders hold for it);
* symbolic links count their own blocks and are never followed: every stat is an lstat or
  relative to a folder opened with O_NOFOLLOW, and a folder is watched only after checking,
  through /proc/self/fd, that the folder opened is the very path expected — so a link, or a
  folder swapped for one mid-walk, never makes the kernel watch or count anything outside;
* folders below the roots count their own blocks (a folder with many entries grows); the
  roots themselves (data, cache, temp) do not, as in the walk: a plugin may fill its quota
  to the byte with one file, which RLIMIT_FSIZE lets it write.

Files are keyed by (folder, name), not by path: renaming a folder moves one node, and costs
nothing per file below it. Paths are built from the nodes (and cached) only to lstat one file.
Past MAX_DIRS folders or MAX_FILES files the tree gives up (its owner falls back to walking
the folders): the kernel's memory and the user's inotify watches stay bounded whatever a
plugin creates. Files that hold no block are not kept (they cost nothing), so MAX_FILES
takes at least 256 MiB of files on a filesystem of 4 KiB blocks.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import inotify as ino

MASK = (
    ino.IN_OPEN
    | ino.IN_MODIFY
    | ino.IN_CLOSE_WRITE
    | ino.IN_ATTRIB
    | ino.IN_CREATE
    | ino.IN_DELETE
    | ino.IN_DELETE_SELF
    | ino.IN_MOVED_FROM
    | ino.IN_MOVED_TO
    | ino.IN_ONLYDIR
)
MAX_DIRS = 4096  # watched folders per plugin
MAX_FILES = 65536  # files (names) tracked per plugin: ~150 bytes each in the kernel
INLINE_ENTRIES = 256  # a folder that appears is listed at once up to this many entries

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

Key = tuple[int, int]  # (st_dev, st_ino)


class GiveUp(Exception):
    """The tree cannot go on accounting these folders live; the message says why."""


class Dir:
    """A watched folder: its watch descriptor, where it hangs, what it holds."""

    __slots__ = ("_epoch", "_path", "charge", "dirs", "files", "name", "parent", "root", "wd")

    def __init__(self, wd: int, parent: Dir | None, name: str, *, root: bool = False) -> None:
        self.wd = wd
        self.parent = parent
        self.name = name  # a root's name is its full path
        self.root = root
        self.dirs: dict[str, Dir] = {}
        self.files: dict[str, Key] = {}
        self.charge = 0  # the folder's own blocks
        self._path = name if root else ""
        self._epoch = -1

    def path(self, epoch: int) -> str | None:
        """Its path now, or None once it hangs from no root (moved out, being dropped).
        Cached per node; ``epoch`` changes whenever any folder of the tree moves."""
        chain: list[Dir] = []
        node = self
        while not node.root and node._epoch != epoch:
            chain.append(node)
            if node.parent is None:
                return None
            node = node.parent
        base = node._path
        for below in reversed(chain):
            base = f"{base}/{below.name}"
            below._path, below._epoch = base, epoch
        return base

    def walk(self) -> list[Dir]:
        """This folder and every folder below it."""
        found, stack = [], [self]
        while stack:
            node = stack.pop()
            found.append(node)
            stack.extend(node.dirs.values())
        return found


@dataclass
class Inode:
    charge: int = 0  # st_blocks * 512
    holes: int = 0  # st_size beyond what is allocated (0 for all but sparse files)
    links: int = 0  # names in the tree
    where: tuple[Dir, str] | None = None  # one of its names, to look at it again


@dataclass
class Snapshot:
    """A tree built by a walk (in a thread), for the event loop to install."""

    roots: list[Dir] = field(default_factory=list)
    dirs: dict[int, Dir] = field(default_factory=dict)
    inodes: dict[Key, Inode] = field(default_factory=dict)
    files: int = 0
    gave_up: str | None = None


def tracked(info: os.stat_result) -> bool:
    """Whether a name needs a place in the tree: an empty file with no other name costs
    nothing, and leaving it out keeps a plugin from filling the tree with them for free. A
    file with more names is tracked, so that its blocks are dropped only with its last
    name here (link() tells its first name so, with IN_ATTRIB)."""
    return info.st_blocks > 0 or holes(info) > 0 or info.st_nlink > 1


def blocks(info: os.stat_result) -> int:
    return max(info.st_blocks * 512, 0)


def holes(info: os.stat_result) -> int:
    return max(info.st_size - blocks(info), 0) if stat.S_ISREG(info.st_mode) else 0


def open_dir(path: str) -> int:
    """A descriptor for the folder at ``path``, which must be exactly that folder: no
    symbolic link anywhere along the way. OSError otherwise (ELOOP, ENOTDIR, EXDEV)."""
    fd = os.open(path, _OPEN_DIR)
    try:
        if os.readlink(f"/proc/self/fd/{fd}") != path:
            raise OSError(18, f"{path} resolves elsewhere")  # EXDEV: moved, or a link on the way
    except BaseException:
        os.close(fd)
        raise
    return fd


def attach(node: Dir, parent: Dir, name: str) -> None:
    """Hang ``node`` (and all below it) in ``parent`` as ``name``, wherever it was."""
    before = node.parent
    if before is not None and before.dirs.get(node.name) is node:
        del before.dirs[node.name]
    node.parent, node.name = parent, name
    parent.dirs[name] = node


def watch_fd(add: Callable[[str], int], fd: int) -> int:
    """Watch the folder open as ``fd`` — that inode, not whatever its path names now."""
    return add(f"/proc/self/fd/{fd}")


class Builder:
    """Adds folders and files to a tree: a whole walk (Snapshot) or one folder that
    appeared. ``add`` watches a folder; it raises GiveUp when no more watches may be used."""

    def __init__(
        self,
        add: Callable[[str], int],
        inodes: dict[Key, Inode],
        dirs: dict[int, Dir],
        *,
        files: int = 0,
        max_dirs: int | None = None,
        budget: int | None = None,
    ) -> None:
        self.add = add
        self.inodes = inodes
        self.dirs = dirs
        self.files = files
        self.max_dirs = MAX_DIRS if max_dirs is None else max_dirs
        self.max_files = MAX_FILES
        self.budget = budget  # entries this build may list; None: all
        self.total = 0  # bytes added
        self.holes = 0
        self.over_budget = False
        self.moved = False  # a folder already in the tree was found in a new place
        self.new: list[Dir] = []
        self.holed: list[Key] = []

    def folder(self, parent: Dir | None, name: str, path: str) -> Dir | None:
        """Watch and list the folder at ``path`` and everything below it. None when it is
        gone or is not (exactly) a folder; a folder already watched is returned as it is."""
        queue: list[tuple[Dir | None, str, str]] = [(parent, name, path)]
        top: Dir | None = None
        while queue:
            up, entry_name, where = queue.pop()
            node = self._one(up, entry_name, where, queue)
            if top is None:
                top = node
                if node is None:
                    return None
        return top

    def _one(
        self, parent: Dir | None, name: str, path: str, queue: list[tuple[Dir | None, str, str]]
    ) -> Dir | None:
        try:
            fd = open_dir(path)
        except OSError:
            return None
        try:
            wd = watch_fd(self.add, fd)
            known = self.dirs.get(wd)
            if known is not None:  # watched already: a folder of this tree, moved here
                if parent is not None and (known.parent is not parent or known.name != name):
                    attach(known, parent, name)
                    self.moved = True
                return known
            if len(self.dirs) >= self.max_dirs:
                raise GiveUp(
                    f"more than {MAX_DIRS} folders"
                    if self.max_dirs >= MAX_DIRS
                    else "the kernel's share of the user's inotify watches is used up"
                )
            node = Dir(wd, parent, name, root=parent is None)
            node.charge = 0 if node.root else blocks(os.fstat(fd))
            self.total += node.charge
            self.dirs[wd] = node
            self.new.append(node)
            if parent is not None:
                parent.dirs[name] = node
            with os.scandir(fd) as entries:
                for entry in entries:
                    if self.budget is not None:
                        self.budget -= 1
                        if self.budget < 0:
                            self.over_budget = True
                            return node
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if stat.S_ISDIR(info.st_mode):
                        queue.append((node, entry.name, f"{path}/{entry.name}"))
                    else:
                        self.file(node, entry.name, info)
            return node
        finally:
            os.close(fd)

    def file(self, node: Dir, name: str, info: os.stat_result) -> None:
        """A name in ``node`` for the file ``info`` describes (new to this tree)."""
        if not tracked(info):
            return
        if self.files >= self.max_files:
            raise GiveUp(f"more than {self.max_files} files")
        key = (info.st_dev, info.st_ino)
        node.files[name] = key
        self.files += 1
        inode = self.inodes.get(key)
        if inode is None:
            inode = self.inodes[key] = Inode(blocks(info), holes(info), 0, (node, name))
            self.total += inode.charge
            self.holes += inode.holes
            if inode.holes:
                self.holed.append(key)
        inode.links += 1


def scan(roots: Sequence[str], add: Callable[[str], int], max_dirs: int) -> Snapshot:
    """Walk and watch ``roots`` (absolute real paths) from scratch. Missing roots hold
    nothing. Runs in a thread: it touches nothing but the new snapshot (and inotify)."""
    snapshot = Snapshot()
    builder = Builder(add, snapshot.inodes, snapshot.dirs, max_dirs=max_dirs)
    try:
        for root in roots:
            node = builder.folder(None, root, root)
            if node is not None:
                snapshot.roots.append(node)
    except GiveUp as exc:
        snapshot.gave_up = str(exc)
    except OSError as exc:  # out of inotify watches (ENOSPC) and the like
        snapshot.gave_up = exc.strerror or str(exc)
    snapshot.files = builder.files
    return snapshot
