"""Landlock confines files, TCP ports and IPC scopes, for the process and its children."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deeting_tui.sandbox import landlock

Child = Callable[..., dict[str, Any]]

ABI = landlock.abi_version()
needs_landlock = pytest.mark.skipif(ABI == 0, reason="Landlock is not available on this kernel")
needs_net = pytest.mark.skipif(ABI < 4, reason="Landlock TCP rules need ABI 4")
needs_scopes = pytest.mark.skipif(ABI < 6, reason="Landlock scopes need ABI 6")

# Enough of the system for /bin/cat to start: binaries, shared libraries, the loader cache.
SYSTEM = ("/usr", "/bin", "/lib", "/lib64", "/etc")

APPLY = "results['abi'] = landlock.apply(landlock.LandlockRules(**params['rules']))\n"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name in ("readable", "writable", "outside"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "file.txt").write_text(name)
    return tmp_path


def test_structs_match_the_kernel_layouts() -> None:
    assert landlock._PATH_BENEATH_ATTR.size == 12  # packed
    assert landlock._NET_PORT_ATTR.size == 16
    assert [landlock._ruleset_attr_size(abi) for abi in (1, 3, 4, 5, 6, 7)] == [
        8,
        8,
        16,
        16,
        24,
        24,
    ]


def test_handled_rights_grow_with_the_abi() -> None:
    assert landlock.handled_fs_rights(0) == 0
    assert landlock.handled_fs_rights(1) == (1 << 13) - 1
    assert landlock.handled_fs_rights(2) == (1 << 14) - 1
    assert landlock.handled_fs_rights(4) == (1 << 15) - 1
    assert landlock.handled_fs_rights(7) == (1 << 16) - 1


def test_unsupported_platform_degrades(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(landlock, "_platform_supported", lambda: False)
    assert landlock.abi_version() == 0
    assert landlock.apply(landlock.LandlockRules(read=("/",))) == 0


@needs_net
def test_out_of_range_port_is_refused_before_anything_applies(child: Child) -> None:
    out = child(
        """
attempt("apply", lambda: landlock.apply(landlock.LandlockRules(tcp_connect_ports=(70000,))))
attempt("read", lambda: read(sys.executable))
"""
    )
    assert out == {"apply": "LandlockError", "read": "ok"}


@needs_landlock
def test_reads_only_beneath_read_paths(child: Child, tree: Path) -> None:
    out = child(
        APPLY
        + """
attempt("inside", lambda: read(params["inside"]))
attempt("outside", lambda: read(params["outside"]))
attempt("list_inside", lambda: len(os.listdir(params["inside_dir"])))
attempt("list_outside", lambda: os.listdir(params["outside_dir"]))
attempt("write_inside", lambda: write(params["inside"]))
""",
        rules={"read": [str(tree / "readable")]},
        inside=str(tree / "readable" / "file.txt"),
        outside=str(tree / "outside" / "file.txt"),
        inside_dir=str(tree / "readable"),
        outside_dir=str(tree / "outside"),
    )
    assert out["abi"] == ABI
    assert out["inside"] == "ok"
    assert out["list_inside"] == 1
    assert out["outside"] == "PermissionError"
    assert out["list_outside"] == "PermissionError"
    assert out["write_inside"] == "PermissionError"


@needs_landlock
def test_writes_only_beneath_write_paths(child: Child, tree: Path) -> None:
    out = child(
        APPLY
        + """
w, r = params["writable"], params["readable"]
attempt("create", lambda: write(w + "/new.txt"))
attempt("overwrite", lambda: write(w + "/file.txt"))
attempt("mkdir", lambda: os.mkdir(w + "/sub"))
attempt("rename", lambda: os.rename(w + "/new.txt", w + "/sub/moved.txt"))
attempt("unlink", lambda: os.unlink(w + "/file.txt"))
attempt("create_in_readable", lambda: write(r + "/new.txt"))
attempt("unlink_in_readable", lambda: os.unlink(r + "/file.txt"))
attempt("read_readable", lambda: read(r + "/file.txt"))
""",
        rules={"read": [str(tree / "readable")], "write": [str(tree / "writable")]},
        writable=str(tree / "writable"),
        readable=str(tree / "readable"),
    )
    for name in ("create", "overwrite", "mkdir", "rename", "unlink", "read_readable"):
        assert out[name] == "ok", name
    assert out["create_in_readable"] == "PermissionError"
    assert out["unlink_in_readable"] == "PermissionError"
    assert (tree / "writable" / "sub" / "moved.txt").exists()
    assert (tree / "readable" / "file.txt").exists()


@needs_landlock
def test_file_paths_and_devices(child: Child, tree: Path) -> None:
    single = tree / "outside" / "file.txt"
    (tree / "outside" / "sibling.txt").write_text("no")
    out = child(
        APPLY
        + """
attempt("single", lambda: read(params["single"]))
attempt("sibling", lambda: read(params["sibling"]))
attempt("write_single", lambda: write(params["single"]))
attempt("dev_null_write", lambda: write("/dev/null"))
attempt("dev_null_read", lambda: read("/dev/null"))
attempt("dev_zero", lambda: read("/dev/zero"))
""",
        rules={"read": [str(single)], "devices": ["/dev/null"]},
        single=str(single),
        sibling=str(tree / "outside" / "sibling.txt"),
    )
    assert out["single"] == "ok"
    assert out["sibling"] == "PermissionError"
    assert out["write_single"] == "PermissionError"
    assert out["dev_null_write"] == "ok"
    assert out["dev_null_read"] == "ok"
    assert out["dev_zero"] == "PermissionError"


@needs_landlock
def test_missing_paths_are_skipped(child: Child, tree: Path) -> None:
    out = child(
        APPLY + 'attempt("inside", lambda: read(params["inside"]))\n',
        rules={
            "read": [str(tree / "missing"), "/etc/passwd/not-a-dir", str(tree / "readable")],
            "write": [str(tree / "also-missing")],
            "devices": ["/dev/no-such-device"],
        },
        inside=str(tree / "readable" / "file.txt"),
    )
    assert out["abi"] == ABI
    assert out["inside"] == "ok"


@pytest.fixture
def listeners() -> Iterator[tuple[int, int]]:
    """Two loopback TCP listeners: (allowed port, refused port)."""
    sockets = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        sockets.append(s)
    try:
        yield sockets[0].getsockname()[1], sockets[1].getsockname()[1]
    finally:
        for s in sockets:
            s.close()


CONNECT = """
def connect(port):
    # Not create_connection: its getaddrinfo lazily imports encodings.idna, which the sandbox
    # (rightly) cannot read.
    with socket.socket() as s:
        s.connect(("127.0.0.1", port))

def bind():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
"""


@needs_net
def test_tcp_connect_only_to_granted_ports(child: Child, listeners: tuple[int, int]) -> None:
    allowed, refused = listeners
    out = child(
        CONNECT
        + APPLY
        + """
attempt("allowed", lambda: connect(params["allowed"]))
attempt("refused", lambda: connect(params["refused"]))
attempt("bind", bind)
attempt("unix", lambda: socket.socketpair()[0].close())
""",
        rules={"tcp_connect_ports": [allowed], "tcp_bind_ports": []},
        allowed=allowed,
        refused=refused,
    )
    assert out["allowed"] == "ok"
    assert out["refused"] == "PermissionError"
    assert out["bind"] == "PermissionError"
    assert out["unix"] == "ok"


@needs_net
def test_tcp_unrestricted_when_ports_are_none(child: Child, listeners: tuple[int, int]) -> None:
    out = child(
        CONNECT
        + APPLY
        + """
attempt("connect", lambda: connect(params["port"]))
attempt("bind", bind)
""",
        rules={"read": ["/nonexistent"]},
        port=listeners[1],
    )
    assert out == {"abi": ABI, "connect": "ok", "bind": "ok"}


@needs_scopes
def test_signal_scope_blocks_signalling_outside(child: Child) -> None:
    script = (
        APPLY
        + """
attempt("parent", lambda: os.kill(os.getppid(), 0))
attempt("self", lambda: os.kill(os.getpid(), 0))
"""
    )
    scoped = child(script, rules={"scope_signals": True})
    assert scoped["parent"] == "PermissionError"
    assert scoped["self"] == "ok"
    unscoped = child(script, rules={"scope_signals": False})
    assert unscoped["parent"] == "ok"


@needs_scopes
def test_abstract_unix_scope_blocks_outside_listeners(child: Child) -> None:
    name = f"\0deeting-landlock-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(name)
        server.listen(4)
        script = (
            APPLY
            + """
def connect():
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(params["name"])

attempt("connect", connect)
"""
        )
        scoped = child(script, rules={"scope_abstract_unix": True}, name=name)
        unscoped = child(script, rules={"scope_abstract_unix": False}, name=name)
    assert scoped["connect"] == "PermissionError"
    assert unscoped["connect"] == "ok"


@needs_landlock
def test_children_inherit_the_sandbox(child: Child, tree: Path) -> None:
    out = child(
        APPLY
        + """
def cat(path):
    return subprocess.run(["/bin/cat", path], capture_output=True, text=True).returncode

attempt("inside", lambda: cat(params["inside"]))
attempt("outside", lambda: cat(params["outside"]))
""",
        rules={"read_exec": list(SYSTEM), "read": [str(tree / "readable")]},
        inside=str(tree / "readable" / "file.txt"),
        outside=str(tree / "outside" / "file.txt"),
    )
    assert out["inside"] == 0
    assert out["outside"] != 0


@needs_landlock
def test_exec_needs_an_exec_right(child: Child) -> None:
    out = child(
        APPLY + 'attempt("run", lambda: subprocess.run(["/bin/true"]).returncode)\n',
        rules={"read": list(SYSTEM)},
    )
    assert out["run"] == "PermissionError"
