"""enforce(): the order, the level it reports, and what happens on machines without a layer
or when a layer fails. Each case runs in a throwaway child (a sandbox cannot be undone)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from deeting_tui.sandbox.probe import probe

SCRIPT = """
import json, os, socket, sys, threading
from deeting_tui.sandbox import enforce as enforce_module, probe as probe_module
from deeting_tui.sandbox.probe import Capabilities

params = json.loads(sys.argv[1])
real = probe_module.probe()
if params.get("layers") == "none":  # a machine without Landlock and seccomp (e.g. macOS)
    fake = Capabilities(real.platform, 0, False, real.no_new_privs, real.root)
    enforce_module.probe = lambda: fake
if params.get("break_landlock"):
    from deeting_tui.sandbox import landlock
    def broken(rules):
        raise landlock.LandlockError("landlock_add_rule failed: [Errno 22] Invalid argument")
    landlock.apply = broken
if params.get("thread"):
    threading.Thread(target=threading.Event().wait, daemon=True).start()
out = {}
try:
    applied = enforce_module.enforce(params["init"], "t")
    out["applied"] = applied.as_json()
except enforce_module.SandboxError as exc:
    out["error"] = str(exc)
try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
    out["socket"] = "ok"
except PermissionError as exc:
    out["socket"] = str(exc)
for name, code in params.get("then", {}).items():
    try:
        exec(code)
        out[name] = "ok"
    except OSError as exc:
        out[name] = str(exc)
print(json.dumps(out))
"""


def _run(tmp_path: Path, scopes: tuple[str, ...] = (), **params: Any) -> dict[str, Any]:
    for name in ("data", "cache", "tmp"):
        (tmp_path / name).mkdir(exist_ok=True)
    params["init"] = {
        "root": str(tmp_path),
        "data_dir": str(tmp_path / "data"),
        "cache_dir": str(tmp_path / "cache"),
        "tmp_dir": str(tmp_path / "tmp"),
        "scopes": list(scopes),
        "home": str(tmp_path),
        "proxy_port": 9 if any(s.startswith("network:") for s in scopes) else None,
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(params)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


needs_layers = pytest.mark.skipif(
    not (probe().landlock_abi and probe().seccomp), reason=f"no OS layers here ({probe().level})"
)


@needs_layers
def test_every_layer_applies_and_the_level_says_so(tmp_path: Path) -> None:
    out = _run(tmp_path)
    applied = out["applied"]
    assert applied["level"] == f"enforced: landlock {probe().landlock_abi} + seccomp"
    assert applied["network"] == "none" and applied["exec"] is False
    assert 0 < applied["ms"] < 1000
    assert "has no 'network' permission" in out["socket"]


def test_without_os_layers_it_still_runs_guarded_and_says_so(tmp_path: Path) -> None:
    out = _run(tmp_path, layers="none")
    assert out["applied"]["level"] == "guard-rail only"
    assert out["applied"]["landlock_abi"] == 0 and out["applied"]["seccomp"] is False
    assert "has no 'network' permission" in out["socket"]  # the guard still answers


@needs_layers
def test_a_layer_that_fails_stops_the_worker(tmp_path: Path) -> None:
    out = _run(tmp_path, break_landlock=True)
    assert "applied" not in out
    assert out["error"].startswith("the OS sandbox could not be applied: landlock_add_rule")


@needs_layers
def test_a_second_thread_is_refused_before_anything_applies(tmp_path: Path) -> None:
    out = _run(tmp_path, thread=True)
    assert "2 threads before its sandbox is applied" in out["error"]
    assert out["socket"] == "ok"  # nothing was applied


@needs_layers
def test_the_guard_names_the_scope_for_what_seccomp_refuses(tmp_path: Path) -> None:
    """A refused socket kind or a listener gets a sentence naming the missing scope, not a
    bare EPERM; UNIX sockets are refused with any grant."""
    then = {
        "mptcp": "socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)",
        "bind": "socket.socket().bind(('127.0.0.1', 0))",
        "unix_connect": "socket.socketpair()[0].connect('/run/docker.sock')",
    }
    host = _run(tmp_path, scopes=("network:api.example.com",), then=then)
    assert host["applied"]["network"] == "proxy"
    assert "has no 'network' permission: protocol 262" in host["mptcp"]
    assert "has no 'network' permission: listening on 127.0.0.1:0" in host["bind"]
    assert "UNIX socket '/run/docker.sock' (never allowed)" in host["unix_connect"]
    anything = _run(tmp_path, scopes=("network",), then=then)
    assert anything["mptcp"] == "ok" and anything["bind"] == "ok"
    assert "(never allowed)" in anything["unix_connect"]


@needs_layers
def test_the_report_says_what_the_namespaces_and_capabilities_are(tmp_path: Path) -> None:
    out = _run(tmp_path, scopes=("network:api.example.com",))
    applied = out["applied"]
    assert applied["capabilities"] in (
        "all dropped",
        "none held (bounding set kept: no CAP_SETPCAP; no_new_privs blocks regaining)",
    )
    namespaces = applied["namespaces"]
    if namespaces["net"]:
        assert isinstance(namespaces["listener_fd"], int) and namespaces["listener_port"] > 0
    else:
        assert namespaces["notes"]  # and it says why not
