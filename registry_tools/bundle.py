"""The registry the wheel carries: ``python -m registry_tools.bundle``.

``deeting_tui/bundled/`` holds the official plugins (``plugins/*``) as a signed registry made
by gen_registry — ``root.json``, ``registry.json``, ``artifacts/*.zip`` — so a fresh install
has them offline, verified at install exactly as a download is (``deeting_tui/store/bundle.py``).
It is build output (git ignores it): hatch_build.py runs this for every wheel and editable
install, and ``./dev.sh`` before it runs deeting.

The signing key: ``DEETING_BUNDLE_KEY=FILE`` (a release build signs with the official
registry's key, so the bundle's root IS the official root, ``deeting_tui/store/official``);
otherwise a key made for this one build and then forgotten, whose root ships in the bundle.
Either way the bundle's trust comes from the wheel itself (pip checks the wheel's hash, and
whoever can change files in site-packages can change deeting's code too): the signatures
catch damage and a zip swapped on its own, not an attacker who owns the installation.
For the same reason the registry expires in ten years, not thirty days: a freeze attack
(replaying a stale index) means nothing for files that ship inside the package.

A stamp over the inputs (every plugin file, and which key) makes a repeat free.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from nacl.signing import SigningKey

from deeting_tui.terminal_text import neutralise_line
from registry_tools import ToolError
from registry_tools.gen_registry import generate
from registry_tools.keys import build_root, load_signing_key, write_root

__all__ = ["BUNDLE_DIR", "OFFICIAL_ROOT", "build_bundle", "inputs_stamp", "main"]

BUNDLE_DIR = Path("deeting_tui", "bundled")
OFFICIAL_ROOT = Path("deeting_tui", "store", "official", "root.json")
PLUGINS_DIR = Path("plugins")
#: Ten years: see the module's docstring.
EXPIRES_DAYS = 3650
KEY_ENV = "DEETING_BUNDLE_KEY"
SKIPPED = {"__pycache__", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".DS_Store"}


def inputs_stamp(plugins: Path, key: Path | None) -> str:
    """``.built-`` and 16 hex digits of a hash over every plugin file (path and bytes) and the
    key's public half (a one-off key: "one-off"), so an edit or another key rebuilds."""
    digest = hashlib.sha256()
    for path in sorted(plugins.rglob("*")):
        relative = path.relative_to(plugins)
        if SKIPPED & set(relative.parts) or path.suffix in (".pyc", ".pyo") or path.is_dir():
            continue
        digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    if key is None:
        digest.update(b"one-off")
    else:
        digest.update(bytes(load_signing_key(key).verify_key))
    return f".built-{digest.hexdigest()[:16]}"


def build_bundle(
    root: Path, *, key: Path | None, progress: object = print, force: bool = False
) -> tuple[Path, bool]:
    """Build ``root/deeting_tui/bundled`` from ``root/plugins``; returns it and whether it
    was built (False: the stamp says it is current)."""
    say = progress if callable(progress) else print
    plugins, out = root / PLUGINS_DIR, root / BUNDLE_DIR
    if not plugins.is_dir():
        raise ToolError(f"{plugins} is missing: the bundle is built from a deeting checkout")
    stamp = inputs_stamp(plugins, key)
    if not force and (out / stamp).is_file() and (out / "registry.json").is_file():
        return out, False
    now = datetime.now(UTC).replace(microsecond=0)
    work = out.with_name(f".{out.name}.{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        if key is not None:
            signing_key = load_signing_key(key)
            root_path = root / OFFICIAL_ROOT
            label = key.name
            say(f"deeting bundle: signing with {key} (the official registry's root)")
        else:
            signing_key = SigningKey.generate()
            public = bytes(signing_key.verify_key)
            raw, version = build_root(
                [public], 1, [signing_key], now=now, expires_days=EXPIRES_DAYS
            )
            write_root(work / "keys", raw, version)
            root_path = work / "keys" / "root.json"
            label = "a one-off key"
            say(
                "deeting bundle: signing with a one-off key whose root ships in the bundle "
                f"(its trust is the wheel's own; set {KEY_ENV}=FILE to sign with the "
                "official registry's key)"
            )
        summary = generate(
            plugins,
            work / "site",
            root_path=root_path,
            signing_keys=[(label, signing_key)],
            now=now,
            expires_days=EXPIRES_DAYS,
            progress=lambda line: None,
        )
        (work / "site" / stamp).touch()
        old = out.with_name(f".{out.name}.old.{os.getpid()}")
        if out.exists():
            out.rename(old)
        (work / "site").rename(out)
        shutil.rmtree(old, ignore_errors=True)
        plugins_built = len({a.name for a in summary.artifacts})
        say(f"deeting bundle: {out}: {plugins_built} plugins, signed, valid ten years")
        return out, True
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m registry_tools.bundle",
        description="Build deeting_tui/bundled (the official plugins, signed) from plugins/.",
    )
    parser.add_argument("--root-dir", type=Path, default=Path("."), help="the checkout")
    parser.add_argument("--force", action="store_true", help="rebuild even when current")
    args = parser.parse_args(argv)
    key_text = os.environ.get(KEY_ENV)
    key = Path(key_text) if key_text else None

    def say(line: str) -> None:
        print(neutralise_line(line), file=sys.stderr, flush=True)

    try:
        build_bundle(args.root_dir, key=key, progress=say, force=args.force)
    except ToolError as error:
        say(f"deeting bundle: error: {error}")
        return 1
    except OSError as error:
        say(f"deeting bundle: error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
