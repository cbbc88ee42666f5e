"""Signed documents: the envelope the registry publishes, and how its signatures are counted.

The signing tools (``registry_tools``) and the client's checks (``trust.py``) must agree on
every byte, so both stand on this one module: how a document is serialised and signed
(``envelope``), how an envelope is opened without re-serialising anything, and what makes a
threshold (distinct public keys with a good Ed25519 signature). The rules about *which*
documents to trust (rotation, rollback, expiry, artifacts) are ``trust.py``'s.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import SigningKey, VerifyKey

__all__ = [
    "KEYID_RE",
    "REGISTRY_TYPE",
    "ROOT_TYPE",
    "SPEC_VERSION",
    "TrustError",
    "artifact_message",
    "check_threshold",
    "check_type",
    "envelope",
    "expiry_time",
    "format_time",
    "key_id",
    "open_envelope",
    "signature_list",
    "signatures_for",
    "signed_text",
    "typed_field",
]

SPEC_VERSION = 1
ROOT_TYPE = "deeting-root"
REGISTRY_TYPE = "deeting-registry"


KEYID_RE = re.compile(r"[0-9a-f]{8,64}")


class TrustError(Exception):
    """A document or artifact failed a check; the message names which and why."""


# -- small pure helpers -------------------------------------------------------------------


def key_id(public: bytes) -> str:
    """The id ``keys.py`` gives a key: its SHA-256, so ids are stable and checkable."""
    return hashlib.sha256(public).hexdigest()


def format_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def artifact_message(name: str, version: str, sha256: str, length: int) -> bytes:
    return f"{name}@{version}:{sha256}:{length}".encode()


def signatures_for(message: bytes, signing_keys: Iterable[SigningKey]) -> list[dict[str, str]]:
    out = []
    for signing_key in signing_keys:
        public = bytes(signing_key.verify_key)
        out.append({"keyid": key_id(public), "sig": signing_key.sign(message).signature.hex()})
    return out


def envelope(signed: Mapping[str, Any], signing_keys: Iterable[SigningKey]) -> bytes:
    """Serialise ``signed`` once, sign those bytes, and wrap both (what the tools publish)."""
    text = orjson.dumps(dict(signed), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
    body = {"signed": text.decode(), "signatures": signatures_for(text, signing_keys)}
    return orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n"


def open_envelope(raw: bytes, what: str) -> tuple[bytes, list[tuple[str, bytes]], Any]:
    try:
        outer = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise TrustError(f"{what} is not JSON ({exc})") from None
    if not isinstance(outer, dict) or set(outer) != {"signed", "signatures"}:
        raise TrustError(f"{what} is not a signed envelope ('signed' and 'signatures')")
    text, listed = outer["signed"], outer["signatures"]
    if not isinstance(text, str) or not isinstance(listed, list):
        raise TrustError(f"{what}: 'signed' must be text and 'signatures' a list")
    signatures = signature_list(listed, what)
    signed = text.encode()
    try:
        document = orjson.loads(signed)
    except orjson.JSONDecodeError as exc:
        raise TrustError(f"{what}: the signed text is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise TrustError(f"{what}: the signed text is not a JSON object")
    return signed, signatures, document


def signed_text(raw: bytes) -> bytes | None:
    """What an envelope's signatures cover (two copies with the same text are the same
    document, whatever signatures or outer spacing they carry); None if it is not one."""
    try:
        text = orjson.loads(raw).get("signed")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return text.encode() if isinstance(text, str) else None


def signature_list(listed: Sequence[Any], what: str) -> list[tuple[str, bytes]]:
    out = []
    for item in listed[:64]:  # more than any threshold needs; the rest are ignored
        if not isinstance(item, dict):
            raise TrustError(f"{what}: a signature is not an object")
        keyid, sig = item.get("keyid"), item.get("sig")
        if not isinstance(keyid, str) or not isinstance(sig, str):
            raise TrustError(f"{what}: a signature needs text 'keyid' and 'sig'")
        try:
            out.append((keyid, bytes.fromhex(sig)))
        except ValueError:
            raise TrustError(f"{what}: signature by {keyid[:12]} is not hex") from None
    return out


def check_threshold(
    message: bytes,
    signatures: Sequence[tuple[str, bytes]],
    keys: Mapping[str, bytes],
    threshold: int,
    what: str,
) -> None:
    good: set[bytes] = set()  # distinct public keys, not ids: one key counts once
    for keyid, sig in signatures:
        public = keys.get(keyid)
        if public is None or public in good:
            continue
        try:
            VerifyKey(public).verify(message, sig)
        except (BadSignatureError, CryptoError, ValueError, TypeError):
            continue
        good.add(public)
    if len(good) < threshold:
        raise TrustError(
            f"{what}: {len(good)} valid signature{'s' if len(good) != 1 else ''} from trusted "
            f"keys, {threshold} needed — it was not signed by the registry's keys, or was "
            "changed after signing"
        )


def typed_field(
    document: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str
) -> Any:
    value = document.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise TrustError(f"{what}: '{key}' is missing or malformed")
    return value


def expiry_time(document: Mapping[str, Any], what: str) -> datetime:
    text = typed_field(document, "expires", str, what)
    try:
        when = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise TrustError(f"{what}: 'expires' must look like 2027-01-31T00:00:00Z") from None
    return when


def check_type(document: Mapping[str, Any], expected: str, what: str) -> None:
    if document.get("_type") != expected:
        raise TrustError(f"{what}: not a {expected} document (_type {document.get('_type')!r})")
    spec_version = document.get("spec_version")
    if type(spec_version) is not int or spec_version != SPEC_VERSION:  # not true, not 1.0
        raise TrustError(
            f"{what}: spec version {spec_version!r} is not {SPEC_VERSION} — update deeting"
        )
