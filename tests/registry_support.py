"""A registry made in the test: keys, a root, plugin zips, signed indexes, served from a folder.

Built with ``deeting_tui.store.signing``'s own ``envelope`` and signatures, so it is exactly what
``registry_tools`` publishes, but every field can be bent for an attack: a test changes one
thing and checks the client refuses it with nothing changed.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nacl.signing import SigningKey
from support import FIXTURES, REPO

from deeting_tui.paths import resolve_paths
from deeting_tui.store.client import Limits, RegistryClient
from deeting_tui.store.signing import (
    artifact_message,
    envelope,
    format_time,
    key_id,
    signatures_for,
)

if TYPE_CHECKING:
    from deeting_tui.kernel.kernel import Kernel
    from deeting_tui.kernel.plugins import PluginService

#: "Now" for the clients under test: the real time (so a client on the real clock agrees),
#: read once, so every expiry in a test is relative to one instant.
NOW = datetime.now(UTC).replace(microsecond=0)
PLUGIN = "echo-fixture"


def client_at(home: Path, days: float = 0, **limits: Any) -> RegistryClient:
    """The client of the Deeting home ``home``, its clock ``days`` after NOW."""
    return RegistryClient(
        resolve_paths({"DEETING_HOME": str(home)}),
        clock=lambda: NOW + timedelta(days=days),
        limits=Limits(**limits),
    )


def installed_of(kernel: Kernel) -> list[tuple[str, str]]:
    """The registry installs of ``kernel`` as (name, version): what a sync checks for updates."""
    return [(r.name, r.version) for r in kernel.installed.all() if not r.dev]


def plugins_with(kernel: Kernel, client: RegistryClient) -> PluginService:
    """The kernel's plugin service, reaching the registry through ``client``."""
    kernel.plugins.registry = client
    return kernel.plugins


def source(name: str, version: str | None) -> str:
    return name if version is None else f"{name}@{version}"


def stored(home: Path) -> dict[str, bytes]:
    """Everything the client keeps about its registry, to compare before and after."""
    folder = home / "data" / "registry"
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.json"))}


def plugin_source(folder: Path, version: str, *, name: str = PLUGIN, marker: str = "") -> Path:
    """A copy of the good fixture plugin at ``version`` (and another name, if asked).
    ``marker`` is appended to its echo replies, so a test can tell versions apart."""
    target = folder / f"{name}-{version}"
    shutil.rmtree(target, ignore_errors=True)  # a rebuild of the same version
    shutil.copytree(FIXTURES / "good_plugin", target, ignore=shutil.ignore_patterns("__pycache__"))
    for manifest in ("package.json", "kimai.json"):
        path = target / manifest
        data = json.loads(path.read_text())
        data["name"], data["version"] = name, version
        if manifest == "kimai.json" and name != PLUGIN:
            data.pop("trigger", None)
        path.write_text(json.dumps(data, indent=2))
    if marker:
        index = target / "src" / "index.py"
        index.write_text(index.read_text() + f"\nVERSION_MARKER = {marker!r}\n")
    return target


def zip_plugin(source: Path) -> bytes:
    """Sorted entries, fixed times: the same bytes for the same folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                info = zipfile.ZipInfo(str(path.relative_to(source)), (1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


class TestRegistry:
    """A registry folder: root.json, roots/N.root.json, artifacts/ and registry.json."""

    __test__ = False  # not a pytest class

    def __init__(self, folder: Path, *, keys: int = 1, threshold: int = 1) -> None:
        self.folder = folder
        (folder / "artifacts").mkdir(parents=True)
        (folder / "roots").mkdir()
        self.keys = [SigningKey.generate() for _ in range(keys)]
        self.threshold = threshold
        self.root_version = 0
        self.root_bytes = self.make_root(self.keys, threshold, signers=self.keys)
        self.version = 0
        self.entries: dict[str, dict[str, dict[str, Any]]] = {}
        self.sources = folder.parent / f"{folder.name}-sources"
        self.sources.mkdir()

    @property
    def url(self) -> str:
        return (self.folder / "registry.json").as_uri()

    @property
    def root_file(self) -> Path:
        return self.folder / "root.json"

    def make_root(
        self,
        keys: Sequence[SigningKey],
        threshold: int,
        *,
        signers: Sequence[SigningKey],
        expires: datetime = NOW + timedelta(days=365),
    ) -> bytes:
        """The next root version, written as root.json and roots/N.root.json."""
        self.root_version += 1
        document = {
            "_type": "deeting-root",
            "spec_version": 1,
            "version": self.root_version,
            "expires": format_time(expires),
            "threshold": threshold,
            "keys": {
                key_id(bytes(k.verify_key)): {
                    "keytype": "ed25519",
                    "public": bytes(k.verify_key).hex(),
                }
                for k in keys
            },
        }
        raw = envelope(document, signers)
        (self.folder / "root.json").write_bytes(raw)
        (self.folder / "roots" / f"{self.root_version}.root.json").write_bytes(raw)
        return raw

    def add(
        self,
        version: str,
        *,
        name: str = PLUGIN,
        data: bytes | None = None,
        signers: Sequence[SigningKey] | None = None,
    ) -> dict[str, Any]:
        """Build (or take) an artifact and list it; returns its registry entry."""
        if data is None:
            data = zip_plugin(plugin_source(self.sources, version, name=name, marker=version))
        file_name = f"{name}-{version}.zip"
        (self.folder / "artifacts" / file_name).write_bytes(data)
        sha256 = hashlib.sha256(data).hexdigest()
        message = artifact_message(name, version, sha256, len(data))
        entry = {
            "sha256": sha256,
            "length": len(data),
            "url": f"artifacts/{file_name}",
            "signatures": signatures_for(message, signers or self.keys),
        }
        self.entries.setdefault(name, {})[version] = entry
        return entry

    def publish(
        self,
        *,
        expires: datetime = NOW + timedelta(days=30),
        signers: Sequence[SigningKey] | None = None,
        version: int | None = None,
        edit: Callable[[dict[str, Any]], None] | None = None,
    ) -> bytes:
        """Sign and write registry.json (version + 1 unless given); returns its bytes."""
        self.version = version if version is not None else self.version + 1
        document: dict[str, Any] = {
            "_type": "deeting-registry",
            "spec_version": 1,
            "version": self.version,
            "expires": format_time(expires),
            "root_version": self.root_version,
            "plugins": {
                name: {
                    "description": "a test plugin",
                    "permissions": [],
                    "versions": dict(versions),
                }
                for name, versions in self.entries.items()
            },
        }
        if edit is not None:
            edit(document)
        raw = envelope(document, signers or self.keys)
        (self.folder / "registry.json").write_bytes(raw)
        return raw


def registry_tool(*args: str, timeout: float = 120) -> str:
    """``python -m ARGS`` from the checkout (a registry_tools command, as a maintainer runs
    it); its stdout, after asserting it succeeded."""
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def maintainer_keys(keys: Path) -> None:
    """A maintainer's key ``maintainer.key`` and the root it signs (one key, threshold 1) in
    ``keys``, made with the CLI the README shows."""
    registry_tool("registry_tools.keys", "new", "maintainer", "--dir", str(keys))
    registry_tool(
        "registry_tools.keys", "root", "--key", str(keys / "maintainer.pub"),
        "--threshold", "1", "--sign", str(keys / "maintainer.key"), "--out", str(keys),
    )  # fmt: skip
