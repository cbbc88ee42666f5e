"""serve.py: strong ETags and 304s, exact lengths, no listings, nothing outside the folder."""

from __future__ import annotations

import hashlib
import http.client
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from registry_tools import ToolError
from registry_tools.serve import RunningServer, make_server, start

REPO = Path(__file__).resolve().parents[2]
BODY = b'{"signed": "{}", "signatures": []}\n'


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    served = tmp_path / "registry"
    (served / "artifacts").mkdir(parents=True)
    (served / "registry.json").write_bytes(BODY)
    (served / "artifacts" / "calc-1.0.0.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    (served / ".registry.json.abc.tmp").write_bytes(b"half")
    (tmp_path / "secret.txt").write_text("do not serve")
    return served


@pytest.fixture
def web() -> Iterator[httpx.Client]:
    """No proxy from the environment may sit between a test and 127.0.0.1."""
    with httpx.Client(trust_env=False, timeout=10) as client:
        yield client


@pytest.fixture
def server(folder: Path) -> Iterator[RunningServer]:
    with start(folder) as running:
        yield running


def _raw_get(server: RunningServer, path: str) -> tuple[int, bytes]:
    """http.client sends the path as written; httpx would normalise the dots away."""
    port = server.server.server_port
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_get_has_a_strong_sha256_etag_and_an_exact_length(
    web: httpx.Client, server: RunningServer
) -> None:
    assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/")
    response = web.get(server.url + "registry.json")
    assert response.status_code == 200
    assert response.content == BODY
    assert response.headers["etag"] == f'"{hashlib.sha256(BODY).hexdigest()}"'
    assert response.headers["content-length"] == str(len(BODY))
    assert response.headers["content-type"] == "application/json"
    zipped = web.get(server.url + "artifacts/calc-1.0.0.zip")
    assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"


def test_if_none_match_gives_304_until_the_file_changes(
    web: httpx.Client, server: RunningServer, folder: Path
) -> None:
    url = server.url + "registry.json"
    etag = web.get(url).headers["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = web.get(url, headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["etag"] == etag
    assert web.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    changed = BODY.replace(b"[]", b"[ ]")
    os.replace(_write(folder / "new.tmp", changed), folder / "registry.json")
    response = web.get(url, headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.content == changed
    assert response.headers["etag"] == f'"{hashlib.sha256(changed).hexdigest()}"'


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_head_sends_the_headers_without_the_body(web: httpx.Client, server: RunningServer) -> None:
    response = web.head(server.url + "registry.json")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(BODY))
    assert response.content == b""


@pytest.mark.parametrize(
    "path", ["missing.json", "", "artifacts", "artifacts/", ".registry.json.abc.tmp"]
)
def test_no_listings_no_dotfiles_no_guessing(
    web: httpx.Client, server: RunningServer, path: str
) -> None:
    response = web.get(server.url + path)
    assert response.status_code == 404
    assert b"calc-1.0.0.zip" not in response.content


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/artifacts/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/artifacts/%2E%2E/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/..\\secret.txt",
    ],
)
def test_dot_dot_is_refused_however_it_is_spelled(server: RunningServer, path: str) -> None:
    status, body = _raw_get(server, path)
    assert status == 400
    assert b"do not serve" not in body


def test_a_symlink_out_of_the_folder_is_refused(server: RunningServer, folder: Path) -> None:
    (folder / "escape.txt").symlink_to(folder.parent / "secret.txt")
    status, body = _raw_get(server, "/escape.txt")
    assert status == 403
    assert b"do not serve" not in body


def test_a_busy_port_is_a_clear_error(folder: Path, server: RunningServer) -> None:
    with pytest.raises(ToolError, match=r"is in use — pick another with --port"):
        make_server(folder, port=server.server.server_port)
    with pytest.raises(ToolError, match="is not a folder"):
        make_server(folder / "registry.json")


def test_stop_closes_the_port(web: httpx.Client, folder: Path) -> None:
    running = start(folder)
    port = running.server.server_port
    assert web.get(running.url + "registry.json").status_code == 200
    running.stop()
    with pytest.raises(httpx.ConnectError):
        web.get(f"http://127.0.0.1:{port}/registry.json")


def test_the_command_line_prints_its_url_and_stops_on_sigterm(
    web: httpx.Client, folder: Path
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "registry_tools.serve", str(folder), "--port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    try:
        line = _first_line(process, deadline=time.monotonic() + 30)
        assert line.startswith(f"serving {folder} at http://127.0.0.1:")
        url = line.rsplit(" ", 1)[-1]
        assert web.get(url + "registry.json").content == BODY
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        process.stderr.close()


def _first_line(process: subprocess.Popen[bytes], deadline: float) -> str:
    """Read stdout until a newline, without blocking past the deadline."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    data = b""
    try:
        while b"\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no 'serving' line; got {data!r}")
            if selector.select(remaining):
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk:
                    raise AssertionError(f"stdout closed; got {data!r}")
                data += chunk
    finally:
        selector.close()
    return data.decode().splitlines()[0]
