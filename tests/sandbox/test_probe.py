"""The capability probe reports what the kernel can enforce, and enforces nothing itself."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys

import pytest

from deeting_tui.sandbox import landlock, seccomp
from deeting_tui.sandbox.probe import Capabilities, describe, probe

on_linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def test_probe_is_cached() -> None:
    assert probe() is probe()


@on_linux
def test_probe_matches_the_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    caps = probe()
    assert caps.landlock_abi == landlock.abi_version()
    assert caps.seccomp == seccomp.available()
    assert caps.platform.startswith("linux-")
    if caps.landlock_abi == 0 or not caps.seccomp:
        pytest.skip(f"this kernel offers {caps.level!r}; the rest needs Landlock and seccomp")
    assert caps.landlock_abi >= 1
    assert caps.no_new_privs is True
    assert caps.level == f"enforced: landlock {caps.landlock_abi} + seccomp"
    assert re.fullmatch(r"enforced: landlock \d+ \+ seccomp", caps.level)


def test_probe_applies_nothing() -> None:
    code = (
        "import json, socket, subprocess\n"
        "from deeting_tui.sandbox.probe import probe\n"
        "caps = probe()\n"
        "socket.socket().close()\n"
        "with open('/proc/self/status') as f:\n"
        "    status = dict(l.split(':\\t', 1) for l in f.read().splitlines())\n"
        "rc = subprocess.run(['/bin/true']).returncode\n"
        "print(json.dumps({'nnp': status.get('NoNewPrivs'), 'seccomp': status.get('Seccomp'),"
        " 'rc': rc}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"nnp": "0", "seccomp": "0", "rc": 0}
    probe()
    socket.socket().close()  # and nothing happened to this process either


def test_levels() -> None:
    def caps(abi: int, has_seccomp: bool) -> Capabilities:
        return Capabilities("linux-x86_64", abi, has_seccomp, no_new_privs=True, root=False)

    assert caps(7, True).level == "enforced: landlock 7 + seccomp"
    assert caps(3, False).level == "partial: landlock 3 only (no seccomp)"
    assert caps(0, True).level == "partial: seccomp only (no landlock)"
    assert caps(0, False).level == "guard-rail only"
    mac = Capabilities("darwin-arm64", 0, False, no_new_privs=False, root=False)
    assert mac.level == "guard-rail only"


def test_as_json_round_trips() -> None:
    caps = Capabilities(
        "linux-x86_64", 7, True, no_new_privs=True, root=True, network_namespaces=True
    )
    data = json.loads(json.dumps(caps.as_json()))
    assert data == {
        "platform": "linux-x86_64",
        "landlock_abi": 7,
        "seccomp": True,
        "no_new_privs": True,
        "root": True,
        "network_namespaces": True,
        "user_namespaces": False,
        "level": "enforced: landlock 7 + seccomp",
    }


def test_describe() -> None:
    full = describe(Capabilities("linux-x86_64", 7, True, no_new_privs=True, root=True))
    assert "landlock: ABI 7 (filesystem, TCP ports, signal and abstract-socket scopes)" in full
    assert "seccomp: available" in full
    assert "running as root: yes — layers still apply (no_new_privs)" in full
    assert "sandbox: enforced: landlock 7 + seccomp" in full

    old = describe(Capabilities("linux-aarch64", 4, False, no_new_privs=True, root=False))
    assert "landlock: ABI 4 (filesystem and TCP ports)" in old
    assert "running as root: no" in old

    mac = describe(Capabilities("darwin-arm64", 0, False, no_new_privs=False, root=False))
    assert "sandbox: guard-rail only" in mac
    assert "landlock: not on this platform (darwin-arm64)" in mac


def test_importing_the_layers_stays_light() -> None:
    code = (
        "import sys\n"
        "import deeting_tui.sandbox.probe, deeting_tui.sandbox.landlock,"
        " deeting_tui.sandbox.seccomp\n"
        "print(','.join(m for m in ('ctypes', 'platform', 'asyncio') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


@on_linux
def test_namespace_availability_is_asked_without_entering_one() -> None:
    code = (
        "import os\n"
        "from deeting_tui.sandbox.probe import probe\n"
        "before = os.readlink('/proc/self/ns/net'), os.readlink('/proc/self/ns/user')\n"
        "caps = probe()\n"
        "after = os.readlink('/proc/self/ns/net'), os.readlink('/proc/self/ns/user')\n"
        "print(before == after, caps.network_namespaces, caps.user_namespaces)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    same, net, user = done.stdout.split()
    assert same == "True"  # probing forked a child; this process is where it was
    assert net in ("True", "False") and user in ("True", "False")
