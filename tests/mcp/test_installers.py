"""The MCP server installers (deeting_tui/mcp/installers.py).

Bad specs are refused with their line and leave nothing behind; pip installs wheels only (an
sdist's setup.py never runs) and npm runs no install script (a local registry serves a
package whose pre/postinstall would leave a marker; the same install without
--ignore-scripts does leave it, so the test can fail); an installed server still starts after
its plugin folder is renamed, driven with the MCP SDK. Everything but the stock servers runs
against local indexes: no internet.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from mcp_support import REPO, StockServer, stock_server
from wheel_index import make_sdist, make_wheel

import deeting_tui.mcp.install_pypi as install_pypi_module
from deeting_tui.mcp.install_npm import unverified_lock_entries
from deeting_tui.mcp.install_run import run_tool, stop_installs
from deeting_tui.mcp.installers import (
    InstalledServer,
    InstallError,
    install_npm,
    install_pypi,
)
from deeting_tui.procgroup import wait_exited

PLATFORM = f"Python {sys.version_info.major}.{sys.version_info.minor} on {sys.platform}/"
NPM = shutil.which("npm")
needs_npm = pytest.mark.skipif(NPM is None, reason="npm is not on PATH")


def _refused(call: Any, root: Path) -> str:
    with pytest.raises(InstallError) as caught:
        call()
    assert not (root / "server").exists(), "a refused install left server/ behind"
    return caught.value.message


# --- pip -------------------------------------------------------------------------------------

TAKES = "--pypi takes a package name from the package index, NAME or NAME==VERSION"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", f"--pypi needs a package name ({TAKES})"),
        (
            "--index-url=http://evil/",
            f"--pypi --index-url=http://evil/: looks like an option, not a package ({TAKES})",
        ),
        (
            "https://evil.example/x.whl",
            f"--pypi https://evil.example/x.whl: is a URL: {TAKES}; "
            "to run a server you installed yourself, use --command",
        ),
        (
            "x @ https://evil.example/x.whl",
            f"--pypi x @ https://evil.example/x.whl: is a URL: "
            f"{TAKES}; to run a server you installed yourself, use --command",
        ),
        (
            "./mcp-server",
            f"--pypi ./mcp-server: is a path: {TAKES}; to run a server you "
            "installed yourself, use --command",
        ),
        (
            "pkg>=1",
            "--pypi pkg>=1: give one exact version (NAME==VERSION), or none for the "
            "newest: the installed version is pinned either way",
        ),
        (
            "pkg==1.*",
            "--pypi pkg==1.*: give one exact version (NAME==VERSION), or none for the "
            "newest: the installed version is pinned either way",
        ),
        (
            "pkg; python_version>'3'",
            f"--pypi pkg; python_version>'3': carries more than a name and a version ({TAKES})",
        ),
        ("not a name!", f"--pypi not a name!: is not a package name ({TAKES})"),
    ],
)
def test_bad_pypi_requirements_are_refused_with_their_line(
    spec: str, message: str, tmp_path: Path
) -> None:
    root = tmp_path / "plugin"
    assert _refused(lambda: install_pypi(spec, root), root) == message
    assert not root.exists()


def _toy_wheel(folder: Path, name: str, version: str, scripts: dict[str, str], **kw: Any) -> Path:
    dist = name.replace("-", "_")
    module = dist.lower()
    entry_points = "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in scripts.items())
    code = (
        "import sys\n"
        "def main():\n"
        "    print('prefix=' + sys.prefix)\n"
        f"    print('hello from {name}')\n"
    )
    files = {
        f"{module}/server.py": code.encode(),
        f"{dist}-{version}.dist-info/entry_points.txt": entry_points.encode(),
    }
    return make_wheel(folder, name, version, files=files, **kw)


def test_a_wheel_installs_into_its_own_venv_and_runs_after_the_folder_moves(
    bare_wheel_index: str, wheel_index_extras: Path, tmp_path: Path
) -> None:
    _toy_wheel(wheel_index_extras, "toy-mcp", "1.0", {"toy-mcp": "toy_mcp.server:main"})
    lines: list[str] = []
    root = tmp_path / "staged"
    installed = install_pypi("toy-mcp", root, on_line=lines.append)
    assert installed == InstalledServer(
        runtime="python",
        entry="server/venv/bin/toy-mcp",
        package="toy-mcp==1.0",
        version="1.0",
        description="",
    )
    assert any("Successfully installed toy-mcp-1.0" in line for line in lines)
    # the venv is its own: not deeting's (no deeting, no pip of ours inside it)
    site = list((root / "server" / "venv").glob("lib/python*/site-packages"))
    assert site and not list(site[0].glob("deeting*")) and not (site[0] / "pip").exists()
    moved = tmp_path / "plugins" / "toy"
    moved.parent.mkdir()
    root.rename(moved)
    ran = subprocess.run(
        [str(moved / "server/venv/bin/python"), str(moved / installed.entry)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert ran.stdout.splitlines() == [f"prefix={moved / 'server' / 'venv'}", "hello from toy-mcp"]


def test_a_relative_plugin_root_is_the_same_folder(
    bare_wheel_index: str,
    wheel_index_extras: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _toy_wheel(wheel_index_extras, "toy-mcp", "1.0", {"toy-mcp": "toy_mcp.server:main"})
    monkeypatch.chdir(tmp_path)
    installed = install_pypi("toy-mcp", Path("rel"))
    assert (tmp_path / "rel" / installed.entry).is_file()
    assert sorted(p.name for p in (tmp_path / "rel").iterdir()) == ["server"]


def test_the_console_script_is_chosen_by_bin_name_or_alone(
    bare_wheel_index: str, wheel_index_extras: Path, tmp_path: Path
) -> None:
    _toy_wheel(
        wheel_index_extras,
        "two-bins",
        "1.0",
        {"a-cli": "two_bins.server:main", "b-cli": "two_bins.server:main"},
    )
    _toy_wheel(wheel_index_extras, "no-bins", "1.0", {})
    _toy_wheel(wheel_index_extras, "other-name", "2.1", {"srv": "other_name.server:main"})
    root = tmp_path / "p"
    assert _refused(lambda: install_pypi("two-bins", root), root) == (
        "two-bins has several programs: choose one with --bin NAME: a-cli, b-cli"
    )
    assert _refused(lambda: install_pypi("two-bins", root, bin="c-cli"), root) == (
        "two-bins has no program 'c-cli' (its programs: a-cli, b-cli)"
    )
    assert _refused(lambda: install_pypi("no-bins", root), root).startswith(
        "no-bins installs no program (no console script)"
    )
    assert install_pypi("two-bins", root, bin="b-cli").entry == "server/venv/bin/b-cli"
    shutil.rmtree(root)
    assert install_pypi("other-name==2.1", root).entry == "server/venv/bin/srv"


def test_without_a_pip_of_our_own_the_venv_gets_its_own_pip(
    bare_wheel_index: str,
    wheel_index_extras: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deeting installed without pip (``uv tool install``): the server's venv is made with
    ensurepip and its own pip installs the wheel; the result is the same."""
    monkeypatch.setattr(install_pypi_module, "_pip_command", lambda python: None)
    _toy_wheel(wheel_index_extras, "toy-mcp", "1.0", {"toy-mcp": "toy_mcp.server:main"})
    root = tmp_path / "p"
    installed = install_pypi("toy-mcp==1.0", root)
    assert installed.entry == "server/venv/bin/toy-mcp" and installed.package == "toy-mcp==1.0"
    site = next((root / "server" / "venv").glob("lib/python*/site-packages"))
    assert (site / "pip").is_dir() and (site / "toy_mcp").is_dir()


def test_an_sdist_only_package_is_refused_and_its_setup_py_never_runs(
    bare_wheel_index: str, wheel_index_extras: Path, tmp_path: Path
) -> None:
    make_sdist(wheel_index_extras, "sdist-only", "1.0")  # its setup.py raises if ever run
    make_wheel(wheel_index_extras, "needs-sdist", "1.0", requires=["sdist-only"])
    root = tmp_path / "p"
    assert _refused(lambda: install_pypi("sdist-only", root), root) == (
        f"sdist-only has no wheel for {PLATFORM}{os.uname().machine}; `mcp add` installs "
        "wheels only (no build scripts run) — ask its author for a wheel, or install it "
        "yourself and use --command"
    )
    assert _refused(lambda: install_pypi("needs-sdist", root), root) == (
        f"needs-sdist needs sdist-only, which has no wheel for {PLATFORM}{os.uname().machine}; "
        "`mcp add` installs wheels only (no build scripts run) — ask its author for a wheel, "
        "or install it yourself and use --command"
    )


def test_a_missing_package_or_version_is_said_as_such(
    bare_wheel_index: str, wheel_index_extras: Path, tmp_path: Path
) -> None:
    _toy_wheel(wheel_index_extras, "toy-mcp", "1.0", {"toy-mcp": "toy_mcp.server:main"})
    root = tmp_path / "p"
    assert _refused(lambda: install_pypi("no-such-server", root), root) == (
        "there is no package 'no-such-server' on the package index: check the name"
    )
    assert _refused(lambda: install_pypi("toy-mcp==2.0", root), root) == (
        f"toy-mcp has no version 2.0 with a wheel for {PLATFORM}{os.uname().machine} "
        "(versions with one: 1.0)"
    )


def test_an_unreachable_index_is_said_and_marked(tmp_path: Path) -> None:
    root = tmp_path / "p"
    env = {
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_FIND_LINKS": "",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple/",
        "PIP_RETRIES": "1",
    }
    with pytest.raises(InstallError) as caught:
        install_pypi("mcp-server-time", root, env=env)
    assert caught.value.unreachable
    assert caught.value.message.startswith("pip could not reach the package index")
    assert not (root / "server").exists()


def test_an_existing_server_folder_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "server").mkdir(parents=True)
    (root / "server" / "mine.txt").write_text("keep")
    with pytest.raises(InstallError, match="already exists"):
        install_pypi("mcp-server-time", root)
    assert (root / "server" / "mine.txt").read_text() == "keep"


# --- the package-manager runner ---------------------------------------------------------------


def test_a_run_past_its_timeout_is_killed_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    with pytest.raises(InstallError) as caught:
        run_tool(
            [sys.executable, "-c", script],
            cwd=tmp_path,
            env=os.environ,
            on_line=lambda line: None,
            what="the stuck tool",
            timeout=1.5,
        )
    assert time.monotonic() - started < 30
    assert caught.value.message.startswith("the stuck tool did not finish in 1.5 seconds")
    _assert_dead(int(pid_file.read_text()))


def _assert_dead(child: int) -> None:
    """The tool's child was killed with its group (pidfds: no polling)."""
    assert wait_exited([child], time.monotonic() + 10) == [], "the tool's child outlived it"


def test_stop_installs_ends_a_run_in_another_thread_with_its_children(tmp_path: Path) -> None:
    """What ``mcp add`` does on Ctrl-C: the install runs in a thread, which a cancelled task
    cannot stop; stop_installs kills pip/npm and the thread ends at once."""
    pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    started = threading.Event()
    outcome: list[BaseException] = []

    def install() -> None:
        try:
            run_tool(
                [sys.executable, "-c", script],
                cwd=tmp_path,
                env=os.environ,
                on_line=lambda line: started.set(),
                what="npm install x",
            )
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=install)
    thread.start()
    assert started.wait(30)
    stop_installs()
    thread.join(30)
    assert not thread.is_alive()
    assert [str(exc) for exc in outcome] == [
        "npm install x was stopped before it finished: nothing was installed"
    ]
    _assert_dead(int(pid_file.read_text()))


def test_a_tool_reads_no_stdin_and_its_lines_are_neutralised(tmp_path: Path) -> None:
    lines: list[str] = []
    script = "import sys; print(repr(sys.stdin.read())); print('\\x1b]0;evil\\x07x\\x1b[2Jy')"
    ran = run_tool(
        [sys.executable, "-c", script], cwd=tmp_path, env=os.environ, on_line=lines.append, what="t"
    )
    assert ran.returncode == 0
    assert lines == ["''", "xy"]


# --- npm ------------------------------------------------------------------------------------

NPM_TAKES = "--npm takes a package name from the npm registry, PKG or PKG@VERSION"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", f"--npm needs a package name ({NPM_TAKES})"),
        ("-g", f"--npm -g: looks like an option, not a package ({NPM_TAKES})"),
        (
            "git+https://github.com/a/b.git",
            f"--npm git+https://github.com/a/b.git: is a URL or "
            f"a path, not a registry package ({NPM_TAKES})",
        ),
        (
            "https://evil.example/x.tgz",
            f"--npm https://evil.example/x.tgz: is a URL or a path, "
            f"not a registry package ({NPM_TAKES})",
        ),
        ("file:../x", f"--npm file:../x: is a URL or a path, not a registry package ({NPM_TAKES})"),
        (
            "github:a/b",
            f"--npm github:a/b: is a URL or a path, not a registry package ({NPM_TAKES})",
        ),
        ("./x.tgz", f"--npm ./x.tgz: is a path, not a registry package ({NPM_TAKES})"),
        ("a/b", f"--npm a/b: looks like a GitHub repository, not a registry package ({NPM_TAKES})"),
        ("x@npm:y@1", f"--npm x@npm:y@1: 'npm:y@1' is not a version, range or tag ({NPM_TAKES})"),
        (
            "x@1;rm -rf",
            f"--npm x@1;rm -rf: '1;rm -rf' is not a version, range or tag ({NPM_TAKES})",
        ),
        (
            "Upper",
            "--npm Upper: is not an npm package name (lowercase letters, digits, '-', "
            f"'.', '_', '~', optionally @scope/; {NPM_TAKES})",
        ),
        ("_x", "--npm _x: an npm package name cannot start with '.' or '_'"),
    ],
)
def test_bad_npm_specs_are_refused_with_their_line(spec: str, message: str, tmp_path: Path) -> None:
    root = tmp_path / "plugin"
    assert _refused(lambda: install_npm(spec, root), root) == message


def test_npm_missing_is_said(tmp_path: Path) -> None:
    root = tmp_path / "p"
    assert _refused(lambda: install_npm("x", root, env={"PATH": str(tmp_path)}), root) == (
        "npm is not on PATH: install Node.js and npm to add npm servers"
    )


def _tarball(manifest: dict[str, Any], files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in {"package.json": json.dumps(manifest), **files}.items():
            data = text.encode()
            info = tarfile.TarInfo(f"package/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, 1_600_000_000
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class LocalRegistry:
    """An npm registry on 127.0.0.1 serving packuments and tarballs made by the test."""

    def __init__(self) -> None:
        self.packages: dict[str, dict[str, Any]] = {}
        self.tarballs: dict[str, bytes] = {}
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0].lstrip("/")
                if path in registry.tarballs:
                    body, kind = registry.tarballs[path], "application/octet-stream"
                elif path in registry.packages:
                    body, kind = json.dumps(registry.packages[path]).encode(), "application/json"
                else:
                    self.send_response(404)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error":"Not found"}')
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, manifest: dict[str, Any], files: dict[str, str]) -> None:
        name, version = manifest["name"], manifest["version"]
        data = _tarball(manifest, files)
        tarball = f"{name}/-/{name}-{version}.tgz"
        self.tarballs[tarball] = data
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        dist = {
            "tarball": self.url + tarball,
            "integrity": integrity,
            "shasum": hashlib.sha1(data).hexdigest(),
        }
        packument = self.packages.setdefault(name, {"name": name, "versions": {}})
        packument["versions"][version] = {**manifest, "dist": dist}
        packument["dist-tags"] = {"latest": version}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def npm_registry(tmp_path: Path) -> Iterator[tuple[LocalRegistry, dict[str, str]]]:
    """A local registry, and the env that points npm at it alone (its own cache and config)."""
    if NPM is None:
        pytest.skip("npm is not on PATH")
    registry = LocalRegistry()
    userconfig = tmp_path / "npmrc"
    userconfig.write_text("")
    env = {
        "npm_config_registry": registry.url,
        "npm_config_cache": str(tmp_path / "npm-cache"),
        "npm_config_userconfig": str(userconfig),
        "npm_config_fetch_retries": "0",
        "MARKER_DIR": str(tmp_path),
    }
    try:
        yield registry, env
    finally:
        registry.close()


MARK = "node -e \"require('fs').writeFileSync(process.env.MARKER_DIR + '/{0}', 'ran')\""


def _scripted(registry: LocalRegistry, version: str = "1.0.0") -> None:
    registry.publish(
        {
            "name": "scripted",
            "version": version,
            "description": "a server \x1b[31mwith\x1b[0m install scripts",
            "bin": {"scripted": "./bin/server.js"},
            "scripts": {
                "preinstall": MARK.format("preinstall-ran"),
                "install": MARK.format("install-ran"),
                "postinstall": MARK.format("postinstall-ran"),
            },
        },
        {"bin/server.js": "console.log('scripted server')\n"},
    )


def test_npm_runs_no_install_script_and_pins_the_exact_version(
    npm_registry: tuple[LocalRegistry, dict[str, str]], tmp_path: Path
) -> None:
    registry, env = npm_registry
    _scripted(registry, "1.0.0")
    _scripted(registry, "1.2.0")
    root = tmp_path / "p"
    installed = install_npm("scripted@^1.0.0", root, env=env)
    assert installed == InstalledServer(
        runtime="node",
        entry="server/node_modules/scripted/bin/server.js",
        package="scripted@1.2.0",
        version="1.2.0",
        description="a server with install scripts",
    )
    assert sorted(p.name for p in tmp_path.glob("*-ran")) == []
    server = root / "server"
    assert json.loads((server / "package.json").read_text())["dependencies"] == {
        "scripted": "1.2.0"
    }
    lock = json.loads((server / "package-lock.json").read_text())
    assert lock["lockfileVersion"] == 3
    assert lock["packages"]["node_modules/scripted"]["integrity"].startswith("sha512-")
    assert unverified_lock_entries(lock) == []
    moved = tmp_path / "moved"
    root.rename(moved)
    ran = subprocess.run(
        ["node", str(moved / installed.entry)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert ran.stdout == "scripted server\n"
    # the control: the same install without --ignore-scripts does run them, so the check above
    # can fail
    control = tmp_path / "control"
    control.mkdir()
    (control / "package.json").write_text('{"private": true}')
    assert NPM is not None
    subprocess.run(
        [NPM, "install", "--no-audit", "--no-fund", "scripted"],
        cwd=control,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert sorted(p.name for p in tmp_path.glob("*-ran")) == [
        "install-ran",
        "postinstall-ran",
        "preinstall-ran",
    ]


def test_npm_stays_in_server_under_a_parent_workspace(
    npm_registry: tuple[LocalRegistry, dict[str, str]], tmp_path: Path
) -> None:
    """A folder above the plugin whose package.json declares workspaces covering it must not
    receive the install (npm 8+ would install there by default)."""
    registry, env = npm_registry
    _scripted(registry)
    parent = tmp_path / "home"
    parent.mkdir()
    manifest = '{"name": "top", "private": true, "workspaces": ["plugins/*/server"]}'
    (parent / "package.json").write_text(manifest)
    root = parent / "plugins" / "p"
    installed = install_npm("scripted", root, env=env)
    assert (root / installed.entry).is_file()
    assert (root / "server" / "package-lock.json").is_file()
    assert sorted(p.name for p in parent.iterdir()) == ["package.json", "plugins"]
    assert (parent / "package.json").read_text() == manifest


@pytest.mark.parametrize(
    ("dependency", "said"),
    [
        ("git+http://127.0.0.1:9/evil.git", "git"),
        ("http://127.0.0.1:9/evil.tgz", "a tarball URL"),
        ("file:../evil", "a local folder"),
    ],
)
def test_a_dependency_from_outside_the_registry_is_refused_before_it_is_fetched(
    dependency: str,
    said: str,
    npm_registry: tuple[LocalRegistry, dict[str, str]],
    tmp_path: Path,
) -> None:
    """A git dependency would be prepared by running npm install in its clone (its scripts
    too); npm refuses it (--allow-git=none) before any fetch, as it does tarball URLs and
    local paths, which no lock integrity could pin."""
    registry, env = npm_registry
    registry.publish(
        {
            "name": "outside",
            "version": "1.0.0",
            "bin": "s.js",
            "dependencies": {"evil": dependency},
        },
        {"s.js": ""},
    )
    root = tmp_path / "p"
    assert _refused(lambda: install_npm("outside", root, env=env), root) == (
        f"outside depends on a package from {said}, which `mcp add` does not install (only "
        "registry packages, pinned by their integrity): install it yourself and use --command"
    )


def test_npm_bin_rules(npm_registry: tuple[LocalRegistry, dict[str, str]], tmp_path: Path) -> None:
    registry, env = npm_registry
    registry.publish(
        {"name": "two", "version": "1.0.0", "bin": {"b": "b.js", "a": "a.js"}},
        {"a.js": "", "b.js": ""},
    )
    registry.publish({"name": "none", "version": "1.0.0"}, {"index.js": ""})
    registry.publish({"name": "one", "version": "1.0.0", "bin": "./cli.js"}, {"cli.js": ""})
    registry.publish(
        {"name": "escape", "version": "1.0.0", "bin": {"escape": "../../../x"}}, {"index.js": ""}
    )
    root = tmp_path / "p"
    assert _refused(lambda: install_npm("two", root, env=env), root) == (
        "two has several programs: choose one with --bin NAME: a, b"
    )
    assert _refused(lambda: install_npm("two", root, bin="c", env=env), root) == (
        "two has no program 'c' (its programs: a, b)"
    )
    assert _refused(lambda: install_npm("none", root, env=env), root).startswith(
        'none declares no program (package.json has no "bin")'
    )
    assert _refused(lambda: install_npm("escape", root, env=env), root) == (
        "escape's program escape points at '../../../x', which is not a file inside the package"
    )
    assert install_npm("two", root, bin="b", env=env).entry == "server/node_modules/two/b.js"
    shutil.rmtree(root)
    assert install_npm("one", root, env=env).entry == "server/node_modules/one/cli.js"


def test_npm_failures_are_said(
    npm_registry: tuple[LocalRegistry, dict[str, str]], tmp_path: Path
) -> None:
    registry, env = npm_registry
    _scripted(registry)
    root = tmp_path / "p"
    assert _refused(lambda: install_npm("nope", root, env=env), root) == (
        "there is no package 'nope' on the npm registry (or one of its dependencies is "
        "missing): check the name"
    )
    assert _refused(lambda: install_npm("scripted@9", root, env=env), root) == (
        "scripted has no version matching '9': see its versions with `npm view scripted versions`"
    )
    with pytest.raises(InstallError) as caught:
        install_npm("scripted", root, env={**env, "npm_config_registry": "http://127.0.0.1:9/"})
    assert caught.value.unreachable
    assert not (root / "server").exists()


def test_a_lock_entry_without_integrity_is_unverified() -> None:
    lock = {
        "packages": {
            "": {"dependencies": {"a": "1"}},
            "node_modules/a": {"version": "1", "integrity": "sha512-abc"},
            "node_modules/git": {"version": "1", "resolved": "git+ssh://x"},
            "node_modules/old": {"version": "1", "integrity": "sha1-abc"},
            "node_modules/linked": {"link": True, "resolved": "../x"},
            "node_modules/a/node_modules/bundled": {"version": "1", "inBundle": True},
        }
    }
    assert unverified_lock_entries(lock) == [
        "node_modules/git",
        "node_modules/old",
        "node_modules/linked",
    ]
    assert unverified_lock_entries({}) == ['(the lock file has no "packages")']


# --- the proxy preload -------------------------------------------------------------------------


@pytest.mark.parametrize("major", ["6", "7"])
def test_the_shipped_proxy_locks_pin_undici_exactly_with_integrity(major: str) -> None:
    folder = REPO / "deeting_tui" / "mcp" / "node_proxy" / f"undici-{major}"
    manifest = json.loads((folder / "package.json").read_text())
    lock = json.loads((folder / "package-lock.json").read_text())
    version = manifest["dependencies"]["undici"]
    assert version.startswith(f"{major}.") and version.replace(".", "").isdigit()
    assert lock["lockfileVersion"] == 3
    assert lock["packages"]["node_modules/undici"]["version"] == version
    assert lock["packages"][""]["dependencies"] == {"undici": version}
    assert unverified_lock_entries(lock) == []
    assert "scripts" not in manifest
    # in the wheel: hatch takes every file under deeting_tui that git does not ignore
    files = [folder / "package.json", folder / "package-lock.json", folder.parent / "preload.cjs"]
    ignored = subprocess.run(
        ["git", "check-ignore", *map(str, files)], cwd=REPO, capture_output=True, check=False
    )
    assert ignored.returncode == 1, ignored.stdout


# --- the stock servers, installed for real (cached in .cache/mcp) ------------------------------


async def _tools(command: list[str], cwd: Path) -> list[str]:
    import anyio
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=command[0], args=command[1:], cwd=str(cwd))
    with anyio.fail_after(60):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            listed = await session.list_tools()
    return sorted(tool.name for tool in listed.tools)


def _moved(name: str, tmp_path: Path) -> StockServer:
    copy = stock_server(name, tmp_path / "staged")
    target = tmp_path / "plugins" / name
    target.parent.mkdir()
    copy.root.rename(target)
    return StockServer(target, copy.installed, copy.preload)


async def test_mcp_server_time_from_pypi_runs_after_its_folder_moves(tmp_path: Path) -> None:
    server = _moved("time", tmp_path)
    assert server.installed.package == "mcp-server-time==2026.10.19"
    assert server.installed.entry == "server/venv/bin/mcp-server-time"
    assert await _tools(server.command(), tmp_path) == ["convert_time", "get_current_time"]


@needs_npm
async def test_server_filesystem_from_npm_runs_after_its_folder_moves(tmp_path: Path) -> None:
    server = _moved("filesystem", tmp_path)
    assert server.installed.package == "@modelcontextprotocol/server-filesystem@2026.8.31"
    assert server.installed.entry == (
        "server/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"
    )
    command = [*server.command(), str(tmp_path)]
    tools = await _tools(command, tmp_path)
    assert {"read_text_file", "list_directory", "write_file"} <= set(tools)


@pytest.mark.parametrize(
    ("name", "tools"),
    [
        ("fetch", {"fetch"}),
        pytest.param(
            "everything", {"echo", "get-sum", "trigger-long-running-operation"}, marks=needs_npm
        ),
    ],
)
async def test_the_other_stock_servers_answer(
    name: str, tools: set[str], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    server: StockServer = request.getfixturevalue(f"stock_{name}")
    assert tools <= set(await _tools(server.command(), tmp_path))


class _Proxy:
    """An HTTP CONNECT proxy on 127.0.0.1 that answers the tunnelled request itself and logs
    both lines (undici tunnels plain http:// too)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_CONNECT(self) -> None:
                proxy.seen.append(self.requestline)
                self.send_response(200, "Connection Established")
                self.end_headers()
                inner = self.rfile.readline().decode("latin-1").strip()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                proxy.seen.append(inner)
                body = b"via deeting's proxy"
                self.wfile.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                    % (len(body), body)
                )
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


FETCH = (
    "fetch('http://deeting-test.invalid/x').then(r => r.text()).then("
    "t => console.log('got: ' + t), e => console.log('failed: ' + e.cause?.code))"
)


@needs_npm
def test_the_proxy_preload_sends_nodes_fetch_through_the_proxy(
    stock_everything: StockServer,
) -> None:
    assert stock_everything.preload == "server/proxy/preload.cjs"
    preload = stock_everything.root / stock_everything.preload
    proxy = _Proxy()
    base = {"PATH": os.environ["PATH"], "HTTP_PROXY": proxy.url}
    try:
        direct = subprocess.run(
            ["node", "-e", FETCH], env=base, capture_output=True, text=True, timeout=60, check=True
        )
        assert direct.stdout.startswith("failed:") and proxy.seen == []  # node 20 ignores it
        routed = subprocess.run(
            ["node", "-e", FETCH],
            capture_output=True,
            text=True,
            env={**base, "NODE_OPTIONS": f"--require={preload}"},
            timeout=60,
            check=True,
        )
    finally:
        proxy.close()
    assert routed.stdout == "got: via deeting's proxy\n"
    assert proxy.seen == ["CONNECT deeting-test.invalid:80 HTTP/1.1", "GET /x HTTP/1.1"]
    assert "experimental" not in routed.stderr, routed.stderr
