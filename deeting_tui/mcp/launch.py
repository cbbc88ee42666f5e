"""How the kernel asks a worker to start a plugin's MCP server: the ``mcp`` part of the
``initialize`` request, computed where the machine can still be looked at (the kernel is not
sandboxed; the worker is, the moment it has read this).

It says what to run (``argv``: the runtime and the server's entry, never a shell), with which
environment (``env``: built from nothing — the locale and time zone, HOME, a PATH of the
runtime's own folder only, the server's folders, the user's ``--env`` values; the worker adds
the proxy variables and TMPDIR), and what the sandbox must let that runtime execute
beyond the baseline (``executables``; see sandbox/policy.py ServerRuntime). So the
server holds exactly the plugin's grants plus its runtime, and a program it tries to start
(``node -v``, ``npm install``) is refused by the OS unless ``shell`` is granted.
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path
from typing import Any

from deeting_tui.errors import DeetingError
from deeting_tui.plugin.mcp_server import PINS_FILE, SERVER_DIR, McpServer

__all__ = ["NODE_PROXY_PRELOAD", "LaunchError", "launch_for"]

#: Where ``mcp add`` puts the preload that sends Node's fetch through HTTPS_PROXY.
NODE_PROXY_PRELOAD = f"{SERVER_DIR}/proxy/preload.cjs"
#: The variables of the user's environment a server gets (as every worker does).
PASSED = ("LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "LC_NUMERIC", "LC_TIME", "TZ")
#: The machine's CA bundle (Debian, Fedora): given to runtimes that bring their own list
#: (node, certifi) so they trust what every other program here trusts.
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
#: The ELF interpreters: exec opens them for execution, so Landlock must allow it.
DYNAMIC_LOADERS = ("/lib64/ld-linux-*.so*", "/lib/ld-linux*.so*", "/lib/*/ld-linux*.so*")
SHEBANG_MAX = 256
_SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")


class LaunchError(DeetingError):
    """The server cannot be started on this machine (its runtime is missing)."""


def launch_for(
    spec_root: Path,
    server: McpServer,
    *,
    name: str,
    data_dir: Path,
    cache_dir: Path,
    env_values: dict[str, str],
    network: bool,
    shell: bool,
) -> dict[str, Any]:
    """The ``initialize`` request's ``mcp`` for plugin ``name`` at ``spec_root``."""
    program, executables = _program(spec_root, server, name)
    argv = [program, *_entry_args(spec_root, server), *server.args]
    env: dict[str, str] = {k: os.environ[k] for k in PASSED if k in os.environ}
    env["HOME"] = os.environ.get("HOME", str(data_dir))
    # The runtime's own folder (a venv's bin/, node's), so a server that starts its own
    # interpreter again finds it; whatever else lies there is not executable without shell.
    env["PATH"] = os.pathsep.join(
        dict.fromkeys([str(Path(program).parent), *(_SYSTEM_PATH if shell else ())])
    )
    env["XDG_DATA_HOME"] = str(data_dir)
    env["XDG_CACHE_HOME"] = str(cache_dir)
    env["XDG_CONFIG_HOME"] = str(data_dir / "config")
    if server.runtime == "python":
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # its folder is read-only to it
    if server.runtime == "node":
        env["npm_config_cache"] = str(cache_dir / "npm")
    if network:
        bundle = next((b for b in CA_BUNDLES if os.path.isfile(b)), None)
        if bundle is not None:
            env["SSL_CERT_FILE"] = bundle
            env["NODE_EXTRA_CA_CERTS"] = bundle
    preload = spec_root / NODE_PROXY_PRELOAD
    missing = [k for k in server.env if k not in env_values]
    if missing:
        raise LaunchError(
            f"'{name}' needs {', '.join(missing)}, which this machine has no value for — "
            f"add it again with: deeting mcp add {name} ... --env {missing[0]}=VALUE"
        )
    env.update({k: env_values[k] for k in server.env})
    return {
        "runtime": server.runtime,
        "argv": argv,
        "env": env,
        "cwd": str(data_dir),
        "executables": executables,
        "pins": str(spec_root / PINS_FILE),
        "node_preload": str(preload) if server.runtime == "node" and preload.is_file() else None,
    }


def _program(root: Path, server: McpServer, name: str) -> tuple[str, list[str]]:
    """The program to exec, and every file exec must be allowed to open for it."""
    if server.runtime == "python":
        interpreter = root / SERVER_DIR / "venv" / "bin" / "python"
        if not interpreter.exists():
            raise LaunchError(
                f"'{name}': its Python ({interpreter}) is gone (the Python it was installed "
                f"with was removed?) — reinstall it with: deeting mcp add {name} ..."
            )
        program = str(interpreter)
    elif server.runtime == "node":
        found = shutil.which("node")
        if found is None:
            raise LaunchError(
                f"'{name}' is a Node.js server and node is not on PATH: install Node.js"
            )
        program = found
    else:
        program = server.entry
        if not os.access(program, os.X_OK):
            raise LaunchError(f"'{name}': {program} is missing or not executable")
    executables = [os.path.realpath(program), *_interpreters(program)]
    return program, [*dict.fromkeys([*executables, *_loaders()])]


def _entry_args(root: Path, server: McpServer) -> list[str]:
    if server.runtime == "python":
        # -I: the server's own venv only (no user site, no PYTHON* variables, no cwd on
        # sys.path); the entry is a console script run as a file, so its shebang (which
        # names the folder the venv was built in) is never read.
        return ["-I", str(root / server.entry)]
    if server.runtime == "node":
        return [str(root / server.entry)]
    return []


def _interpreters(program: str) -> list[str]:
    """A script's ``#!`` interpreter (and for ``#!/usr/bin/env X``, X found on PATH)."""
    try:
        with open(program, "rb") as f:
            head = f.read(SHEBANG_MAX)
    except OSError:
        return []
    if not head.startswith(b"#!"):
        return []
    words = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").split()
    if not words:
        return []
    found = [os.path.realpath(words[0])]
    if os.path.basename(words[0]) == "env":
        rest = [w for w in words[1:] if not w.startswith("-")]
        if rest and (target := shutil.which(rest[0])) is not None:
            found.append(os.path.realpath(target))
    return found


def _loaders() -> list[str]:
    return sorted({os.path.realpath(p) for pattern in DYNAMIC_LOADERS for p in glob.glob(pattern)})
