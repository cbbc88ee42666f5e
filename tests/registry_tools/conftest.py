"""Keys, roots and plugin sources in tmp for the registry tool tests; nothing global."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from registry_tools.gen_registry import Summary, generate
from registry_tools.keys import build_root, generate_key, load_public_key, write_root

REPO = Path(__file__).resolve().parents[2]
OFFICIAL = REPO / "plugins"


@dataclass(frozen=True)
class KeyPair:
    name: str
    secret: Path
    public: Path

    @property
    def signing_key(self) -> SigningKey:
        return SigningKey(bytes.fromhex(self.secret.read_text().strip()))


class Keyring:
    """Key pairs made on first use by the real ``generate_key``, all in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._pairs: dict[str, KeyPair] = {}

    def __getitem__(self, name: str) -> KeyPair:
        if name not in self._pairs:
            secret, public, _ = generate_key(name, self.folder)
            self._pairs[name] = KeyPair(name, secret, public)
        return self._pairs[name]

    def root(
        self,
        keys: Sequence[str],
        threshold: int,
        signers: Sequence[str] | None = None,
        *,
        now: datetime,
        out: Path | None = None,
        previous: Path | None = None,
        expires_days: int = 365,
    ) -> Path:
        """Write a root (or a rotation) with the library functions; returns root.json."""
        out = out or self.folder
        previous_raw = previous.read_bytes() if previous else None
        raw, version = build_root(
            [load_public_key(self[k].public) for k in keys],
            threshold,
            [self[s].signing_key for s in (signers or keys)],
            now=now,
            expires_days=expires_days,
            previous=previous_raw,
        )
        write_root(out, raw, version, previous=previous_raw)
        return out / "root.json"


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring(tmp_path / "keys")


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """A private copy of the official plugins, free to edit."""
    folder = tmp_path / "src"
    shutil.copytree(OFFICIAL, folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return folder


Build = Callable[..., Summary]


@pytest.fixture
def build(tmp_path: Path, sources: Path, keyring: Keyring, now: datetime) -> Build:
    """``generate`` into tmp/out with alice (a 1-of-1 root made on first use)."""

    def run(
        *,
        out: Path | None = None,
        keys: Sequence[str] = ("alice",),
        root: Path | None = None,
        when: datetime | None = None,
        plugins: Path | None = None,
        **options: Any,
    ) -> Summary:
        if root is None:
            root = keyring.folder / "root.json"
            if not root.exists():
                keyring.root(["alice"], 1, now=now)
        return generate(
            plugins or sources,
            out or tmp_path / "out",
            root_path=root,
            signing_keys=[(k, keyring[k].signing_key) for k in keys],
            now=when or now,
            **options,
        )

    return run


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: 'nothing changed' is an equality."""
    if not folder.exists():
        return {}
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _run_tool(module: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    env.pop("DEETING_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", f"registry_tools.{module}", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


@pytest.fixture
def snapshot() -> Callable[[Path], dict[str, bytes]]:
    return _snapshot


@pytest.fixture
def run_tool() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``sys.executable -m registry_tools.MODULE ARGS…`` from the repo root."""
    return _run_tool
