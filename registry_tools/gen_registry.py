"""Build a signed registry from plugin sources: ``python -m registry_tools.gen_registry``.

Each subfolder of PLUGINS_DIR is linted the way the kernel judges an install, packed into a
reproducible zip (sorted entries, one top folder, fixed timestamps, normalised modes, a fixed
deflate level), hashed, and signed as ``name@version:sha256:length``. ``registry.json`` lists
every artifact with its URL, hash, length, signatures, description and permissions, carries a
version one above the previous run's and an expiry, and is signed over its exact bytes.

A plugin with a ``requirements.txt`` (a complete lock of exact pins) gets its wheels, fetched
with pip for each ``--target`` (wheels only, ``--no-deps``: nothing from a dependency runs; the
lock's closure is checked from the wheels' METADATA), stored in the zip at
``NAME/wheels/*.whl`` as downloaded. Refused with one line: a loose pin, a pin with no wheel
for a target (an sdist is never built), a dependency the lock leaves out. A plugin without one
zips exactly as before.

Published artifacts never change: versions listed by the previous ``registry.json`` whose zip
is still in ``OUT/artifacts`` stay listed (clients can pin and roll back), and a zip that
would be rebuilt with other bytes under the same version is refused ("bump the version").
Everything is checked with the client's own ``trust`` rules before the first byte is
written, and ``registry.json`` is written last, atomically: it is the commit point. The zips
are ``reprozip.py``'s, the choice of artifacts (fresh or kept) ``artifacts.py``'s; this
module signs the index, checks it, and writes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import orjson
from nacl.signing import SigningKey

from deeting_tui.atomic import write_bytes_atomic
from deeting_tui.plugin.wheel_fetch import DEFAULT_TARGETS, Target
from deeting_tui.store import signing, trust
from deeting_tui.terminal_text import neutralise_line
from registry_tools import ToolError
from registry_tools.artifacts import (
    ARTIFACTS_DIR,
    LintFailure,
    Packed,
    Progress,
    check_published,
    from_sources,
    kept_artifacts,
)
from registry_tools.keys import ROOT_FILE, ROOTS_DIR, load_signing_key, root_chain_path

__all__ = ["Summary", "generate", "main"]

REGISTRY_FILE = "registry.json"


@dataclass(frozen=True)
class Summary:
    path: Path
    version: int
    expires: datetime
    artifacts: tuple[Packed, ...]

    def __str__(self) -> str:
        plugins = len({a.name for a in self.artifacts})
        kept = sum(a.kept for a in self.artifacts)
        return (
            f"{self.path} version {self.version}: {plugins} plugin{'s' * (plugins != 1)}, "
            f"{len(self.artifacts)} version{'s' * (len(self.artifacts) != 1)} "
            f"({len(self.artifacts) - kept} from source, {kept} kept), "
            f"expires {trust.format_time(self.expires)}"
        )


# -- the run ------------------------------------------------------------------------------


def generate(
    plugins_dir: Path,
    out: Path,
    *,
    root_path: Path,
    signing_keys: Sequence[tuple[str, SigningKey]],
    now: datetime,
    base_url: str | None = None,
    expires_days: int = 30,
    progress: Progress = lambda line: None,
    targets: Sequence[Target] = DEFAULT_TARGETS,
) -> Summary:
    """Check everything, then write artifacts, roots and finally ``registry.json``.

    ``signing_keys`` pairs each key with a label (its file name) for error messages.
    """
    if expires_days < 1:
        raise ToolError(f"--expires-days {expires_days} must be at least 1")
    base = _base_url(base_url)
    root_raw = _read(root_path, "--root")
    try:
        root = trust.verify_root(root_raw, now=now, what=str(root_path))
    except trust.TrustError as error:
        raise ToolError(
            f"{error} — fix or rotate it with python -m registry_tools.keys root"
        ) from None
    keys = _check_keys(signing_keys, root)
    previous_version, listed = _previous(out / REGISTRY_FILE)
    fresh = from_sources(plugins_dir, out, progress, targets)
    artifacts = fresh + kept_artifacts(out, listed, {(a.name, a.version) for a in fresh}, progress)
    check_published(out, fresh)
    version = previous_version + 1
    expires = now + timedelta(days=expires_days)
    raw = _registry_bytes(artifacts, version, expires, root.version, base, keys)
    _verify(raw, artifacts, root, now, previous_version)
    if root.expires < expires:
        progress(f"warning: {root_path} expires before this registry does; rotate it soon")
    pending = [(out / ARTIFACTS_DIR / a.file_name, a.data) for a in fresh]
    pending += _root_writes(root_path, root_raw, root, out)
    for path, data in pending:
        if not (path.is_file() and path.read_bytes() == data):
            write_bytes_atomic(path, data, mode=0o644)
    write_bytes_atomic(out / REGISTRY_FILE, raw, mode=0o644)
    return Summary(out / REGISTRY_FILE, version, expires, tuple(artifacts))


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ToolError(f"{what} {path}: {error.strerror or error}") from None


def _base_url(base_url: str | None) -> str | None:
    if base_url is None:
        return None
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https", "file") or (
        parts.scheme != "file" and not parts.netloc
    ):
        raise ToolError(
            f"--base-url {base_url!r} must be an http(s):// or file:// URL (the folder that "
            "holds registry.json)"
        )
    return base_url.rstrip("/")


def _check_keys(
    signing_keys: Sequence[tuple[str, SigningKey]], root: trust.Root
) -> list[SigningKey]:
    """Every key must be the root's, and together they must reach its threshold."""
    chosen: dict[bytes, SigningKey] = {}
    for label, key in signing_keys:
        public = bytes(key.verify_key)
        if public not in root.keys.values():
            raise ToolError(
                f"--key {label} (key {signing.key_id(public)[:12]}) is not one of the root's "
                "keys — sign with a key listed in root.json"
            )
        chosen[public] = key
    if len(chosen) < root.threshold:
        unused = sorted(k[:12] for k, public in root.keys.items() if public not in chosen)
        raise ToolError(
            f"the root needs {root.threshold} signatures and --key gives {len(chosen)} — add "
            f"--key for {root.threshold - len(chosen)} more of: {', '.join(unused)}"
        )
    return list(chosen.values())


def _previous(path: Path) -> tuple[int, dict[str, list[str]]]:
    """The last run's version and listed versions. Its signatures are not checked: it may
    be expired or signed by a rotated-out key, and kept zips are re-hashed from disk anyway;
    names and versions are validated because they become file names."""
    if not path.exists():
        return 0, {}
    hint = "move it away or choose another --out"
    try:
        document = orjson.loads(orjson.loads(path.read_bytes())["signed"])
        version, plugins = document["version"], document["plugins"]
        if document.get("_type") != signing.REGISTRY_TYPE or not isinstance(version, int):
            raise ValueError("not a deeting-registry document")
        listed: dict[str, list[str]] = {}
        for name, entry in plugins.items():
            if trust.plugin_name_problem(name):
                raise ValueError(trust.plugin_name_problem(name))
            listed[name] = list(entry["versions"])
            for number in listed[name]:
                trust.version_key(number)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ToolError(f"{path} is not a registry this tool wrote ({error}) — {hint}") from None
    return version, listed


def _registry_bytes(
    artifacts: list[Packed],
    version: int,
    expires: datetime,
    root_version: int,
    base_url: str | None,
    keys: list[SigningKey],
) -> bytes:
    plugins: dict[str, dict[str, object]] = {}
    for name in sorted({a.name for a in artifacts}):
        mine = sorted(
            (a for a in artifacts if a.name == name), key=lambda a: trust.version_key(a.version)
        )
        versions = {}
        for a in mine:
            message = signing.artifact_message(a.name, a.version, a.sha256, len(a.data))
            relative = f"{ARTIFACTS_DIR}/{quote(a.file_name)}"
            versions[a.version] = {
                "sha256": a.sha256,
                "length": len(a.data),
                "url": f"{base_url}/{relative}" if base_url else relative,
                "signatures": signing.signatures_for(message, keys),
                "description": a.description,
                "permissions": list(a.permissions),
            }
        newest = mine[-1]
        plugins[name] = {
            "description": newest.description,
            "permissions": list(newest.permissions),
            "versions": versions,
        }
    document = {
        "_type": signing.REGISTRY_TYPE,
        "spec_version": signing.SPEC_VERSION,
        "version": version,
        "expires": trust.format_time(expires),
        "root_version": root_version,
        "plugins": plugins,
    }
    return signing.envelope(document, keys)


def _verify(
    raw: bytes, artifacts: list[Packed], root: trust.Root, now: datetime, previous: int
) -> None:
    """The client's checks, on exactly the bytes about to be published."""
    try:
        registry = trust.verify_registry(raw, root, now=now, seen_version=previous)
        for a in artifacts:
            trust.verify_artifact(a.data, registry.find(a.name, a.version), root)
    except trust.TrustError as error:
        raise ToolError(f"the registry would not verify: {error}") from None


def _root_writes(
    root_path: Path, root_raw: bytes, root: trust.Root, out: Path
) -> list[tuple[Path, bytes]]:
    """OUT/root.json and OUT/roots/ (with the chain beside --root, for clients pinned to an
    older root). A root never replaces a newer one, and one version never has two texts."""
    pending: list[tuple[Path, bytes]] = []
    chain_dir = root_path.parent / ROOTS_DIR
    sources = sorted(chain_dir.glob("*.root.json")) if chain_dir.is_dir() else []
    for source in sources:
        pending.append((out / chain_dir.name / source.name, source.read_bytes()))
    pending.append((root_chain_path(out, root.version), root_raw))
    for path, data in pending:
        if path.is_file() and path.read_bytes() != data:
            raise ToolError(f"{path} differs from {root_path}'s chain — two roots with one version")
    current = out / ROOT_FILE
    if current.is_file() and current.read_bytes() != root_raw:
        try:
            published, _signed, _sigs = trust.parse_root(current.read_bytes(), str(current))
        except trust.TrustError:
            published = None
        if published is not None and published.version >= root.version:
            raise ToolError(
                f"{current} is root version {published.version}, not older than --root's "
                f"{root.version} — build with --root {current}"
            )
    return [*pending, (current, root_raw)]


# -- command line -------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m registry_tools.gen_registry",
        description="Lint, pack, sign and index a folder of plugin sources into a registry.",
    )
    parser.add_argument(
        "plugins_dir", type=Path, metavar="PLUGINS_DIR", help="one plugin per folder"
    )
    parser.add_argument("--out", type=Path, required=True, metavar="OUT", help="registry folder")
    parser.add_argument("--root", type=Path, required=True, metavar="ROOT", help="root.json")
    parser.add_argument(
        "--key",
        type=Path,
        action="append",
        required=True,
        metavar="KEY",
        help="a .key to sign with",
    )
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help="absolute artifact URLs (default: relative to registry.json)",
    )
    parser.add_argument("--expires-days", type=int, default=30, metavar="DAYS")
    parser.add_argument(
        "--target",
        type=_target,
        action="append",
        metavar="PY-PLATFORM",
        help="a Python and platform to vendor the plugins' wheels for, e.g. "
        "3.12-manylinux_2_17_x86_64 (repeatable; default: "
        + ", ".join(str(t) for t in DEFAULT_TARGETS)
        + ")",
    )
    return parser


def _target(text: str) -> Target:
    try:
        return Target.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    now = datetime.now(UTC).replace(microsecond=0)  # one clock reading for the whole run

    def progress(line: str) -> None:  # names plugins and quotes their problems: neutralised
        print(neutralise_line(line), file=sys.stderr, flush=True)

    try:
        keys = [(path.name, load_signing_key(path)) for path in args.key]
        summary = generate(
            args.plugins_dir,
            args.out,
            root_path=args.root,
            signing_keys=keys,
            now=now,
            base_url=args.base_url,
            expires_days=args.expires_days,
            progress=progress,
            targets=args.target or DEFAULT_TARGETS,
        )
    except LintFailure as failure:
        for line in failure.problems:
            print(neutralise_line(line), file=sys.stderr)
        print(neutralise_line(f"gen_registry: error: {failure}"), file=sys.stderr)
        return 1
    except ToolError as error:
        print(neutralise_line(f"gen_registry: error: {error}"), file=sys.stderr)
        return 1
    except OSError as error:
        message = f"gen_registry: error: {error} — registry.json was not changed"
        print(neutralise_line(message), file=sys.stderr)
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
