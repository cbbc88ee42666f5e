"""The registry's trust rules, as pure functions over bytes, keys and one clock reading.

Like python-tuf's trusted metadata set, nothing here fetches or writes: the client (and
``registry_tools``, which signs) hand in bytes and get a verified object or a TrustError
whose message says what was wrong. Fetching, caps and deadlines are ``fetch.py``'s; the
envelope format and the signature threshold both sides share are ``signing.py``'s.

Formats (spec version 1). ``root.json`` and ``registry.json`` are envelopes::

    {"signed": "<a JSON document, as text>", "signatures": [{"keyid": "…", "sig": "<hex>"}]}

Signatures are Ed25519 over the exact UTF-8 bytes of the ``signed`` text: nothing is
re-serialised before checking, so no two parsers can disagree about what was signed.
A threshold counts distinct public keys with a good signature: a signature repeated, or one
key listed under two ids, counts once. Artifacts carry their own signatures over
``name@version:sha256:length``, checked against the same keys and threshold.

The root names the keys and the threshold. A new root must be version N+1 and be signed by
a threshold of the old root's keys *and* of its own (key rotation). A registry must be
signed by a threshold of the current root's keys, be unexpired, and never go below the
highest version this client has seen.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from deeting_tui.plugin.names import PLUGIN_NAME_RE
from deeting_tui.plugin.versions import SEMVER_RE, version_key

from .signing import (
    KEYID_RE,
    REGISTRY_TYPE,
    ROOT_TYPE,
    TrustError,
    artifact_message,
    check_threshold,
    check_type,
    expiry_time,
    format_time,
    open_envelope,
    signature_list,
    signed_text,
    typed_field,
)

# TrustError, format_time and version_key are named here too: what the client catches,
# shows and sorts by when it checks documents through this module.
__all__ = [
    "Artifact",
    "Registry",
    "Root",
    "TrustError",
    "format_time",
    "parse_root",
    "plugin_name_problem",
    "verify_artifact",
    "verify_new_root",
    "verify_registry",
    "verify_root",
    "version_key",
]

SHA256_RE = re.compile(r"[0-9a-f]{64}")
MAX_VERSION_LENGTH = 64


def plugin_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a plugin (it becomes a folder name), or None."""
    if not isinstance(name, str) or not PLUGIN_NAME_RE.fullmatch(name):
        return (
            f"{name!r} is not a valid plugin name (lowercase letters, digits and '-', "
            "at most 64 characters)"
        )
    return None


# -- documents ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Root:
    version: int
    expires: datetime
    keys: Mapping[str, bytes]  # keyid → raw Ed25519 public key
    threshold: int
    raw: bytes = field(repr=False)


@dataclass(frozen=True)
class Artifact:
    name: str
    version: str
    url: str
    sha256: str
    length: int
    signatures: tuple[tuple[str, bytes], ...]
    description: str
    permissions: tuple[str, ...]

    @property
    def message(self) -> bytes:
        return artifact_message(self.name, self.version, self.sha256, self.length)


@dataclass(frozen=True)
class Registry:
    version: int
    expires: datetime
    root_version: int
    plugins: Mapping[str, Mapping[str, Artifact]]  # name → version → artifact
    raw: bytes = field(repr=False)

    def latest(self, name: str) -> Artifact | None:
        versions = self.plugins.get(name)
        if not versions:
            return None
        newest = max(versions, key=version_key)
        return versions[newest]

    def find(self, name: str, version: str | None = None) -> Artifact:
        if name not in self.plugins:
            raise TrustError(f"the registry has no plugin '{name}'")
        if version is None:
            found = self.latest(name)
            assert found is not None
            return found
        if version not in self.plugins[name]:
            known = ", ".join(sorted(self.plugins[name], key=version_key))
            raise TrustError(f"the registry has no '{name}' {version} (it has: {known})")
        return self.plugins[name][version]


def parse_root(raw: bytes, what: str = "root.json") -> tuple[Root, bytes, list[tuple[str, bytes]]]:
    """Structure only; signatures are the callers' (initial trust or rotation)."""
    signed, signatures, document = open_envelope(raw, what)
    check_type(document, ROOT_TYPE, what)
    version = typed_field(document, "version", int, what)
    threshold = typed_field(document, "threshold", int, what)
    listed = typed_field(document, "keys", dict, what)
    keys: dict[str, bytes] = {}
    for keyid, entry in listed.items():
        if not KEYID_RE.fullmatch(keyid) or not isinstance(entry, dict):
            raise TrustError(f"{what}: key id {keyid!r} is malformed")
        if entry.get("keytype") != "ed25519" or not isinstance(entry.get("public"), str):
            raise TrustError(f"{what}: key {keyid[:12]} is not an ed25519 key")
        try:
            public = bytes.fromhex(entry["public"])
        except ValueError:
            raise TrustError(f"{what}: key {keyid[:12]} is not hex") from None
        if len(public) != 32:
            raise TrustError(f"{what}: key {keyid[:12]} is not 32 bytes")
        keys[keyid] = public
    if version < 1 or threshold < 1:
        raise TrustError(f"{what}: version and threshold must be at least 1")
    if threshold > len(set(keys.values())):
        raise TrustError(
            f"{what}: threshold {threshold} is more than its {len(set(keys.values()))} "
            "distinct keys"
        )
    root = Root(version, expiry_time(document, what), keys, threshold, raw)
    return root, signed, signatures


def verify_root(raw: bytes, *, now: datetime, what: str = "root.json") -> Root:
    """A root trusted out of band (pinned by the user): it must still sign itself."""
    root, signed, signatures = parse_root(raw, what)
    check_threshold(signed, signatures, root.keys, root.threshold, what)
    if root.expires <= now:
        raise TrustError(f"{what} expired at {format_time(root.expires)}")
    return root


def verify_new_root(trusted: Root, raw: bytes, *, what: str = "the new root") -> Root:
    """Rotation: version N+1, signed by a threshold of the old keys and of the new ones.

    Expiry is checked on the last root of a chain only (by the caller), as in TUF: an
    expired intermediate root may still vouch for its successor.
    """
    new, signed, signatures = parse_root(raw, what)
    if new.version != trusted.version + 1:
        raise TrustError(
            f"{what} has version {new.version}; only {trusted.version + 1} can follow the "
            f"trusted root {trusted.version}"
        )
    check_threshold(
        signed, signatures, trusted.keys, trusted.threshold, f"{what} (old root's keys)"
    )
    check_threshold(signed, signatures, new.keys, new.threshold, f"{what} (its own keys)")
    return new


def verify_registry(
    raw: bytes,
    root: Root,
    *,
    now: datetime,
    seen_version: int = 0,
    seen_raw: bytes | None = None,
    what: str = "registry.json",
) -> Registry:
    """Signatures first (nothing unsigned is even parsed further), then rollback, expiry,
    and every entry's shape."""
    signed, signatures, document = open_envelope(raw, what)
    check_threshold(signed, signatures, root.keys, root.threshold, what)
    check_type(document, REGISTRY_TYPE, what)
    version = typed_field(document, "version", int, what)
    if version < seen_version:
        raise TrustError(
            f"{what} version {version} is older than version {seen_version} already seen — "
            "refusing a rollback (a stale mirror, or someone replaying an old registry)"
        )
    if version == seen_version and seen_raw is not None and signed_text(seen_raw) != signed:
        raise TrustError(
            f"{what} version {version} differs from the copy already seen with that version "
            "— the registry must raise its version when it changes"
        )
    expires = expiry_time(document, what)
    if expires <= now:
        raise TrustError(
            f"{what} expired at {format_time(expires)} — the registry has not been "
            "re-signed; refusing stale data (a freeze attack, or an unmaintained registry)"
        )
    root_version = document.get("root_version", root.version)
    if not isinstance(root_version, int) or isinstance(root_version, bool):
        raise TrustError(f"{what}: 'root_version' is malformed")
    plugins = _plugins(typed_field(document, "plugins", dict, what), what)
    return Registry(version, expires, root_version, plugins, raw)


def _plugins(listed: Mapping[str, Any], what: str) -> dict[str, dict[str, Artifact]]:
    out: dict[str, dict[str, Artifact]] = {}
    for name, entry in listed.items():
        problem = plugin_name_problem(name)
        if problem:
            raise TrustError(f"{what}: {problem}")
        where = f"{what}: plugin '{name}'"
        if not isinstance(entry, dict):
            raise TrustError(f"{where} is not an object")
        description = entry.get("description", "")
        permissions = entry.get("permissions", [])
        if not isinstance(description, str) or not isinstance(permissions, list):
            raise TrustError(f"{where}: description or permissions malformed")
        if not all(isinstance(p, str) for p in permissions):
            raise TrustError(f"{where}: permissions must be text")
        versions = typed_field(entry, "versions", dict, where)
        out[name] = {}
        for version, item in versions.items():
            shown = version if version.isprintable() and len(version) <= 64 else repr(version)
            out[name][version] = _artifact(
                name, version, item, description, tuple(permissions), f"{where} {shown[:80]}"
            )
        if not out[name]:
            raise TrustError(f"{where} lists no versions")
    return out


def _artifact(
    name: str,
    version: str,
    item: Any,
    description: str,
    permissions: tuple[str, ...],
    where: str,
) -> Artifact:
    if not isinstance(version, str) or not SEMVER_RE.fullmatch(version):
        raise TrustError(f"{where}: not a SemVer version")
    if len(version) > MAX_VERSION_LENGTH:  # it becomes a folder name
        raise TrustError(f"{where}: version longer than {MAX_VERSION_LENGTH} characters")
    if not isinstance(item, dict):
        raise TrustError(f"{where} is not an object")
    sha256 = typed_field(item, "sha256", str, where)
    if not SHA256_RE.fullmatch(sha256):
        raise TrustError(f"{where}: sha256 must be 64 lowercase hex digits")
    length = typed_field(item, "length", int, where)
    if length <= 0:
        raise TrustError(f"{where}: length must be positive")
    url = typed_field(item, "url", str, where)
    if not url.strip():
        raise TrustError(f"{where}: 'url' is empty")
    signatures = tuple(signature_list(typed_field(item, "signatures", list, where), where))
    item_description = item.get("description", description)
    item_permissions = item.get("permissions", permissions)
    if not isinstance(item_description, str) or not isinstance(item_permissions, list | tuple):
        raise TrustError(f"{where}: description or permissions malformed")
    if not all(isinstance(p, str) for p in item_permissions):
        raise TrustError(f"{where}: permissions must be text")
    return Artifact(
        name,
        version,
        url,
        sha256,
        length,
        signatures,
        item_description,
        tuple(str(p) for p in item_permissions),
    )


def verify_artifact(data: bytes, artifact: Artifact, root: Root) -> None:
    """Length, then hash, then the artifact's own signatures (defence in depth)."""
    label = f"{artifact.name} {artifact.version}"
    if len(data) != artifact.length:
        raise TrustError(
            f"{label}: download is {len(data)} bytes, the registry says {artifact.length}"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != artifact.sha256:
        raise TrustError(
            f"{label}: sha256 {digest[:16]}… does not match the registry's "
            f"{artifact.sha256[:16]}… — the download was altered or is another file"
        )
    check_threshold(
        artifact.message, artifact.signatures, root.keys, root.threshold, f"{label} artifact"
    )
