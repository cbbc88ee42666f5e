"""``mcp add NAME --npm PKG[@V]``: a stock Node MCP server in the plugin's ``server/``, and the
proxy preload Node servers need to reach the network through Deeting's proxy.

npm runs with ``--ignore-scripts``: no ``preinstall``/``install``/``postinstall`` of any
package in the tree runs on this machine unconfined (the stock servers need none; a server
that does is broken here, which is the safe way round). The version is pinned exactly
(``--save-exact``) and ``server/package-lock.json`` keeps a sha512 integrity for every package,
so a reinstall is ``npm ci --ignore-scripts`` and gets the same bytes or fails; a lock entry
without an integrity (a git or local dependency) is refused. The server itself is not run:
its entry is the package's ``bin`` JavaScript file, started later as ``node ENTRY`` in the
plugin's sandbox (no shebang, so no ``/usr/bin/env``). The user's npm configuration (a
company registry, a proxy, a CA) is kept.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from deeting_tui.mcp.install_run import (
    InstalledServer,
    InstallError,
    Ran,
    quiet,
    run_tool,
    server_folder,
    tool_env,
)
from deeting_tui.terminal_text import one_line, quote_prefix

__all__ = [
    "PROXY_DIR",
    "NpmSpec",
    "install_node_proxy_shim",
    "install_npm",
    "parse_npm_spec",
    "unverified_lock_entries",
]

#: Where the proxy preload lives, below the plugin's ``server/``.
PROXY_DIR = "proxy"
#: The undici majors a lock file ships for (node 20/22 bundle 6.x, node 24 7.x).
_NPM_FLAGS = (
    "--ignore-scripts",
    "--no-audit",
    "--no-fund",
    "--no-update-notifier",
    # Only registry packages anywhere in the tree (a recent npm 11; an older one warns and goes on,
    # and the lock check below still refuses such a package). A git dependency matters most:
    # pacote prepares it by running `npm install` in the clone, whatever --ignore-scripts says.
    "--allow-git=none",
    "--allow-remote=none",
    "--allow-file=none",
    "--allow-directory=none",
)
_NOT_REGISTRY = {
    "EALLOWGIT": "git",
    "EALLOWREMOTE": "a tarball URL",
    "EALLOWFILE": "a local file",
    "EALLOWDIRECTORY": "a local folder",
}
_SCOPE_NAME = re.compile(r"(?:@([a-z0-9._~-]+)/)?([a-z0-9._~-]+)")
#: A version, a range (``^1.2``, ``>=1 <2``, ``1.x``) or a dist-tag (``latest``).
_VERSION = re.compile(r"[0-9A-Za-z.^~<>=*|+ x-]+")
_TAKES = "--npm takes a package name from the npm registry, PKG or PKG@VERSION"
_UNREACHABLE_CODES = {
    "ECONNREFUSED",
    "ECONNRESET",
    "ENOTFOUND",
    "EAI_AGAIN",
    "ETIMEDOUT",
    "ENETUNREACH",
    "EHOSTUNREACH",
    "ESOCKETTIMEDOUT",
    "ERR_SOCKET_TIMEOUT",
    "ECONNABORTED",
    "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
    "SELF_SIGNED_CERT_IN_CHAIN",
    "CERT_HAS_EXPIRED",
}
_CODE = re.compile(r"npm (?:error|ERR!) code (\S+)")


class NpmSpec:
    """A checked ``[@scope/]name[@version-or-range]``."""

    def __init__(self, name: str, version: str | None) -> None:
        self.name = name
        self.version = version

    def spec(self) -> str:
        return f"{self.name}@{self.version}" if self.version else self.name

    @property
    def bin_name(self) -> str:
        """What npm calls a string ``bin``: the name without its scope."""
        return self.name.rpartition("/")[2]


def _refuse(text: str, why: str) -> InstallError:
    return InstallError(f"--npm {quote_prefix(text)}: {why}")


def parse_npm_spec(text: str) -> NpmSpec:
    """A registry package, ``name``, ``@scope/name``, each with an optional ``@version``,
    range or tag; a git or tarball URL, a ``file:`` path, an alias or an option is refused
    with one line (each would fetch from somewhere the lock file cannot pin)."""
    stripped = text.strip()
    if not stripped:
        raise InstallError(f"--npm needs a package name ({_TAKES})")
    if stripped.startswith("-"):
        raise _refuse(text, f"looks like an option, not a package ({_TAKES})")
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", stripped):  # git+ssh:, https:, file:, github:, npm:
        raise _refuse(text, f"is a URL or a path, not a registry package ({_TAKES})")
    if stripped.startswith((".", "/", "~")) or stripped.endswith((".tgz", ".tar.gz", ".tar")):
        raise _refuse(text, f"is a path, not a registry package ({_TAKES})")
    at = stripped.find("@", 1)
    name, version = (stripped[:at], stripped[at + 1 :]) if at > 0 else (stripped, None)
    match = _SCOPE_NAME.fullmatch(name)
    if not match or len(name) > 214 or name.count("/") > (1 if name.startswith("@") else 0):
        if "/" in name and not name.startswith("@"):
            raise _refuse(
                text, f"looks like a GitHub repository, not a registry package ({_TAKES})"
            )
        raise _refuse(
            text,
            "is not an npm package name (lowercase letters, digits, '-', '.', '_', '~', "
            f"optionally @scope/; {_TAKES})",
        )
    if name.rpartition("/")[2].startswith((".", "_")):
        raise _refuse(text, "an npm package name cannot start with '.' or '_'")
    if version is not None:
        version = version.strip()
        if not version or not _VERSION.fullmatch(version) or version.startswith("-"):
            raise _refuse(
                text,
                f"{quote_prefix(version)!r} is not a version, range or tag ({_TAKES})",
            )
    return NpmSpec(name, version)


def _here(folder: Path) -> tuple[str, ...]:
    """npm's flags that keep it in ``folder``: without them, npm 8+ walks up from the folder
    and, when a parent's package.json declares workspaces that cover it, installs into that
    parent instead (its node_modules and lock file, outside the plugin)."""
    return ("--prefix", str(folder), "--no-workspaces")


def _npm(env: Mapping[str, str]) -> str:
    npm = shutil.which("npm", path=env.get("PATH"))
    if npm is None:
        raise InstallError("npm is not on PATH: install Node.js and npm to add npm servers")
    return npm


def install_npm(
    spec: str,
    plugin_root: Path,
    *,
    bin: str | None = None,
    on_line: Callable[[str], None] = quiet,
    env: Mapping[str, str] | None = None,
) -> InstalledServer:
    """Install ``spec`` into ``plugin_root/server`` (its own package.json, lock file and
    node_modules) and say how to start it. No install script runs (see the module
    docstring). ``bin`` picks the program when the package has several; ``env`` adds to
    npm's environment (tests point its cache at their own folder). On any failure
    ``plugin_root/server`` is removed again and an :class:`InstallError` says why."""
    wanted = parse_npm_spec(spec)
    tool_environment = tool_env(env)
    npm = _npm(tool_environment)
    with server_folder(plugin_root.absolute()) as server:
        (server / "package.json").write_text(
            json.dumps(
                {
                    "name": "deeting-mcp-server",
                    "version": "0.0.0",
                    "private": True,
                    "description": "an MCP server installed by deeting mcp add",
                    "license": "UNLICENSED",
                },
                indent=2,
            )
            + "\n"
        )
        ran = run_tool(
            [npm, "install", *_NPM_FLAGS, *_here(server), "--save-exact", "--", wanted.spec()],
            cwd=server,
            env=tool_environment,
            on_line=on_line,
            what=f"npm install {wanted.spec()}",
        )
        if ran.returncode != 0:
            raise _npm_failure(wanted, ran)
        _check_lock(server / "package-lock.json", wanted.spec())
        package_dir = server / "node_modules" / wanted.name
        meta = _read_json(package_dir / "package.json", f"{wanted.name}'s package.json")
        version = str(meta.get("version", ""))
        if not version:
            raise InstallError(f"{wanted.name}'s package.json has no version")
        entry = _bin_entry(package_dir, wanted, meta, bin)
        description = meta.get("description")
        return InstalledServer(
            runtime="node",
            entry=str(PurePosixPath("server", "node_modules", wanted.name, entry)),
            package=f"{wanted.name}@{version}",
            version=version,
            description=one_line(description) if isinstance(description, str) else "",
        )


def _npm_failure(wanted: NpmSpec, ran: Ran) -> InstallError:
    codes = _CODE.findall(ran.text)
    code = codes[-1] if codes else ""
    if code in _UNREACHABLE_CODES or code.startswith("ERR_TLS") or "FetchError" in ran.text:
        return InstallError(
            f"npm could not reach the registry to install {wanted.spec()} ({code or 'fetch'}"
            "): check the network (and a proxy or registry in your npm configuration), then "
            "try again",
            unreachable=True,
        )
    if code in _NOT_REGISTRY:
        return InstallError(
            f"{wanted.spec()} depends on a package from {_NOT_REGISTRY[code]}, which `mcp add` "
            "does not install (only registry packages, pinned by their integrity): install it "
            "yourself and use --command"
        )
    if code == "E404":
        return InstallError(
            f"there is no package {wanted.name!r} on the npm registry (or one of its "
            "dependencies is missing): check the name"
        )
    if code == "ETARGET":
        return InstallError(
            f"{wanted.name} has no version matching {wanted.version!r}: see its versions with "
            f"`npm view {wanted.name} versions`"
        )
    errors = [line for line in ran.tail if line.startswith(("npm error", "npm ERR!"))]
    said = " ".join(line.split(" ", 2)[-1] for line in errors[:3]) or f"exit {ran.returncode}"
    return InstallError(f"npm could not install {wanted.spec()}: {quote_prefix(said, 300)}")


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InstallError(f"could not read {what} after npm's install: {exc}") from None
    if not isinstance(data, dict):
        raise InstallError(f"{what} is not a JSON object")
    return data


def unverified_lock_entries(lock: dict[str, Any]) -> list[str]:
    """The lock file's packages a reinstall could not verify: no sha512 integrity (a git,
    tarball-URL or local dependency), or a link. Bundled dependencies ride inside their
    parent's tarball and its integrity."""
    packages = lock.get("packages")
    if not isinstance(packages, dict):
        return ['(the lock file has no "packages")']
    bad = []
    for path, entry in packages.items():
        if path == "":
            continue
        if not isinstance(entry, dict) or entry.get("link"):
            bad.append(str(path))
        elif entry.get("inBundle"):
            continue
        elif not str(entry.get("integrity", "")).startswith("sha512-"):
            bad.append(str(path))
    return bad


def _check_lock(lock_file: Path, what: str) -> None:
    lock = _read_json(lock_file, "the lock file (package-lock.json)")
    version = lock.get("lockfileVersion")
    if not isinstance(version, int) or version < 2:
        raise InstallError(
            f"npm wrote a lock file of version {version!r} for {what}; a lock file of "
            "version 2 or 3 (npm 7 or newer) is needed to pin every package: upgrade npm"
        )
    bad = unverified_lock_entries(lock)
    if bad:
        raise InstallError(
            f"{what} depends on packages npm cannot verify on a reinstall (no sha512 "
            f"integrity: {quote_prefix(', '.join(p.removeprefix('node_modules/') for p in bad))}"
            "): `mcp add` installs registry packages only — install it yourself and use "
            "--command"
        )


def _bin_entry(package_dir: Path, wanted: NpmSpec, meta: dict[str, Any], bin: str | None) -> str:
    """The program's JavaScript file, relative to the package: ``bin`` if given, else the
    one named like the package, else the only one."""
    declared = meta.get("bin")
    bins: dict[str, str] = {}
    if isinstance(declared, str):
        bins = {wanted.bin_name: declared}
    elif isinstance(declared, dict):
        bins = {str(k): v for k, v in declared.items() if isinstance(v, str)}
    names = sorted(bins)
    if bin is not None:
        if bin not in bins:
            has = f"its programs: {', '.join(names)}" if names else "it has none"
            raise InstallError(f"{wanted.name} has no program {quote_prefix(bin)!r} ({has})")
        chosen = bin
    elif not bins:
        raise InstallError(
            f'{wanted.name} declares no program (package.json has no "bin"), so there is '
            "nothing to start as its server; install it yourself and use --command"
        )
    elif wanted.bin_name in bins:
        chosen = wanted.bin_name
    elif len(bins) == 1:
        chosen = names[0]
    else:
        raise InstallError(
            f"{wanted.name} has several programs: choose one with --bin NAME: {', '.join(names)}"
        )
    relative = PurePosixPath(bins[chosen])
    target = (package_dir / relative).resolve()
    if not target.is_relative_to(package_dir.resolve()) or not target.is_file():
        raise InstallError(
            f"{wanted.name}'s program {quote_prefix(chosen)} points at "
            f"{quote_prefix(bins[chosen])!r}, which is not a file inside the package"
        )
    return target.relative_to(package_dir.resolve()).as_posix()


def _undici_major(env: Mapping[str, str]) -> int:
    node = shutil.which("node", path=env.get("PATH"))
    if node is None:
        raise InstallError("node is not on PATH: install Node.js to add npm servers")
    try:
        said = subprocess.run(
            [node, "-p", "process.versions.undici || ''"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=dict(env),
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"could not ask node for its version: {exc}") from None
    version = said.stdout.decode("ascii", "replace").strip()
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)*", version):
        raise InstallError(
            f"this node ({node}) has no bundled undici (its fetch), so Deeting's proxy preload "
            "does not apply: install Node.js 20 or newer"
        )
    return int(version.split(".")[0])


def install_node_proxy_shim(
    plugin_root: Path,
    on_line: Callable[[str], None] = quiet,
    *,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Install the proxy preload into ``plugin_root/server/proxy`` and return its path,
    **relative to plugin_root** (``server/proxy/preload.cjs``; the folder is renamed into
    place after the install).

    Why: Node 20/22's built-in fetch ignores HTTPS_PROXY, and in the sandbox the only way out
    is Deeting's proxy, so a Node server granted ``network:HOST`` is started with
    ``NODE_OPTIONS=--require=<plugin root>/server/proxy/preload.cjs``; the preload routes
    fetch through the proxy the environment names. Its undici is pinned by a lock file
    Deeting ships (deeting_tui/mcp/node_proxy/undici-MAJOR, in the wheel as package data),
    one per major of node's bundled undici, and installed with ``npm ci --ignore-scripts``,
    which checks its sha512 integrity."""
    tool_environment = tool_env(env)
    npm = _npm(tool_environment)
    major = _undici_major(tool_environment)
    shipped = resources.files("deeting_tui.mcp") / "node_proxy"
    locked = shipped / f"undici-{major}"
    if not locked.is_dir():
        raise InstallError(
            f"this node bundles undici {major}.x, and Deeting ships its proxy preload for "
            "undici 6 and 7 (Node 20 to 24): install one of those Node.js versions"
        )
    with server_folder(plugin_root.absolute(), PROXY_DIR) as folder:
        for name in ("package.json", "package-lock.json"):
            (folder / name).write_bytes((locked / name).read_bytes())
        (folder / "preload.cjs").write_bytes((shipped / "preload.cjs").read_bytes())
        _check_lock(folder / "package-lock.json", "the proxy preload")
        ran = run_tool(
            [npm, "ci", *_NPM_FLAGS, *_here(folder)],
            cwd=folder,
            env=tool_environment,
            on_line=on_line,
            what="npm ci (the proxy preload's undici)",
        )
        if ran.returncode != 0:
            raise _npm_failure(NpmSpec("undici", None), ran)
        if not (folder / "node_modules" / "undici" / "package.json").is_file():
            raise InstallError("npm ci did not install undici for the proxy preload")
    return Path("server", PROXY_DIR, "preload.cjs")
