"""A worker holds no capability, whoever starts it: each set emptied, in a throwaway child."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

Child = Callable[..., dict[str, Any]]

linux = pytest.mark.skipif(
    not os.path.exists("/proc/self/status"), reason="capabilities are a Linux thing"
)


@linux
def test_drop_all_empties_every_set(child: Child) -> None:
    out = child(
        """
from deeting_tui.sandbox import capabilities
seccomp.set_no_new_privs()
before = capabilities.current_sets()
dropped = capabilities.drop_all()
results["before_eff"] = before["CapEff"]
results["after"] = capabilities.current_sets()
results["described"] = dropped.describe()
import socket as s
attempt("raw_socket_as_root", lambda: s.socket(s.AF_INET, s.SOCK_RAW, 1).close())
attempt("chown_anything", lambda: os.chown("/proc/self/status", 1, 1))
"""
    )
    if os.geteuid() == 0:
        assert out["before_eff"] != 0  # root started with capabilities...
        assert out["after"] == dict.fromkeys(("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"), 0)
        assert out["described"] == "all dropped"  # ...and holds none now
        assert out["raw_socket_as_root"] == "PermissionError"  # CAP_NET_RAW gone
    else:
        assert out["after"]["CapEff"] == out["after"]["CapPrm"] == 0
        assert out["described"] in ("all dropped", out["described"])


@linux
def test_drop_all_in_a_user_namespace_sheds_what_the_namespace_gave(child: Child) -> None:
    out = child(
        """
from deeting_tui.sandbox import capabilities, namespaces
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
uid, gid = os.getuid(), os.getgid()
if libc.unshare(0x10000000) != 0:
    results["skipped"] = "user namespaces are refused here"
else:
    namespaces._map_ids_to_themselves(uid, gid)
    results["in_ns_eff"] = capabilities.current_sets()["CapEff"]
    results["described"] = capabilities.drop_all().describe()
    results["after"] = capabilities.current_sets()
"""
    )
    if "skipped" in out:
        pytest.skip(out["skipped"])
    assert out["in_ns_eff"] != 0  # a new user namespace hands out a full set...
    assert out["described"] == "all dropped"  # ...which is shed before plugin code runs
    assert not any(out["after"].values())
