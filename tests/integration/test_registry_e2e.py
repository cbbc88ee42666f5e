"""The whole distribution path as people run it: a maintainer makes a key and a root, builds a
registry from a plugins folder with ``gen_registry``, serves it on 127.0.0.1; a user syncs,
installs, upgrades and rolls back with ``deeting``; someone tampers with the served files and
every tampering is refused with the user's installation unchanged. And an upgrade made while
a ``deeting --script`` session is running keeps that session and drops no call."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from nacl.signing import SigningKey
from registry_support import maintainer_keys, registry_tool
from support import DEETING, OFFICIAL, REPO, run_deeting

from deeting_tui.store.signing import envelope


@dataclass
class Published:
    """A maintainer's registry: plugin sources, keys, the site folder, its server URL."""

    sources: Path
    keys: Path
    site: Path
    url: str
    served: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def registry_url(self) -> str:
        return self.url + "registry.json"

    def build(self) -> None:
        registry_tool(
            "registry_tools.gen_registry",
            str(self.sources),
            "--out",
            str(self.site),
            "--root",
            str(self.keys / "root.json"),
            "--key",
            str(self.keys / "maintainer.key"),
        )

    def bump(self, plugin: str, version: str) -> None:
        """A new release of ``plugin``: its version, and replies that say which one."""
        folder = self.sources / plugin
        for manifest in ("package.json", "kimai.json"):
            data = json.loads((folder / manifest).read_text())
            data["version"] = version
            (folder / manifest).write_text(json.dumps(data, indent=2))
        index = folder / "src" / "index.py"
        index.write_text(
            index.read_text().replace(
                'text=f"{expr} = {format_number(value)}"',
                f'text=f"{{expr}} = {{format_number(value)}} (calc {version})"',
            )
        )
        assert f"(calc {version})" in index.read_text()


@pytest.fixture
def published(tmp_path: Path) -> Iterator[Published]:
    from registry_tools import serve

    sources = tmp_path / "plugins"
    for name in ("calc", "notes"):
        shutil.copytree(OFFICIAL / name, sources / name, ignore=shutil.ignore_patterns("__py*"))
    keys = tmp_path / "keys"
    maintainer_keys(keys)
    site = tmp_path / "site"
    made = Published(sources, keys, site, "")
    made.build()
    with serve.start(site) as server:
        made.url, made.served = server.url, server.server.served
        yield made


def deeting(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_deeting(*args, home=home, stdin=stdin, timeout=120)


def installed_state(home: Path) -> dict[str, bytes]:
    """The user's installation: every file under plugins/ and registry/, and the grants."""
    data = home / "data"
    files = {}
    for folder in (data / "plugins", data / "registry"):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.name != ".updater.lock":
                files[str(path.relative_to(data))] = path.read_bytes()
    grants = data / "grants.json"
    files["grants"] = grants.read_bytes() if grants.exists() else b""
    return files


def calc_says(home: Path, expr: str = "2+3") -> str:
    done = deeting(home, "--script", "-", "--json", stdin=f"/calc expr={expr}\n")
    assert done.returncode == 0, done.stderr
    results = [orjson.loads(line) for line in done.stdout.splitlines()]
    (result,) = [event for event in results if event["type"] == "tool_result"]
    return str(result["text"])


@pytest.fixture
def user(home: Path, published: Published) -> Path:
    """A user who pinned the registry's root and installed calc 1.0.0 from it."""
    root = published.keys / "root.json"
    done = deeting(home, "registry", "sync", "--url", published.registry_url, "--root", str(root))
    assert done.returncode == 0, done.stderr
    assert "registry 1 from" in done.stdout and "2 plugins" in done.stdout
    done = deeting(home, "plugin", "install", "calc")
    assert done.returncode == 0, done.stderr
    assert "installed calc 1.0.0 from the registry (verified)" in done.stdout
    return home


def test_an_upgrade_is_said_once(user: Path, published: Published) -> None:
    """The kernel tells every front end of an upgrade (a plugin_notice); the CLI, which says
    it on stdout itself, does not repeat it on stderr."""
    published.bump("calc", "1.1.0")
    published.build()
    assert deeting(user, "registry", "sync").returncode == 0
    done = deeting(user, "plugin", "upgrade", "calc")
    assert done.returncode == 0, done.stderr
    assert "upgraded calc 1.0.0 → 1.1.0 (previous version kept)" in done.stdout
    assert "upgraded" not in done.stderr, done.stderr
    done = deeting(user, "plugin", "rollback", "calc")
    assert done.returncode == 0 and "1.1.0 → 1.0.0" in done.stdout
    assert "upgraded" not in done.stderr, done.stderr


def test_install_upgrade_rollback_through_deeting(user: Path, published: Published) -> None:
    assert calc_says(user) == "2+3 = 5"
    listed = deeting(user, "plugin", "list").stdout
    assert re.search(r"^calc\s+1\.0\.0\s+ready\s+registry$", listed, re.MULTILINE), listed
    # Nothing new: the sync is one conditional request, answered 304.
    published.served.clear()
    done = deeting(user, "registry", "sync")
    assert "(not modified)" in done.stdout and "up to date" in done.stdout
    assert published.served == [("GET", "/registry.json", 304)]

    published.bump("calc", "1.1.0")
    published.build()
    done = deeting(user, "registry", "sync")
    assert "registry 2" in done.stdout and "calc 1.0.0 → 1.1.0" in done.stdout
    done = deeting(user, "plugin", "upgrade")
    assert done.returncode == 0, done.stderr
    assert "upgraded calc 1.0.0 → 1.1.0" in done.stdout
    assert calc_says(user) == "2+3 = 5 (calc 1.1.0)"

    done = deeting(user, "plugin", "upgrade", "calc@1.0.0")
    assert done.returncode == 1 and "--allow-downgrade" in done.stderr
    done = deeting(user, "plugin", "rollback", "calc")
    assert done.returncode == 0 and "1.1.0 → 1.0.0" in done.stdout
    assert calc_says(user) == "2+3 = 5"


def _flip_a_byte(published: Published) -> None:
    path = published.site / "artifacts" / "calc-1.1.0.zip"
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x20
    path.write_bytes(bytes(data))


def _truncate(published: Published) -> None:
    path = published.site / "artifacts" / "calc-1.1.0.zip"
    path.write_bytes(path.read_bytes()[:-64])


def _serve_notes_as_calc(published: Published) -> None:
    shutil.copy(
        published.site / "artifacts" / "notes-1.1.0.zip",
        published.site / "artifacts" / "calc-1.1.0.zip",
    )


def _serve_the_old_calc(published: Published) -> None:
    shutil.copy(
        published.site / "artifacts" / "calc-1.0.0.zip",
        published.site / "artifacts" / "calc-1.1.0.zip",
    )


def _edit_the_index(published: Published) -> None:
    path = published.site / "registry.json"
    path.write_bytes(path.read_bytes().replace(b"calc-1.1.0.zip", b"calc-1.0.0.zip"))


def _sign_with_another_key(published: Published) -> None:
    path = published.site / "registry.json"
    signed = json.loads(orjson.loads(path.read_bytes())["signed"])
    path.write_bytes(envelope(signed, [SigningKey.generate()]))


def _replay_the_old_index(published: Published) -> None:
    shutil.copy(published.site / "registry-v1.json", published.site / "registry.json")


#: What someone with write access to the served folder (but no key) might do.
TAMPERING: dict[str, tuple[Callable[[Published], None], str]] = {
    "one flipped byte in the zip": (_flip_a_byte, "does not match"),
    "a truncated zip": (_truncate, "calc 1.1.0"),
    "notes' zip served as calc": (_serve_notes_as_calc, "calc 1.1.0"),
    "the previous version's zip": (_serve_the_old_calc, "calc 1.1.0"),
    "the index edited after signing": (_edit_the_index, "changed after signing"),
    "the index signed by another key": (_sign_with_another_key, "0 valid signatures"),
    "the older index replayed": (_replay_the_old_index, "rollback"),
}


@pytest.mark.parametrize("attack", TAMPERING, ids=TAMPERING)
def test_tampering_is_refused_and_changes_nothing(
    user: Path, published: Published, attack: str
) -> None:
    shutil.copy(published.site / "registry.json", published.site / "registry-v1.json")
    published.bump("calc", "1.1.0")
    published.build()
    assert deeting(user, "registry", "sync").returncode == 0  # the user has seen version 2
    before = installed_state(user)
    tamper, words = TAMPERING[attack]
    tamper(published)
    if tamper in (_edit_the_index, _sign_with_another_key, _replay_the_old_index):
        done = deeting(user, "registry", "sync")
    else:
        done = deeting(user, "plugin", "upgrade", "calc")
    assert done.returncode == 1, done.stdout
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("deeting: error: ") and words in line, line
    assert "Traceback" not in done.stderr
    assert installed_state(user) == before
    assert calc_says(user) == "2+3 = 5"


def test_an_upgrade_during_a_running_script_session(user: Path, published: Published) -> None:
    """Calls go in back to back (each line sent when the previous result arrived) while
    another process upgrades calc; the session keeps every call and none fails."""
    published.bump("calc", "1.1.0")
    published.build()
    assert deeting(user, "registry", "sync").returncode == 0

    session = subprocess.Popen(
        [*DEETING, "--script", "-", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "DEETING_HOME": str(user)},
        cwd=REPO,
    )
    assert session.stdin is not None and session.stdout is not None
    results: list[dict[str, object]] = []
    upgraded = threading.Event()
    sent = 0

    def send() -> None:
        nonlocal sent
        sent += 1
        assert session.stdin is not None
        session.stdin.write(f"/calc expr={sent}+1\n")
        session.stdin.flush()

    def upgrade() -> None:
        done = deeting(user, "plugin", "upgrade", "calc")
        assert done.returncode == 0, done.stderr
        upgraded.set()

    try:
        send()
        upgrader: threading.Thread | None = None
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, f"{len(results)} results; {results[-3:]}"
            line = session.stdout.readline()
            assert line, session.stderr.read() if session.stderr else "no output"
            event = orjson.loads(line)
            if event["type"] == "error":
                pytest.fail(f"a call failed during the upgrade: {event}")
            if event["type"] != "tool_result":
                continue
            results.append(event)
            if len(results) == 5:
                upgrader = threading.Thread(target=upgrade)
                upgrader.start()
            switched = "(calc 1.1.0)" in str(event["text"])
            if upgraded.is_set() and switched and len(results) >= 10:
                break
            send()
    finally:
        if session.stdin is not None:
            session.stdin.close()
        try:
            code = session.wait(timeout=60)
        except subprocess.TimeoutExpired:
            session.kill()
            session.wait()
            code = None
        stderr = session.stderr.read() if session.stderr else ""
        if upgrader is not None:
            upgrader.join(timeout=60)
    assert code == 0, f"deeting --script did not end cleanly ({code}): {stderr}"
    assert all(result["ok"] for result in results)
    texts = [str(r["text"]) for r in results]
    assert texts[0] == "1+1 = 2" and texts[-1].endswith("(calc 1.1.0)")
    assert [t.split(" = ")[0] for t in texts] == [f"{i}+1" for i in range(1, len(texts) + 1)]
    # The session holds every call and result, in order, in one session.
    session_ids = {r["session_id"] for r in results}
    assert len(session_ids) == 1


def test_a_first_sync_without_root_says_it_trusts_on_first_use(
    home: Path, published: Published
) -> None:
    done = deeting(home, "registry", "sync", "--url", published.registry_url)
    assert done.returncode == 0, done.stderr
    assert "trusting the registry's own root.json on first use" in done.stderr
    assert "--root FILE" in done.stderr and "registry 1 from" in done.stdout
    again = deeting(home, "registry", "sync")
    assert again.returncode == 0 and again.stderr == ""
