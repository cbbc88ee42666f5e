"""A host-limited worker's own network namespace: a loopback with the proxy's listener on it,
and nothing else — in a throwaway child, since entering a namespace cannot be undone."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import pytest

Child = Callable[..., dict[str, Any]]


def test_a_private_network_reaches_its_listener_and_nothing_outside(child: Child) -> None:
    outside = socket.socket()
    outside.bind(("127.0.0.1", 0))
    outside.listen()
    try:
        out = child(
            """
from deeting_tui.sandbox import namespaces
entered = namespaces.enter(private_network=True, tasks=None)
results["entered"] = entered.as_json()
if entered.listener is not None:
    fd, port = entered.listener
    def to_listener():
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    def to_outside():
        with socket.create_connection(("127.0.0.1", params["outside"]), timeout=5):
            pass
    def to_the_world():
        with socket.create_connection(("192.0.2.1", 80), timeout=5):
            pass
    attempt("listener", to_listener)
    attempt("outside", to_outside)
    attempt("world", to_the_world)
""",
            outside=outside.getsockname()[1],
        )
    finally:
        outside.close()
    entered = out["entered"]
    if not entered["net"]:
        pytest.skip(f"no network namespace here: {entered.get('notes')}")
    assert entered["user"] is (os.geteuid() != 0)
    assert out["listener"] == "ok"  # the proxy's listener, inside
    assert out["outside"] == "ConnectionRefusedError"  # the host's loopback is not this one
    assert out["world"] in ("OSError", "ConnectionRefusedError", "TimeoutError")  # no route


def test_a_user_namespace_bounds_tasks_for_the_unprivileged(child: Child) -> None:
    """Root is exempt from RLIMIT_NPROC (cgroups bound root's workers), so a root run drops
    to nobody first: this is the unprivileged worker's bound."""
    out = child(
        """
import ctypes, time  # before dropping: root's interpreter may not be readable by nobody
from deeting_tui.sandbox import namespaces
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: setuid made /proc/self root's
entered = namespaces.enter(private_network=False, tasks=8)
results["entered"] = entered.as_json()
started = 0
children = []
for _ in range(20):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    children.append(pid)
    started += 1
for pid in children:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
results["started"] = started
"""
    )
    if not out["entered"]["user"]:
        pytest.skip(f"no user namespace here: {out['entered'].get('notes')}")
    assert out["entered"]["tasks_limit"] == 8
    assert out["started"] == 7  # itself and seven more: eight tasks
