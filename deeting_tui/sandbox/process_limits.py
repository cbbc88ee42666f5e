"""The worker process's own limits, set before the sandbox and the plugin: rlimits, the
threads' address space, and death with its parent."""

from __future__ import annotations

import logging
import os
import resource
import signal
import sys

OPEN_FILES_LIMIT = 256
FILE_SIZE_LIMIT_MB = 512  # the default disk quota (kimai.json limits.disk_mb)
CPU_LIMIT_S = 6 * 3600
MIB = 1024 * 1024
THREAD_STACK_BYTES = 2 * MIB
M_ARENA_MAX = -8  # mallopt parameter (malloc.h)

log = logging.getLogger("deeting.worker")


def set_parent_death_signal(parent_pid: int, signum: int = signal.SIGKILL) -> None:
    """Die with the kernel even if it is SIGKILLed while this worker is stuck in plugin code.

    The pipe EOF only helps a worker that is reading; PR_SET_PDEATHSIG covers a busy one. The
    getppid check closes the race where the parent died before the prctl took effect. The
    forkserver asks for a signal it can catch instead, so it can kill its workers' process
    groups before it goes.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes  # lazy: only Linux needs it, and it costs start-up time elsewhere

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, int(signum), 0, 0, 0)
    if parent_pid and os.getppid() != parent_pid:
        if signum != signal.SIGKILL:
            os.kill(os.getpid(), signum)  # the parent is gone already: act as if told so
            return
        os._exit(0)


def set_rlimits(
    memory_mb: int,
    open_files: int = OPEN_FILES_LIMIT,
    file_size_mb: int = FILE_SIZE_LIMIT_MB,
    cpu_seconds: int = CPU_LIMIT_S,
    *,
    address_space: bool = True,
) -> None:
    """Soft = hard so plugin code cannot raise them back.

    Memory: RLIMIT_AS at ``memory_mb`` on top of the address space the worker already has,
    because it counts every mapping — shared anonymous memory and memfd mappings too, which
    RLIMIT_DATA does not see; RLIMIT_DATA (private data) stays as a second bound. So that
    threads still start under an address-space limit, glibc keeps one malloc arena (each
    extra one reserves 64 MiB) and thread stacks are THREAD_STACK_BYTES. Every process the
    plugin starts inherits these; the kernel bounds their sum (cgroup or watchdog).

    Without ``address_space`` (a worker whose MCP server is a Node program: V8 reserves
    gigabytes of untouched address space for each WebAssembly memory, which fetch's HTTP
    parser is, so any address-space limit a person would set breaks it), RLIMIT_DATA and the
    kernel's bound on the sum still hold memory: a reservation nothing writes counts in
    neither, memory used does.

    ``file_size_mb`` is the plugin's disk quota: no single file may outgrow it (EFBIG), the
    kernel's watchdog bounds the folders' total. RLIMIT_CPU counts the worker's whole life,
    so it is only a backstop against a runaway that somehow escapes the per-call deadlines.
    """

    def cap(which: int, value: int) -> None:
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))

    limit_threads_address_space()
    if address_space:
        cap(resource.RLIMIT_AS, memory_mb * MIB + address_space_in_use())
    cap(resource.RLIMIT_DATA, memory_mb * MIB)
    cap(resource.RLIMIT_NOFILE, open_files)
    cap(resource.RLIMIT_FSIZE, file_size_mb * MIB)
    cap(resource.RLIMIT_CPU, cpu_seconds)
    cap(resource.RLIMIT_CORE, 0)


def address_space_in_use() -> int:
    """Bytes of address space this process has mapped now (0 where /proc cannot say)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * resource.getpagesize()


def limit_threads_address_space() -> None:
    """One malloc arena and small thread stacks, so an address-space limit leaves room for
    threads: glibc reserves 64 MiB per extra arena and 8 MiB per default stack."""
    import threading

    threading.stack_size(THREAD_STACK_BYTES)
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mallopt(M_ARENA_MAX, 1)
        # Threads that C libraries start take the process default, not threading's size.
        attr = ctypes.create_string_buffer(128)  # pthread_attr_t is 56 bytes on x86-64
        if libc.pthread_attr_init(attr) == 0:
            libc.pthread_attr_setstacksize(attr, ctypes.c_size_t(THREAD_STACK_BYTES))
            libc.pthread_setattr_default_np(attr)
            libc.pthread_attr_destroy(attr)
    except (OSError, AttributeError):  # not glibc: its defaults are smaller anyway
        pass
