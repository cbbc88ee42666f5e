"""keys.py: key pairs on disk, the first root, and rotation (accepted only with both sides)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from deeting_tui.store import signing, trust
from registry_tools import ToolError
from registry_tools.keys import build_root, generate_key, load_public_key, load_signing_key

Snapshot = Callable[[Path], dict[str, bytes]]
Keyring = Any  # conftest's Keyring: key pairs by name, .root(...) writes a root


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _signed(root_json: Path) -> dict[str, Any]:
    return json.loads(json.loads(root_json.read_bytes())["signed"])


# -- new ----------------------------------------------------------------------------------


def test_new_writes_a_0600_seed_and_its_public_key(tmp_path: Path, run_tool: Any) -> None:
    done = run_tool("keys", "new", "alice", "--dir", tmp_path / "k")
    assert done.returncode == 0, done.stderr
    secret, public = tmp_path / "k" / "alice.key", tmp_path / "k" / "alice.pub"
    assert _mode(secret) == 0o600
    assert _mode(public) == 0o644
    seed = bytes.fromhex(secret.read_text().strip())
    derived = bytes(SigningKey(seed).verify_key)
    assert public.read_text().strip() == derived.hex()
    assert done.stdout.strip() == signing.key_id(derived)
    assert "keep it out of version control" in done.stderr


def test_new_keeps_the_secret_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        secret, public, _ = generate_key("open", tmp_path)
    finally:
        os.umask(old)
    assert _mode(secret) == 0o600
    assert _mode(public) == 0o644


@pytest.mark.parametrize("existing", ["alice.key", "alice.pub"])
def test_new_never_overwrites_a_key(
    tmp_path: Path, existing: str, run_tool: Any, snapshot: Snapshot
) -> None:
    (tmp_path / existing).write_text("precious\n")
    before = snapshot(tmp_path)
    done = run_tool("keys", "new", "alice", "--dir", tmp_path)
    assert done.returncode == 1
    assert "already exists — refusing to overwrite a key" in done.stderr
    assert done.stdout == ""
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "alice.key", ""])
def test_new_refuses_names_that_are_not_plain_file_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ToolError, match="is not a key name"):
        generate_key(name, tmp_path / "k")
    assert not (tmp_path / "k").exists()


def test_loading_refuses_the_wrong_half_or_garbage(tmp_path: Path) -> None:
    secret, public, _ = generate_key("alice", tmp_path)
    with pytest.raises(ToolError, match=r"is a secret key; name the public \.pub"):
        load_public_key(secret)
    with pytest.raises(ToolError, match=r"is a public key; signing needs the secret \.key"):
        load_signing_key(public)
    (tmp_path / "short.key").write_text("abcd\n")
    with pytest.raises(ToolError, match="expected 64 hex digits"):
        load_signing_key(tmp_path / "short.key")
    with pytest.raises(ToolError, match="no such secret key file"):
        load_signing_key(tmp_path / "missing.key")


# -- the first root -----------------------------------------------------------------------


def test_root_command_writes_a_root_the_client_trusts(
    tmp_path: Path, keyring: Keyring, now: datetime, run_tool: Any
) -> None:
    a, b = keyring["alice"], keyring["bob"]
    out = tmp_path / "trust"
    done = run_tool(
        "keys", "root", "--key", a.public, "--key", b.public, "--threshold", "2",
        "--sign", a.secret, "--sign", b.secret, "--out", out, "--expires-days", "10",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    raw = (out / "root.json").read_bytes()
    assert (out / "roots" / "1.root.json").read_bytes() == raw
    root = trust.verify_root(raw, now=now)
    assert (root.version, root.threshold) == (1, 2)
    assert set(root.keys) == {signing.key_id(load_public_key(p)) for p in (a.public, b.public)}
    document = _signed(out / "root.json")
    assert document["_type"] == "deeting-root" and document["spec_version"] == 1
    assert all(entry["keytype"] == "ed25519" for entry in document["keys"].values())
    assert now + timedelta(days=10) <= root.expires <= now + timedelta(days=10, minutes=5)
    assert "root version 1: 2 of 2 keys" in done.stdout


def test_root_below_threshold_is_refused_and_names_the_missing_key(
    tmp_path: Path, keyring: Keyring, run_tool: Any
) -> None:
    a, b = keyring["alice"], keyring["bob"]
    done = run_tool(
        "keys", "root", "--key", a.public, "--key", b.public, "--threshold", "2",
        "--sign", a.secret, "--out", tmp_path / "trust",
    )  # fmt: skip
    assert done.returncode == 1
    assert "refusing to write the root: it needs 2 signatures from its own keys" in done.stderr
    assert "--sign gives 1 — add --sign for 1 more of:" in done.stderr
    assert "(bob.pub)" in done.stderr
    assert not (tmp_path / "trust").exists()


@pytest.mark.parametrize(
    ("keys", "threshold", "signers", "message"),
    [
        (["alice"], 2, ["alice"], "--threshold 2 must be between 1 and the 1 keys given"),
        (["alice"], 0, ["alice"], "--threshold 0 must be between 1"),
        (["alice", "alice"], 1, ["alice"], "is given twice with --key"),
        (["alice"], 1, ["alice", "mallory"], "is not in the root's --key list"),
        ([], 1, ["alice"], "a root needs at least one --key"),
    ],
)
def test_bad_root_requests_are_refused(
    keyring: Keyring,
    now: datetime,
    keys: list[str],
    threshold: int,
    signers: list[str],
    message: str,
) -> None:
    with pytest.raises(ToolError, match=message):
        build_root(
            [load_public_key(keyring[k].public) for k in keys],
            threshold,
            [keyring[s].signing_key for s in signers],
            now=now,
        )


def test_a_second_first_root_is_refused(
    keyring: Keyring, now: datetime, snapshot: Snapshot
) -> None:
    keyring.root(["alice"], 1, now=now)
    keyring["bob"]  # made before the snapshot: only the refused root may not appear
    before = snapshot(keyring.folder)
    with pytest.raises(ToolError, match="to rotate keys, run again with --previous"):
        keyring.root(["bob"], 1, now=now)
    assert snapshot(keyring.folder) == before


# -- rotation -----------------------------------------------------------------------------


def test_rotation_signed_by_old_and_new_keys_is_accepted(
    tmp_path: Path, keyring: Keyring, now: datetime, run_tool: Any
) -> None:
    first = keyring.root(["alice"], 1, now=now)
    first_raw = first.read_bytes()
    b, c = keyring["bob"], keyring["carol"]
    done = run_tool(
        "keys", "root", "--key", b.public, "--key", c.public, "--threshold", "2",
        "--sign", keyring["alice"].secret, "--sign", b.secret, "--sign", c.secret,
        "--out", keyring.folder, "--previous", first,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    new_raw = first.read_bytes()
    trusted = trust.verify_root(first_raw, now=now)
    rotated = trust.verify_new_root(trusted, new_raw)
    assert (rotated.version, rotated.threshold) == (2, 2)
    assert (keyring.folder / "roots" / "1.root.json").read_bytes() == first_raw
    assert (keyring.folder / "roots" / "2.root.json").read_bytes() == new_raw


@pytest.mark.parametrize(
    ("signers", "missing"),
    [
        (["bob", "carol"], "from the previous root's keys and --sign gives 0"),
        (["alice", "bob"], "needs 2 signatures from its own keys and --sign gives 1"),
        (["alice"], "from its own keys and --sign gives 0"),
    ],
)
def test_rotation_missing_either_side_is_refused(
    keyring: Keyring, now: datetime, signers: list[str], missing: str, snapshot: Snapshot
) -> None:
    first = keyring.root(["alice"], 1, now=now)
    keyring["bob"], keyring["carol"]  # made before the snapshot
    before = snapshot(keyring.folder)
    with pytest.raises(ToolError, match=missing):
        keyring.root(["bob", "carol"], 2, signers, now=now, previous=first)
    assert snapshot(keyring.folder) == before


def test_rotation_from_an_expired_root_still_works(keyring: Keyring, now: datetime) -> None:
    """As in TUF, an expired root may still vouch for its successor."""
    first = keyring.root(["alice"], 1, now=now - timedelta(days=400))
    with pytest.raises(trust.TrustError, match="expired"):
        trust.verify_root(first.read_bytes(), now=now)
    keyring.root(["bob"], 1, ["alice", "bob"], now=now, previous=first)
    assert trust.verify_root(first.read_bytes(), now=now).version == 2


def test_rotation_from_a_root_that_is_not_the_one_in_out_is_refused(
    tmp_path: Path, keyring: Keyring, now: datetime, snapshot: Snapshot
) -> None:
    first = keyring.root(["alice"], 1, now=now)
    other = keyring.root(["bob"], 1, now=now, out=tmp_path / "elsewhere")
    keyring["carol"]  # made before the snapshot
    before = snapshot(keyring.folder)
    with pytest.raises(ToolError, match="is not the --previous root"):
        keyring.root(["carol"], 1, ["bob", "carol"], now=now, out=first.parent, previous=other)
    assert snapshot(keyring.folder) == before
