"""Applying a sandbox cannot be undone, so each test sandboxes a throwaway child instead.

The child runs PRELUDE, then the test's script, then prints ``results`` as JSON. Its script
records each attempt with ``attempt(name, fn)``: the value fn returns (None becomes "ok"),
or the name of the OSError it raised.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

PRELUDE = """
import json, os, socket, subprocess, sys, threading
from deeting_tui.sandbox import landlock, seccomp, seccomp_rules

params = json.loads(sys.argv[1])
results = {}

def attempt(name, fn):
    try:
        value = fn()
    except OSError as exc:
        results[name] = type(exc).__name__
    else:
        results[name] = "ok" if value is None else value

def read(path):
    with open(path, "rb") as f:
        f.read()

def write(path):
    with open(path, "w") as f:
        f.write("x")
"""

EPILOGUE = """
print(json.dumps(results))
"""

RunChild = Callable[..., dict[str, Any]]


def run_child(script: str, **params: Any) -> dict[str, Any]:
    code = PRELUDE + textwrap.dedent(script) + EPILOGUE
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(params)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, f"child failed ({done.returncode}):\n{done.stderr}"
    results: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


@pytest.fixture
def child() -> RunChild:
    return run_child
