"""A package index on 127.0.0.1 for the plugin-dependency tests: never the internet.

``wheel_index`` serves ``tests/.wheelhouse`` (real wheels that ``./dev.sh test`` fetches once:
tabulate 0.9.0, orjson 3.11.4 for CPython 3.11-3.14, manylinux_2_17 x86_64 and aarch64) plus
the test's own ``wheel_index_extras`` folder (made with :func:`make_wheel` and
:func:`make_sdist`) as a PEP 503 simple index, and points pip at it alone: every ``PIP_*``
variable of the machine is dropped, pip's config files are ignored (a ``find-links`` or
``extra-index-url`` there would let a test pass from somewhere else), and pip's cache is off
(a cached page or wheel from an earlier run must not make a test pass). It yields the index
URL. ``bare_wheel_index`` is the same without the real wheels, so it never skips.

tests/conftest.py loads this module as a pytest plugin, so its fixtures are there in every test;
import the helpers (``from wheel_index import make_wheel, make_sdist``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import os
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from packaging.tags import sys_tags
from packaging.utils import canonicalize_name

__all__ = [
    "WHEELHOUSE",
    "WHEELHOUSE_MISSING",
    "bare_wheel_index",
    "make_sdist",
    "make_wheel",
    "serve_index",
    "wheel_index",
    "wheel_index_extras",
]

WHEELHOUSE = Path(__file__).resolve().parent / ".wheelhouse"
WHEELHOUSE_MISSING = "run ./dev.sh test once to fetch the test wheels"
EPOCH = (2020, 1, 1, 0, 0, 0)


def _project(filename: str) -> str | None:
    if filename.endswith(".whl"):
        return canonicalize_name(filename.split("-", 1)[0])
    if filename.endswith(".tar.gz"):
        return canonicalize_name(filename[: -len(".tar.gz")].rsplit("-", 1)[0])
    return None


def _files(folders: list[Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in folders:
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_file() and _project(path.name) is not None:
                    found.setdefault(path.name, path)
    return found


def _handler(folders: list[Path]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, kind: str = "text/html") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            files = _files(folders)  # read per request: a test may add files after start
            path = self.path.split("?", 1)[0]
            parts = [part for part in path.split("/") if part]
            if parts == ["simple"]:
                names = sorted({_project(name) or "" for name in files})
                links = "".join(f'<a href="/simple/{n}/">{n}</a>\n' for n in names)
                self._send(200, f"<html><body>\n{links}</body></html>".encode())
            elif len(parts) == 2 and parts[0] == "simple":
                project = canonicalize_name(parts[1])
                mine = {name: p for name, p in files.items() if _project(name) == project}
                if not mine:
                    self._send(404, b"not found")
                    return
                links = ""
                for name, file in sorted(mine.items()):
                    digest = hashlib.sha256(file.read_bytes()).hexdigest()
                    quoted = html.escape(name)
                    links += f'<a href="/files/{quoted}#sha256={digest}">{quoted}</a>\n'
                self._send(200, f"<html><body>\n{links}</body></html>".encode())
            elif len(parts) == 2 and parts[0] == "files" and parts[1] in files:
                self._send(200, files[parts[1]].read_bytes(), "application/octet-stream")
            else:
                self._send(404, b"not found")

    return Handler


def serve_index(folders: list[Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Serve ``folders`` as a simple index and point pip (via the environment) at it alone."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(folders))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="wheel-index", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/simple/"
    for name in list(os.environ):
        if name.startswith("PIP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", url)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "30")
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def wheel_index_extras(tmp_path: Path) -> Path:
    """A folder the test's index also serves: drop made-up wheels and sdists here."""
    folder = tmp_path / "index-extras"
    folder.mkdir()
    return folder


@pytest.fixture
def wheel_index(wheel_index_extras: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The URL of a local index with the real test wheels and the test's extras."""
    if not any(WHEELHOUSE.glob("*.whl")):
        pytest.skip(WHEELHOUSE_MISSING)
    yield from serve_index([WHEELHOUSE, wheel_index_extras], monkeypatch)


@pytest.fixture
def bare_wheel_index(wheel_index_extras: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The URL of a local index with only the test's extras (never skips)."""
    yield from serve_index([wheel_index_extras], monkeypatch)


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(
    dest: Path,
    name: str,
    version: str,
    requires: tuple[str, ...] | list[str] = (),
    pure: bool = True,
    *,
    tag: str | None = None,
    files: dict[str, bytes] | None = None,
) -> Path:
    """A tiny valid wheel in ``dest``: a module ``<name>`` saying its version, METADATA with
    ``requires`` as Requires-Dist lines, WHEEL, RECORD. ``pure`` gives ``py3-none-any``;
    otherwise the running interpreter's most specific tag (or ``tag``)."""
    dist = name.replace("-", "_").replace(".", "_")
    module = dist.lower()
    if tag is None:
        tag = "py3-none-any" if pure else str(next(iter(sys_tags())))
    info = f"{dist}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {req}\n" for req in requires)
    wheel_text = (
        f"Wheel-Version: 1.0\nGenerator: deeting-tests\nRoot-Is-Purelib: "
        f"{'true' if pure else 'false'}\nTag: {tag}\n"
    )
    contents: dict[str, bytes] = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n".encode(),
        **(files or {}),
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": wheel_text.encode(),
    }
    record = "".join(_record_line(n, d) + "\n" for n, d in contents.items()) + f"{info}/RECORD,,\n"
    contents[f"{info}/RECORD"] = record.encode()
    path = Path(dest) / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry, data in contents.items():
            archive.writestr(zipfile.ZipInfo(entry, EPOCH), data)
    return path


def make_sdist(dest: Path, name: str, version: str) -> Path:
    """A tiny sdist (``NAME-VERSION.tar.gz`` with PKG-INFO and a setup.py that must never
    run): a project the index offers only as source."""
    dist = name.replace("-", "_")
    root = f"{dist}-{version}"
    path = Path(dest) / f"{root}.tar.gz"
    members = {
        f"{root}/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{root}/setup.py": "raise SystemExit('an sdist was built: this must never happen')\n",
    }
    with tarfile.open(path, "w:gz") as archive:
        for member, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path
