"""inotify(7) through ctypes: the standard library has no binding.

Three calls (``inotify_init1``, ``inotify_add_watch``, ``inotify_rm_watch``) and a parser for
the ``struct inotify_event`` records ``read`` returns. ctypes is imported on first use, so a
kernel that never watches a folder (and headless start-up) does not pay for it.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Iterator
from typing import Any, NamedTuple

# <sys/inotify.h>
IN_ACCESS = 0x00000001
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_CLOSE_NOWRITE = 0x00000010
IN_OPEN = 0x00000020
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000

IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len


class Event(NamedTuple):
    wd: int  # -1 for IN_Q_OVERFLOW
    mask: int
    cookie: int  # pairs an IN_MOVED_FROM with its IN_MOVED_TO
    name: str  # the entry's name within the watched folder; "" for the folder itself


class InotifyError(OSError):
    """inotify could not be used here (ENOSYS, EMFILE: max_user_instances, ENOSPC:
    max_user_watches, ...); ``str()`` says which, in words."""


def parse(data: bytes) -> Iterator[Event]:
    """The events in one ``read``'s bytes. Names are NUL-padded; bytes that are not UTF-8
    come back as surrogate escapes, like ``os.fsdecode``, so they round-trip to a path."""
    offset, end = 0, len(data)
    while offset + _HEADER.size <= end:
        wd, mask, cookie, length = _HEADER.unpack_from(data, offset)
        offset += _HEADER.size
        raw = data[offset : offset + length]
        offset += length
        name = os.fsdecode(raw.split(b"\0", 1)[0]) if length else ""
        yield Event(wd, mask, cookie, name)


class Inotify:
    """One inotify instance: a non-blocking, close-on-exec file descriptor."""

    def __init__(self) -> None:
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            self._init1 = libc.inotify_init1
            self._add = libc.inotify_add_watch
            self._rm = libc.inotify_rm_watch
        except (OSError, AttributeError) as exc:
            raise InotifyError(errno.ENOSYS, f"inotify: not in this C library ({exc})") from exc
        self._add.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
        self._rm.argtypes = (ctypes.c_int, ctypes.c_int)
        self._ctypes: Any = ctypes
        fd = self._init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise _error("inotify_init1", ctypes.get_errno())
        self.fd: int = fd

    def add_watch(self, path: str, mask: int) -> int:
        """The watch descriptor for ``path`` (the same one again for a folder already
        watched: watches belong to inodes). Raises OSError (ENOSPC: out of watches)."""
        wd = int(self._add(self.fd, os.fsencode(path), mask))
        if wd < 0:
            err = self._ctypes.get_errno()
            raise _error(f"inotify_add_watch {path}", err)
        return wd

    def rm_watch(self, wd: int) -> None:
        """Stop watching; harmless for a watch the kernel already dropped (EINVAL)."""
        self._rm(self.fd, wd)

    def read(self, size: int = 65536) -> list[Event]:
        """The events queued now (none when there are none: the descriptor never blocks)."""
        try:
            data = os.read(self.fd, size)
        except BlockingIOError:
            return []
        return list(parse(data))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


_LIMITS = {
    errno.EMFILE: "the user's inotify instances are used up (fs.inotify.max_user_instances)",
    errno.ENFILE: "the system's open files are used up",
    errno.ENOSPC: "the user's inotify watches are used up (fs.inotify.max_user_watches)",
    errno.ENOSYS: "the kernel has no inotify",
    errno.ENOMEM: "out of kernel memory",
}


def _error(what: str, err: int) -> OSError:
    words = _LIMITS.get(err) or os.strerror(err)
    error_class = InotifyError if err in _LIMITS else OSError
    return error_class(err, f"{what}: {words}")
