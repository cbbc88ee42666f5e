"""Raw Linux syscalls through libc, for the layers the standard library has no call for
(Landlock, seccomp, prctl). ctypes is imported on first use: the worker pays for it only
when a layer is applied."""

from __future__ import annotations

from typing import Any


def libc() -> Any:
    import ctypes

    handle = ctypes.CDLL(None, use_errno=True)
    handle.syscall.restype = ctypes.c_long
    return handle


def syscall(handle: Any, number: int, *args: Any) -> tuple[int, int]:
    """Returns (result, errno); errno is only meaningful when the result is -1."""
    import ctypes

    ctypes.set_errno(0)
    result = int(handle.syscall(ctypes.c_long(number), *args))
    return result, ctypes.get_errno()
