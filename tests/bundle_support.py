"""A bundle of the official plugins (``plugins/*``), built as the wheel's is, for tests.

registry_tools.bundle builds ``deeting_tui/bundled`` for the wheel; tests never depend on
whether ./dev.sh built that one (conftest turns it off with ``DEETING_BUNDLE=""``): they
build their own here, once per session, and point ``DEETING_BUNDLE`` at a private copy
they may damage.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from nacl.signing import SigningKey

from registry_tools.gen_registry import generate
from registry_tools.keys import build_root, write_root

REPO = Path(__file__).resolve().parents[1]
DEFAULTS = ("calc", "clock", "notes")  # no permission, nothing that needs consent
OTHERS = ("sysinfo", "weather")


def official_version(name: str) -> str:
    """The version of an official plugin as its manifest says (what the bundle carries)."""
    manifest = json.loads((REPO / "plugins" / name / "kimai.json").read_text())
    return str(manifest["version"])


@cache
def _built(cache_dir: Path) -> Path:
    now = datetime.now(UTC).replace(microsecond=0)
    key = SigningKey.generate()
    raw, version = build_root([bytes(key.verify_key)], 1, [key], now=now, expires_days=3650)
    write_root(cache_dir / "keys", raw, version)
    site = cache_dir / "site"
    generate(
        REPO / "plugins",
        site,
        root_path=cache_dir / "keys" / "root.json",
        signing_keys=[("test", key)],
        now=now,
        expires_days=3650,
    )
    return site


def make_bundle(folder: Path, cache_dir: Path) -> Path:
    """A private copy of the session's bundle at ``folder``."""
    shutil.copytree(_built(cache_dir), folder)
    return folder
