"""Signing keys and the root of trust: ``python -m registry_tools.keys new|root``.

``new NAME`` makes an Ed25519 key pair: ``NAME.key`` holds the 32-byte seed as hex (mode
0600, never overwritten: losing a key to a typo is worse than a refusal) and ``NAME.pub`` the
public key as hex. ``root`` writes the ``root.json`` that clients pin: which keys may sign the
registry, and how many of them must (the threshold). A root is only written after
``trust.verify_root`` (first root) or ``trust.verify_new_root`` (rotation) accepts it, so a
root this tool writes is a root every client accepts; a rotation must carry a threshold of
signatures from the previous root's keys *and* from its own.

Roots are kept as ``DIR/roots/V.root.json`` beside ``DIR/root.json`` so a client pinned to an
old root can walk the chain of rotations up to the current one.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nacl.signing import SigningKey

from deeting_tui.atomic import write_bytes_atomic
from deeting_tui.store import signing, trust
from registry_tools import ToolError

__all__ = [
    "build_root",
    "generate_key",
    "load_public_key",
    "load_signing_key",
    "main",
    "root_chain_path",
    "write_root",
]

SECRET_SUFFIX, PUBLIC_SUFFIX = ".key", ".pub"
KEY_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SEED_BYTES = 32
ROOT_FILE, ROOTS_DIR = "root.json", "roots"


# -- key files ----------------------------------------------------------------------------


def generate_key(name: str, directory: Path) -> tuple[Path, Path, str]:
    """Write ``NAME.key`` (0600) and ``NAME.pub``; returns both paths and the key id."""
    if not KEY_NAME_RE.fullmatch(name) or name.endswith((SECRET_SUFFIX, PUBLIC_SUFFIX)):
        raise ToolError(
            f"{name!r} is not a key name: use letters, digits, '.', '_' or '-' "
            "(no folders, no .key/.pub suffix; put the folder in --dir)"
        )
    secret_path = directory / f"{name}{SECRET_SUFFIX}"
    public_path = directory / f"{name}{PUBLIC_SUFFIX}"
    for path in (secret_path, public_path):
        if path.exists() or path.is_symlink():
            raise ToolError(
                f"{path} already exists — refusing to overwrite a key; pick another NAME or --dir"
            )
    directory.mkdir(parents=True, exist_ok=True)
    signing_key = SigningKey.generate()
    public = bytes(signing_key.verify_key)
    _write_new(secret_path, bytes(signing_key).hex().encode() + b"\n", 0o600)
    try:
        _write_new(public_path, public.hex().encode() + b"\n", 0o644)
    except BaseException:
        secret_path.unlink(missing_ok=True)
        raise
    return secret_path, public_path, signing.key_id(public)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """O_EXCL: even a file that appeared since the check above is never overwritten."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise ToolError(f"{path} already exists — refusing to overwrite a key") from None
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), mode)  # the umask must not loosen a secret key
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _read_hex32(path: Path, what: str) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise ToolError(f"{path}: no such {what} file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ToolError(f"{path}: cannot read the {what} ({error})") from None
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != SEED_BYTES:
        raise ToolError(
            f"{path}: not a {what} made by `python -m registry_tools.keys new` "
            "(expected 64 hex digits)"
        )
    return raw


def load_signing_key(path: Path) -> SigningKey:
    """A ``.key`` file; a ``.pub`` given by mistake is named as such, not misread."""
    if path.suffix == PUBLIC_SUFFIX:
        raise ToolError(f"{path} is a public key; signing needs the secret {SECRET_SUFFIX} file")
    return SigningKey(_read_hex32(path, "secret key"))


def load_public_key(path: Path) -> bytes:
    """A ``.pub`` file. A ``.key`` holds a seed, which would parse as a (wrong) public key."""
    if path.suffix == SECRET_SUFFIX:
        raise ToolError(
            f"{path} is a secret key; name the public {PUBLIC_SUFFIX} file here (and keep "
            "the secret one out of root.json's folder)"
        )
    return _read_hex32(path, "public key")


# -- roots --------------------------------------------------------------------------------


def build_root(
    public_keys: Sequence[bytes],
    threshold: int,
    signing_keys: Sequence[SigningKey],
    *,
    now: datetime,
    expires_days: int = 365,
    previous: bytes | None = None,
    labels: Mapping[str, str] | None = None,
) -> tuple[bytes, int]:
    """The signed root (envelope bytes) and its version, or a ToolError naming what is missing.

    ``labels`` maps key ids to file names, so a refusal can say which ``--sign`` to add.
    """
    labels = labels or {}
    keys = _distinct_keys(public_keys, labels)
    if not 1 <= threshold <= len(keys):
        raise ToolError(f"--threshold {threshold} must be between 1 and the {len(keys)} keys given")
    if expires_days < 1:
        raise ToolError(f"--expires-days {expires_days} must be at least 1")
    old = _parse_previous(previous)
    signers = {signing.key_id(bytes(k.verify_key)): k for k in signing_keys}  # repeats count once
    trusted = set(keys) | (set(old.keys) if old else set())
    for keyid in signers:
        if keyid not in trusted:
            where = "the new root nor the previous one" if old else "the root's --key list"
            raise ToolError(
                f"signing key {_label(keyid, labels)} is not in {where} — drop that --sign "
                "or add its .pub with --key"
            )
    shortfalls = [_shortfall(set(signers), keys, threshold, "its own keys", labels)]
    if old is not None:
        shortfalls.insert(
            0, _shortfall(set(signers), old.keys, old.threshold, "the previous root's keys", labels)
        )
    missing = [text for text in shortfalls if text]
    if missing:
        raise ToolError("refusing to write the root: " + "; ".join(missing))
    version = old.version + 1 if old else 1
    document = {
        "_type": signing.ROOT_TYPE,
        "spec_version": signing.SPEC_VERSION,
        "version": version,
        "expires": trust.format_time(now + timedelta(days=expires_days)),
        "threshold": threshold,
        "keys": {
            keyid: {"keytype": "ed25519", "public": public.hex()} for keyid, public in keys.items()
        },
    }
    raw = signing.envelope(document, signers.values())
    try:  # the client's own rules have the last word
        if old is not None:
            trust.verify_new_root(old, raw)
        trust.verify_root(raw, now=now, what="the new root")
    except trust.TrustError as error:
        raise ToolError(f"refusing to write the root: {error}") from None
    return raw, version


def _distinct_keys(public_keys: Sequence[bytes], labels: Mapping[str, str]) -> dict[str, bytes]:
    if not public_keys:
        raise ToolError("a root needs at least one --key FILE.pub")
    keys: dict[str, bytes] = {}
    for public in public_keys:
        keyid = signing.key_id(public)
        if keyid in keys:
            raise ToolError(f"key {_label(keyid, labels)} is given twice with --key")
        keys[keyid] = public
    return keys


def _parse_previous(previous: bytes | None) -> trust.Root | None:
    if previous is None:
        return None
    try:
        old, _signed, _signatures = trust.parse_root(previous, "the previous root")
    except trust.TrustError as error:
        raise ToolError(f"--previous: {error}") from None
    return old


def _shortfall(
    signers: set[str],
    keys: Mapping[str, bytes],
    threshold: int,
    whose: str,
    labels: Mapping[str, str],
) -> str | None:
    """Counted by distinct public key, as the client counts (one key under two ids is one)."""
    have = {keys[keyid] for keyid in signers if keyid in keys}
    if len(have) >= threshold:
        return None
    unused = sorted(_label(k, labels) for k, public in keys.items() if public not in have)
    need = threshold - len(have)
    return (
        f"it needs {threshold} signature{'s' if threshold != 1 else ''} from {whose} and "
        f"--sign gives {len(have)} — add --sign for {need} more of: {', '.join(unused)}"
    )


def _label(keyid: str, labels: Mapping[str, str]) -> str:
    name = labels.get(keyid)
    return f"{keyid[:12]} ({name})" if name else keyid[:12]


def root_chain_path(folder: Path, version: int) -> Path:
    return folder / ROOTS_DIR / f"{version}.root.json"


def write_root(out: Path, raw: bytes, version: int, *, previous: bytes | None = None) -> list[Path]:
    """``out/root.json`` and ``out/roots/V.root.json`` (and the previous root into the chain
    when it is missing there). Every conflict is found before the first write."""
    current = out / ROOT_FILE
    chain = root_chain_path(out, version)
    writes: list[tuple[Path, bytes]] = []
    if previous is None:
        if current.exists():
            raise ToolError(
                f"{current} already exists — to rotate keys, run again with --previous {current}"
            )
    else:
        if current.exists() and current.read_bytes() != previous:
            raise ToolError(
                f"{current} is not the --previous root; rotate from the root in {out} "
                f"(--previous {current}) or write to another --out"
            )
        before = root_chain_path(out, version - 1)
        if before.exists() and before.read_bytes() != previous:
            raise ToolError(f"{before} differs from the --previous root; the chain would break")
        if not before.exists():
            writes.append((before, previous))
    if chain.exists():
        raise ToolError(f"{chain} already exists — a root version is never reissued")
    writes += [(chain, raw), (current, raw)]
    for path, data in writes:
        write_bytes_atomic(path, data, mode=0o644)
    return [path for path, _ in writes]


# -- command line -------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m registry_tools.keys",
        description="Make registry signing keys and the root.json that clients pin.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    new = commands.add_parser(
        "new", help="make an Ed25519 key pair: DIR/NAME.key (secret) and DIR/NAME.pub"
    )
    new.add_argument("name", metavar="NAME")
    new.add_argument("--dir", type=Path, default=Path("."), help="folder for the files (.)")
    root = commands.add_parser(
        "root", help="write DIR/root.json naming the trusted keys and the threshold"
    )
    root.add_argument(
        "--key", type=Path, action="append", required=True, metavar="PUB", help="a trusted .pub"
    )
    root.add_argument("--threshold", type=int, required=True, metavar="N")
    root.add_argument(
        "--sign",
        type=Path,
        action="append",
        required=True,
        metavar="KEY",
        help="a .key to sign with (rotation: enough old AND new keys)",
    )
    root.add_argument("--out", type=Path, required=True, metavar="DIR")
    root.add_argument("--expires-days", type=int, default=365, metavar="DAYS")
    root.add_argument(
        "--previous", type=Path, metavar="ROOT", help="the root being rotated away from"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "new":
            secret, public, keyid = generate_key(args.name, args.dir)
            print(
                f"wrote {secret} (secret, mode 0600: keep it out of version control) and {public}",
                file=sys.stderr,
            )
            print(keyid)
        else:
            _root_command(args)
    except ToolError as error:
        print(f"keys: error: {error}", file=sys.stderr)
        return 1
    return 0


def _root_command(args: argparse.Namespace) -> None:
    labels: dict[str, str] = {}
    public_keys = []
    for path in args.key:
        public = load_public_key(path)
        labels.setdefault(signing.key_id(public), path.name)
        public_keys.append(public)
    signing_keys = []
    for path in args.sign:
        signing_key = load_signing_key(path)
        labels.setdefault(signing.key_id(bytes(signing_key.verify_key)), path.name)
        signing_keys.append(signing_key)
    previous = None
    if args.previous is not None:
        try:
            previous = args.previous.read_bytes()
        except OSError as error:
            raise ToolError(f"--previous {args.previous}: {error.strerror or error}") from None
    now = datetime.now(UTC).replace(microsecond=0)
    raw, version = build_root(
        public_keys,
        args.threshold,
        signing_keys,
        now=now,
        expires_days=args.expires_days,
        previous=previous,
        labels=labels,
    )
    written = write_root(args.out, raw, version, previous=previous)
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    print(
        f"root version {version}: {args.threshold} of {len(public_keys)} keys, expires "
        f"{trust.format_time(now + timedelta(days=args.expires_days))} → {args.out / ROOT_FILE}"
    )


if __name__ == "__main__":
    sys.exit(main())
