"""Adversarial tests of the registry's trust rules (``deeting_tui.store.trust``).

In the spirit of python-tuf's ``test_trusted_metadata_set.py`` and ``test_updater_*.py``:
every root, registry and artifact is built here, from deterministic Ed25519 keys, with the
same ``signing.envelope`` the registry tools publish with; each test then breaks one thing and
checks that it is refused with a one-line message naming what is wrong.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from nacl.signing import SigningKey

from deeting_tui.store import signing, trust
from deeting_tui.store.trust import Registry, Root, TrustError

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
EXPIRES = "2027-01-31T00:00:00Z"
EXPIRY = datetime(2027, 1, 31, tzinfo=UTC)
SECOND = timedelta(seconds=1)

# -- builders -----------------------------------------------------------------------------


def signing_key(label: str) -> SigningKey:
    """The same key for the same label in every run, so failures reproduce."""
    return SigningKey(hashlib.sha256(label.encode()).digest())


ROOT_A, ROOT_B, ROOT_C = signing_key("root-a"), signing_key("root-b"), signing_key("root-c")
STRANGER = signing_key("stranger")


def public(key: SigningKey) -> bytes:
    return bytes(key.verify_key)


def kid(key: SigningKey) -> str:
    return signing.key_id(public(key))


def key_entry(key: SigningKey) -> dict[str, str]:
    return {"keytype": "ed25519", "public": public(key).hex()}


def root_document(
    keys: Iterable[SigningKey],
    *,
    threshold: int = 1,
    version: int = 1,
    expires: str = EXPIRES,
    aliases: dict[str, SigningKey] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A root naming ``keys`` by their ids, plus ``aliases`` (other ids for keys)."""
    listed = {kid(key): key_entry(key) for key in keys}
    listed.update({alias: key_entry(key) for alias, key in (aliases or {}).items()})
    document = {
        "_type": "deeting-root",
        "spec_version": 1,
        "version": version,
        "expires": expires,
        "threshold": threshold,
        "keys": listed,
    }
    return {**document, **fields}


def root_bytes(keys: Iterable[SigningKey], signers: Iterable[SigningKey] = (), **kw: Any) -> bytes:
    keys = list(keys)
    return signing.envelope(root_document(keys, **kw), list(signers) or keys)


def make_root(keys: Iterable[SigningKey] = (ROOT_A,), **kw: Any) -> Root:
    return trust.verify_root(root_bytes(keys, **kw), now=NOW)


def payload(name: str, version: str, size: int = 300) -> bytes:
    """Bytes standing in for a plugin's zip: distinct per plugin and version."""
    seed = f"{name}@{version}".encode()
    out = b""
    while len(out) < size:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return out[:size]


def artifact_entry(
    name: str, version: str, data: bytes, signers: Iterable[SigningKey] = (ROOT_A,)
) -> dict[str, Any]:
    sha256, length = hashlib.sha256(data).hexdigest(), len(data)
    return {
        "url": f"https://plugins.example/{name}-{version}.zip",
        "sha256": sha256,
        "length": length,
        "signatures": signing.signatures_for(
            signing.artifact_message(name, version, sha256, length), signers
        ),
    }


def plugin_entry(
    name: str,
    versions: Iterable[str] = (),
    *,
    items: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A plugin with a good item per version in ``versions``, plus ``items`` as given."""
    listed = {v: artifact_entry(name, v, payload(name, v)) for v in versions}
    entry: dict[str, Any] = {
        "description": f"The {name} plugin",
        "permissions": ["network:api.example.org"],
        "versions": {**listed, **(items or {})},
    }
    return {**entry, **fields}


def registry_document(
    plugins: dict[str, Any] | None = None,
    *,
    version: int = 1,
    expires: str = EXPIRES,
    **fields: Any,
) -> dict[str, Any]:
    if plugins is None:
        plugins = {
            "calc": plugin_entry("calc", ["1.0.0", "1.1.0"]),
            "weather": plugin_entry("weather", ["0.3.0"]),
        }
    document = {
        "_type": "deeting-registry",
        "spec_version": 1,
        "version": version,
        "expires": expires,
        "root_version": 1,
        "plugins": plugins,
    }
    return {**document, **fields}


def registry_bytes(signers: Iterable[SigningKey] = (ROOT_A,), **kw: Any) -> bytes:
    return signing.envelope(registry_document(**kw), signers)


def verify(raw: bytes, root: Root | None = None, **kw: Any) -> Registry:
    kw.setdefault("now", NOW)
    return trust.verify_registry(raw, root or make_root(), **kw)


def rewrap(raw: bytes, change: Callable[[dict[str, Any]], Any]) -> bytes:
    """Edit the envelope (not the signed text) the way a tamperer would."""
    outer = orjson.loads(raw)
    change(outer)
    return orjson.dumps(outer)


def edit_signed(raw: bytes, change: Callable[[str], str]) -> bytes:
    """Edit the signed text and keep the signatures that were over the original."""

    def apply(outer: dict[str, Any]) -> None:
        edited = change(outer["signed"])
        assert edited != outer["signed"], "the edit must change something"
        outer["signed"] = edited

    return rewrap(raw, apply)


def refused(call: Callable[[], Any], *words: str) -> str:
    """``call`` raises TrustError whose one-line message holds every one of ``words``."""
    with pytest.raises(TrustError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


def with_signatures(raw: bytes, signatures: Any) -> bytes:
    def apply(outer: dict[str, Any]) -> None:
        outer["signatures"] = signatures

    return rewrap(raw, apply)


# -- the good path ------------------------------------------------------------------------


def test_good_root_registry_and_artifact_verify() -> None:
    root = make_root([ROOT_A, ROOT_B], threshold=2)
    assert (root.version, root.threshold, root.expires) == (1, 2, EXPIRY)
    assert root.keys == {kid(ROOT_A): public(ROOT_A), kid(ROOT_B): public(ROOT_B)}

    plugins = {"calc": plugin_entry("calc", ["1.0.0"])}
    plugins["calc"]["versions"]["1.0.0"] = artifact_entry(
        "calc", "1.0.0", payload("calc", "1.0.0"), [ROOT_A, ROOT_B]
    )
    raw = registry_bytes([ROOT_A, ROOT_B], plugins=plugins, version=7)
    registry = verify(raw, root)
    assert (registry.version, registry.expires, registry.root_version) == (7, EXPIRY, 1)
    assert registry.raw == raw
    artifact = registry.find("calc", "1.0.0")
    assert artifact.url == "https://plugins.example/calc-1.0.0.zip"
    assert artifact.description == "The calc plugin"
    assert artifact.permissions == ("network:api.example.org",)
    assert artifact.message == f"calc@1.0.0:{artifact.sha256}:300".encode()
    trust.verify_artifact(payload("calc", "1.0.0"), artifact, root)


def test_per_version_description_and_permissions_override_the_plugins() -> None:
    plugins = {"calc": plugin_entry("calc", ["1.0.0", "2.0.0"])}
    plugins["calc"]["versions"]["2.0.0"].update(description="New", permissions=["clipboard"])
    registry = verify(registry_bytes(plugins=plugins))
    old, new = registry.find("calc", "1.0.0"), registry.find("calc", "2.0.0")
    assert (old.description, old.permissions) == ("The calc plugin", ("network:api.example.org",))
    assert (new.description, new.permissions) == ("New", ("clipboard",))


def test_reformatting_the_envelope_outside_the_signed_text_changes_nothing() -> None:
    """Signatures are over the signed text's exact bytes, not over a re-serialisation."""
    raw = registry_bytes()
    compact = orjson.dumps(orjson.loads(raw))
    assert compact != raw
    assert verify(compact).plugins.keys() == {"calc", "weather"}


# -- who signed ---------------------------------------------------------------------------


def test_registry_signed_by_an_unknown_key_is_refused() -> None:
    refused(
        lambda: verify(registry_bytes([STRANGER])),
        "registry.json",
        "0 valid signatures from trusted keys, 1 needed",
        "not signed by the registry's keys",
    )


def test_unknown_key_claiming_a_trusted_key_id_is_refused() -> None:
    forged = signing.envelope(registry_document(), [STRANGER])
    forged = rewrap(forged, lambda o: o["signatures"][0].update(keyid=kid(ROOT_A)))
    refused(lambda: verify(forged), "0 valid signatures", "1 needed")


def first_hash_digit_changed(text: str) -> str:
    at = text.index('"sha256": "') + len('"sha256": "')
    return text[:at] + ("1" if text[at] != "1" else "2") + text[at + 1 :]


EDITS: dict[str, Callable[[str], str]] = {
    "one byte": lambda text: text.replace('"version": 1\n', '"version": 2\n'),
    "one byte in a hash": first_hash_digit_changed,
    "a trailing space": lambda text: text + " ",
    "one more space of indent": lambda text: text.replace("\n  ", "\n   ", 1),
    "newline to space": lambda text: text.replace("\n", " ", 1),
    "re-serialised, same document": lambda text: orjson.dumps(orjson.loads(text)).decode(),
}


@pytest.mark.parametrize("edit", EDITS.values(), ids=EDITS.keys())
def test_signed_text_edited_after_signing_is_refused(edit: Callable[[str], str]) -> None:
    raw = edit_signed(registry_bytes(), edit)
    refused(lambda: verify(raw), "0 valid signatures", "changed after signing")


def test_edited_root_is_refused() -> None:
    raw = edit_signed(root_bytes([ROOT_A]), lambda t: t.replace('"threshold": 1', '"threshold":1'))
    refused(lambda: trust.verify_root(raw, now=NOW), "root.json", "0 valid signatures")


# -- the envelope and its signature list --------------------------------------------------

GOOD_SIG = {"keyid": kid(ROOT_A), "sig": "00" * 64}

BAD_SIGNATURE_LISTS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "sig not hex": ([{"keyid": kid(ROOT_A), "sig": "zz" * 64}], ("is not hex",)),
    "sig odd hex": ([{"keyid": kid(ROOT_A), "sig": "abc"}], ("is not hex",)),
    "a dict": ({"keyid": kid(ROOT_A), "sig": "00"}, ("'signatures' a list",)),
    "a string": ("00" * 64, ("'signatures' a list",)),
    "null": (None, ("'signatures' a list",)),
    "an entry that is text": (["00" * 64], ("a signature is not an object",)),
    "an entry that is a list": ([[kid(ROOT_A), "00"]], ("a signature is not an object",)),
    "keyid missing": ([{"sig": "00" * 64}], ("needs text 'keyid' and 'sig'",)),
    "sig missing": ([{"keyid": kid(ROOT_A)}], ("needs text 'keyid' and 'sig'",)),
    "sig a number": ([{"keyid": kid(ROOT_A), "sig": 0}], ("needs text 'keyid' and 'sig'",)),
    "keyid null": ([{"keyid": None, "sig": "00"}], ("needs text 'keyid' and 'sig'",)),
    "empty list": ([], ("0 valid signatures", "1 needed")),
    "sig empty": ([{"keyid": kid(ROOT_A), "sig": ""}], ("0 valid signatures",)),
    "sig of zeros": ([GOOD_SIG], ("0 valid signatures",)),
    "sig 63 bytes": ([{"keyid": kid(ROOT_A), "sig": "00" * 63}], ("0 valid signatures",)),
    "1000 junk": ([GOOD_SIG] * 1000, ("0 valid signatures",)),
}


@pytest.mark.parametrize(
    ("signatures", "words"), BAD_SIGNATURE_LISTS.values(), ids=BAD_SIGNATURE_LISTS.keys()
)
def test_tampered_signature_list_is_refused(signatures: Any, words: tuple[str, ...]) -> None:
    raw = with_signatures(registry_bytes(), signatures)
    refused(lambda: verify(raw), "registry.json", *words)


def test_truncated_real_signature_is_refused() -> None:
    raw = rewrap(
        registry_bytes(), lambda o: o["signatures"][0].update(sig=o["signatures"][0]["sig"][:-2])
    )
    refused(lambda: verify(raw), "0 valid signatures")


def test_a_signature_over_another_document_is_refused() -> None:
    other = orjson.loads(registry_bytes(version=2))["signatures"]
    refused(lambda: verify(with_signatures(registry_bytes(), other)), "0 valid signatures")


def test_a_good_signature_among_1000_junk_ones_counts_only_within_the_first_64() -> None:
    """The list is capped (no unbounded work on a hostile list): a real signature early on
    still counts, one buried past the cap is never looked at."""
    raw = registry_bytes()
    real = orjson.loads(raw)["signatures"][0]
    assert verify(with_signatures(raw, [real] + [GOOD_SIG] * 999)).version == 1
    buried = [GOOD_SIG] * 100 + [real] + [GOOD_SIG] * 899
    refused(lambda: verify(with_signatures(raw, buried)), "0 valid signatures")


BAD_ENVELOPES: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "not JSON": (b"{not json", ("is not JSON",)),
    "empty": (b"", ("is not JSON",)),
    "a list": (b"[]", ("is not a signed envelope",)),
    "no signatures": (b'{"signed": "{}"}', ("is not a signed envelope",)),
    "an extra key": (b'{"signed": "{}", "signatures": [], "x": 1}', ("is not a signed envelope",)),
    "signed is an object": (b'{"signed": {}, "signatures": []}', ("'signed' must be text",)),
    "signed text not JSON": (b'{"signed": "{", "signatures": []}', ("signed text is not JSON",)),
    "signed text a list": (b'{"signed": "[]", "signatures": []}', ("not a JSON object",)),
}


@pytest.mark.parametrize(("raw", "words"), BAD_ENVELOPES.values(), ids=BAD_ENVELOPES.keys())
def test_malformed_envelope_is_refused(raw: bytes, words: tuple[str, ...]) -> None:
    refused(lambda: verify(raw), "registry.json", *words)
    refused(lambda: trust.verify_root(raw, now=NOW), "root.json", *words)


# -- thresholds ---------------------------------------------------------------------------


def test_a_duplicated_signature_does_not_meet_a_threshold_of_two() -> None:
    root = make_root([ROOT_A, ROOT_B], threshold=2)
    raw = registry_bytes([ROOT_A])
    doubled = rewrap(raw, lambda o: o["signatures"].append(dict(o["signatures"][0])))
    refused(lambda: verify(doubled, root), "1 valid signature from trusted keys, 2 needed")
    assert verify(registry_bytes([ROOT_A, ROOT_B]), root).version == 1  # the control


def test_one_key_under_two_ids_does_not_meet_a_threshold_of_two() -> None:
    alias = "ab" * 16
    root = make_root([ROOT_A, ROOT_B], threshold=2, aliases={alias: ROOT_A})
    assert len(root.keys) == 3
    raw = registry_bytes([ROOT_A])
    twice = rewrap(raw, lambda o: o["signatures"].append({**o["signatures"][0], "keyid": alias}))
    refused(lambda: verify(twice, root), "1 valid signature", "2 needed")


def test_artifact_signature_duplicated_does_not_meet_a_threshold_of_two() -> None:
    root = make_root([ROOT_A, ROOT_B], threshold=2)
    entry = artifact_entry("calc", "1.0.0", payload("calc", "1.0.0"), [ROOT_A])
    entry["signatures"] *= 2
    plugins = {"calc": plugin_entry("calc", items={"1.0.0": entry})}
    artifact = verify(registry_bytes([ROOT_A, ROOT_B], plugins=plugins), root).find("calc")
    refused(
        lambda: trust.verify_artifact(payload("calc", "1.0.0"), artifact, root),
        "calc 1.0.0 artifact",
        "1 valid signature",
        "2 needed",
    )


@pytest.mark.parametrize(
    ("keys", "aliases", "threshold", "words"),
    [
        ([ROOT_A], {"ab" * 16: ROOT_A}, 2, ("threshold 2 is more than its 1 distinct keys",)),
        ([ROOT_A, ROOT_B], {}, 3, ("threshold 3 is more than its 2 distinct keys",)),
        ([], {}, 1, ("threshold 1 is more than its 0 distinct keys",)),
        ([ROOT_A], {}, 0, ("version and threshold must be at least 1",)),
        ([ROOT_A], {}, -1, ("version and threshold must be at least 1",)),
    ],
    ids=["one key two ids", "three of two", "no keys", "zero", "negative"],
)
def test_impossible_threshold_is_refused_at_parse(
    keys: list[SigningKey], aliases: dict[str, SigningKey], threshold: int, words: tuple[str, ...]
) -> None:
    raw = signing.envelope(
        root_document(keys, threshold=threshold, aliases=aliases), [ROOT_A, ROOT_B]
    )
    refused(lambda: trust.parse_root(raw), "root.json", *words)


BAD_ROOT_FIELDS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "version 0": ({"version": 0}, ("version and threshold must be at least 1",)),
    "version text": ({"version": "1"}, ("'version' is missing or malformed",)),
    "version bool": ({"version": True}, ("'version' is missing or malformed",)),
    "threshold bool": ({"threshold": True}, ("'threshold' is missing or malformed",)),
    "threshold float": ({"threshold": 1.0}, ("'threshold' is missing or malformed",)),
    "keys a list": ({"keys": []}, ("'keys' is missing or malformed",)),
    "key id not hex": ({"keys": {"not-hex": {}}}, ("key id 'not-hex' is malformed",)),
    "key id too short": ({"keys": {"abcdef0": {}}}, ("key id 'abcdef0' is malformed",)),
    "key entry a string": ({"keys": {"ab" * 16: "k"}}, ("is malformed",)),
    "key type rsa": (
        {"keys": {"ab" * 16: {"keytype": "rsa", "public": "00" * 32}}},
        ("is not an ed25519 key",),
    ),
    "public not hex": (
        {"keys": {"ab" * 16: {"keytype": "ed25519", "public": "xy" * 32}}},
        ("is not hex",),
    ),
    "public 31 bytes": (
        {"keys": {"ab" * 16: {"keytype": "ed25519", "public": "00" * 31}}},
        ("is not 32 bytes",),
    ),
    "expires missing": ({"expires": None}, ("'expires' is missing or malformed",)),
    "expires a date": ({"expires": "2027-01-31"}, ("'expires' must look like",)),
}


@pytest.mark.parametrize(("fields", "words"), BAD_ROOT_FIELDS.values(), ids=BAD_ROOT_FIELDS.keys())
def test_malformed_root_is_refused(fields: dict[str, Any], words: tuple[str, ...]) -> None:
    raw = signing.envelope({**root_document([ROOT_A]), **fields}, [ROOT_A])
    refused(lambda: trust.verify_root(raw, now=NOW), "root.json", *words)


# -- document type and spec version -------------------------------------------------------


def test_a_root_served_as_the_registry_is_refused() -> None:
    refused(lambda: verify(root_bytes([ROOT_A])), "not a deeting-registry document", "deeting-root")


def test_a_registry_served_as_the_root_is_refused() -> None:
    raw = registry_bytes()
    refused(lambda: trust.verify_root(raw, now=NOW), "not a deeting-root document")


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"_type": "deeting-registr"}, ("not a deeting-registry document",)),
        ({"_type": None}, ("not a deeting-registry document",)),
        ({"spec_version": 2}, ("spec version 2 is not 1", "update deeting")),
        ({"spec_version": "1"}, ("spec version '1' is not 1",)),
        ({"spec_version": None}, ("spec version None is not 1",)),
    ],
    ids=["type misspelt", "type missing", "spec 2", "spec text", "spec missing"],
)
def test_wrong_type_or_spec_version_is_refused(
    fields: dict[str, Any], words: tuple[str, ...]
) -> None:
    refused(lambda: verify(signing.envelope(registry_document(**fields), [ROOT_A])), *words)
    root = signing.envelope(root_document([ROOT_A], **fields), [ROOT_A])
    refused(lambda: trust.verify_root(root, now=NOW), "root.json")


@pytest.mark.parametrize("spec", [True, 1.0])
def test_spec_version_must_be_the_integer_one(spec: Any) -> None:
    refused(lambda: verify(registry_bytes(spec_version=spec)), "spec version")


# -- expiry -------------------------------------------------------------------------------


def test_registry_expires_at_its_expiry_time_exactly() -> None:
    raw = registry_bytes()
    assert verify(raw, now=EXPIRY - SECOND).expires == EXPIRY
    for now in (EXPIRY, EXPIRY + SECOND, EXPIRY + timedelta(days=400)):
        refused(
            functools.partial(verify, raw, now=now),
            "registry.json expired at 2027-01-31T00:00:00Z",
            "freeze attack",
        )


def test_root_expires_at_its_expiry_time_exactly() -> None:
    raw = root_bytes([ROOT_A])
    assert trust.verify_root(raw, now=EXPIRY - SECOND).expires == EXPIRY
    for now in (EXPIRY, EXPIRY + SECOND):
        refused(
            functools.partial(trust.verify_root, raw, now=now),
            "root.json expired at 2027-01-31T00:00:00Z",
        )


def test_expiry_is_compared_in_utc_whatever_the_clock_zone() -> None:
    east = timezone(timedelta(hours=5))
    assert verify(registry_bytes(), now=(EXPIRY - SECOND).astimezone(east)).version == 1
    refused(lambda: verify(registry_bytes(), now=EXPIRY.astimezone(east)), "expired")


@pytest.mark.parametrize(
    ("expires", "words"),
    [
        ("2027-01-31", ("'expires' must look like 2027-01-31T00:00:00Z",)),
        ("2027-01-31T00:00:00+00:00", ("'expires' must look like",)),
        ("tomorrow", ("'expires' must look like",)),
        (20270131, ("'expires' is missing or malformed",)),
    ],
)
def test_malformed_registry_expiry_is_refused(expires: Any, words: tuple[str, ...]) -> None:
    refused(lambda: verify(registry_bytes(expires=expires)), "registry.json", *words)


# -- rollback -----------------------------------------------------------------------------


def test_older_version_than_seen_is_refused_as_a_rollback() -> None:
    old, new = registry_bytes(version=4), registry_bytes(version=5)
    refused(
        lambda: verify(old, seen_version=5, seen_raw=new),
        "version 4 is older than version 5 already seen",
        "rollback",
    )
    refused(lambda: verify(old, seen_version=5), "rollback")  # no stored copy needed


def test_rollback_is_refused_even_far_in_the_past_and_at_version_zero() -> None:
    refused(lambda: verify(registry_bytes(version=0), seen_version=1), "rollback")
    refused(lambda: verify(registry_bytes(version=-3), seen_version=0), "rollback")


def test_same_version_with_different_bytes_is_refused() -> None:
    seen = registry_bytes(version=5)
    changed = registry_bytes(version=5, plugins={"calc": plugin_entry("calc", ["9.9.9"])})
    refused(
        lambda: verify(changed, seen_version=5, seen_raw=seen),
        "version 5 differs from the copy already seen",
        "must raise its version",
    )


def test_same_version_with_the_same_bytes_is_accepted() -> None:
    seen = registry_bytes(version=5)
    assert verify(bytes(seen), seen_version=5, seen_raw=seen).version == 5


def test_newer_version_is_accepted() -> None:
    seen = registry_bytes(version=5)
    assert verify(registry_bytes(version=6), seen_version=5, seen_raw=seen).version == 6


def test_rollback_is_checked_after_the_signature() -> None:
    """An unsigned old copy is refused for its signature: nothing unsigned is trusted enough
    to be compared."""
    refused(lambda: verify(registry_bytes([STRANGER], version=1), seen_version=5), "signatures")


# -- root rotation ------------------------------------------------------------------------


def test_rotation_signed_by_old_and_new_keys_is_accepted() -> None:
    old = make_root([ROOT_A])
    new = trust.verify_new_root(old, root_bytes([ROOT_B], signers=[ROOT_A, ROOT_B], version=2))
    assert (new.version, set(new.keys)) == (2, {kid(ROOT_B)})


def test_rotation_signed_only_by_the_new_keys_is_refused() -> None:
    old = make_root([ROOT_A])
    raw = root_bytes([ROOT_B], signers=[ROOT_B], version=2)
    refused(lambda: trust.verify_new_root(old, raw), "the new root (old root's keys)", "0 valid")


def test_rotation_signed_only_by_the_old_keys_is_refused() -> None:
    old = make_root([ROOT_A])
    raw = root_bytes([ROOT_B], signers=[ROOT_A], version=2)
    refused(lambda: trust.verify_new_root(old, raw), "the new root (its own keys)", "0 valid")


def test_rotation_needs_the_old_roots_full_threshold() -> None:
    old = make_root([ROOT_A, ROOT_B], threshold=2)
    raw = root_bytes([ROOT_C], signers=[ROOT_A, ROOT_C], version=2)
    refused(lambda: trust.verify_new_root(old, raw), "(old root's keys)", "1 valid", "2 needed")
    both = root_bytes([ROOT_C], signers=[ROOT_A, ROOT_B, ROOT_C], version=2)
    assert trust.verify_new_root(old, both).keys == {kid(ROOT_C): public(ROOT_C)}


@pytest.mark.parametrize(
    ("version", "words"),
    [
        (3, ("has version 3; only 2 can follow the trusted root 1",)),
        (1, ("has version 1; only 2 can follow",)),
        (100, ("has version 100",)),
    ],
    ids=["skip", "same", "far ahead"],
)
def test_rotation_must_be_the_next_version(version: int, words: tuple[str, ...]) -> None:
    old = make_root([ROOT_A])
    raw = root_bytes([ROOT_A, ROOT_B], signers=[ROOT_A, ROOT_B], version=version)
    refused(lambda: trust.verify_new_root(old, raw), *words)


def test_rotation_chain_walks_one_version_at_a_time() -> None:
    v1 = make_root([ROOT_A])
    v2 = trust.verify_new_root(v1, root_bytes([ROOT_B], signers=[ROOT_A, ROOT_B], version=2))
    v3_raw = root_bytes([ROOT_C], signers=[ROOT_B, ROOT_C], version=3)
    refused(lambda: trust.verify_new_root(v1, v3_raw), "has version 3")
    assert trust.verify_new_root(v2, v3_raw).version == 3


def test_an_expired_root_still_vouches_for_its_successor() -> None:
    """As in TUF: only the last root of a chain must be unexpired (the caller checks it)."""
    old = make_root([ROOT_A])
    raw = root_bytes([ROOT_B], signers=[ROOT_A, ROOT_B], version=2, expires="2020-01-01T00:00:00Z")
    assert trust.verify_new_root(old, raw).expires < NOW


def test_rotated_root_rekeys_the_registry_and_its_artifacts() -> None:
    old = make_root([ROOT_A])
    new = trust.verify_new_root(old, root_bytes([ROOT_B], signers=[ROOT_A, ROOT_B], version=2))
    refused(lambda: verify(registry_bytes([ROOT_A]), new), "0 valid signatures")
    plugins = {"calc": plugin_entry("calc", ["1.0.0"])}  # artifacts signed by ROOT_A
    registry = verify(registry_bytes([ROOT_B], plugins=plugins), new)
    refused(
        lambda: trust.verify_artifact(payload("calc", "1.0.0"), registry.find("calc"), new),
        "calc 1.0.0 artifact",
        "0 valid signatures",
    )


# -- artifacts ----------------------------------------------------------------------------


def registry_with(*names: str, versions: Iterable[str] = ("1.0.0",)) -> Registry:
    versions = list(versions)
    return verify(registry_bytes(plugins={n: plugin_entry(n, versions) for n in names}))


def test_artifact_with_one_flipped_byte_is_refused() -> None:
    artifact = registry_with("calc").find("calc")
    data = bytearray(payload("calc", "1.0.0"))
    data[150] ^= 0x01
    refused(
        lambda: trust.verify_artifact(bytes(data), artifact, make_root()),
        "calc 1.0.0",
        "does not match the registry's",
        "altered",
    )


@pytest.mark.parametrize("size", [0, 1, 299, 301, 10_000])
def test_artifact_of_the_wrong_length_is_refused(size: int) -> None:
    """A truncated (or extended) body is refused for its length before any hashing."""
    artifact = registry_with("calc").find("calc")
    data = (payload("calc", "1.0.0") * 40)[:size]
    refused(
        lambda: trust.verify_artifact(data, artifact, make_root()),
        f"calc 1.0.0: download is {size} bytes, the registry says 300",
    )


def test_another_plugins_artifact_served_as_this_one_is_refused() -> None:
    registry = registry_with("calc", "weather")
    calc, weather = registry.find("calc"), registry.find("weather")
    assert calc.length == weather.length  # so it is the hash that tells them apart
    refused(
        lambda: trust.verify_artifact(payload("weather", "1.0.0"), calc, make_root()),
        "calc 1.0.0: sha256",
        "does not match",
    )


def test_another_plugins_entry_copied_under_this_name_is_refused() -> None:
    """Even signed into the registry, B's hash and signatures cannot pass as A's: the
    artifact signature covers the name."""
    weather = artifact_entry("weather", "1.0.0", payload("weather", "1.0.0"))
    plugins = {"calc": plugin_entry("calc", items={"1.0.0": weather})}
    artifact = verify(registry_bytes(plugins=plugins)).find("calc")
    refused(
        lambda: trust.verify_artifact(payload("weather", "1.0.0"), artifact, make_root()),
        "calc 1.0.0 artifact",
        "0 valid signatures",
    )


def test_artifact_signed_by_an_unknown_key_is_refused() -> None:
    data = payload("calc", "1.0.0")
    entry = artifact_entry("calc", "1.0.0", data, [STRANGER])
    plugins = {"calc": plugin_entry("calc", items={"1.0.0": entry})}
    artifact = verify(registry_bytes(plugins=plugins)).find("calc")
    refused(lambda: trust.verify_artifact(data, artifact, make_root()), "0 valid signatures")


def test_artifact_with_no_signatures_is_refused() -> None:
    data = payload("calc", "1.0.0")
    entry = {**artifact_entry("calc", "1.0.0", data), "signatures": []}
    plugins = {"calc": plugin_entry("calc", items={"1.0.0": entry})}
    artifact = verify(registry_bytes(plugins=plugins)).find("calc")
    refused(lambda: trust.verify_artifact(data, artifact, make_root()), "0 valid signatures")


def test_signature_from_a_previous_versions_artifact_is_refused() -> None:
    """Mix and match: 1.1.0's entry carrying 1.0.0's signatures (from registry v1)."""
    v1 = registry_bytes(version=1, plugins={"calc": plugin_entry("calc", ["1.0.0"])})
    old_signatures = orjson.loads(orjson.loads(v1)["signed"])["plugins"]["calc"]["versions"][
        "1.0.0"
    ]["signatures"]
    new_data = payload("calc", "1.1.0")
    entry = {**artifact_entry("calc", "1.1.0", new_data), "signatures": old_signatures}
    v2 = registry_bytes(version=2, plugins={"calc": plugin_entry("calc", items={"1.1.0": entry})})
    artifact = verify(v2, seen_version=1, seen_raw=v1).find("calc", "1.1.0")
    refused(lambda: trust.verify_artifact(new_data, artifact, make_root()), "0 valid signatures")


def test_previous_versions_artifact_served_as_the_new_version_is_refused() -> None:
    """Mix and match: 1.0.0's whole entry (hash, length, signatures) listed as 1.1.0."""
    old_data = payload("calc", "1.0.0")
    entry = artifact_entry("calc", "1.0.0", old_data)
    plugins = {"calc": plugin_entry("calc", items={"1.1.0": entry})}
    artifact = verify(registry_bytes(version=2, plugins=plugins)).find("calc", "1.1.0")
    refused(
        lambda: trust.verify_artifact(old_data, artifact, make_root()),
        "calc 1.1.0 artifact",
        "0 valid signatures",
    )


def test_artifact_signed_with_a_different_length_is_refused() -> None:
    data = payload("calc", "1.0.0")
    entry = artifact_entry("calc", "1.0.0", data)
    message = signing.artifact_message("calc", "1.0.0", entry["sha256"], len(data) + 1)
    entry["signatures"] = signing.signatures_for(message, [ROOT_A])
    plugins = {"calc": plugin_entry("calc", items={"1.0.0": entry})}
    artifact = verify(registry_bytes(plugins=plugins)).find("calc")
    refused(lambda: trust.verify_artifact(data, artifact, make_root()), "0 valid signatures")


# -- malformed registry entries -----------------------------------------------------------


def one_plugin(name: str = "calc", version: str = "1.0.0", **item: Any) -> dict[str, Any]:
    """A registry's plugins with one entry whose version item has ``item`` merged in
    (a value of ``...`` removes that field)."""
    entry = artifact_entry(name, version, payload(name, version))
    entry.update(item)
    entry = {k: v for k, v in entry.items() if v is not ...}
    return {name: plugin_entry(name, items={version: entry})}


def refused_registry(plugins: Any, *words: str, **fields: Any) -> str:
    raw = registry_bytes(plugins=plugins, **fields)
    return refused(lambda: verify(raw), "registry.json", *words)


BAD_NAMES = ["../../x", "/etc", "a/b", "%2e%2e", "..", ".", "A", "Calc", "", "a" * 65]
BAD_NAMES += ["-calc", "calc_2", "calc.zip", "calc ", "ca\x00lc", "cälc", "calc\n", "c:"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_plugin_name_is_refused(name: str) -> None:
    plugins = {name: plugin_entry("calc", ["1.0.0"])}
    refused_registry(plugins, f"{name!r} is not a valid plugin name", "lowercase")
    assert trust.plugin_name_problem(name) is not None


@pytest.mark.parametrize("name", ["a", "0", "calc", "my-plugin-2", "a" * 64, "x--"])
def test_good_plugin_names_pass(name: str) -> None:
    assert trust.plugin_name_problem(name) is None
    assert verify(registry_bytes(plugins=one_plugin(name))).find(name).name == name


@pytest.mark.parametrize("name", [None, 7, b"calc", ["calc"]])
def test_plugin_name_that_is_not_text_has_a_problem(name: object) -> None:
    problem = trust.plugin_name_problem(name)
    assert problem is not None and "is not a valid plugin name" in problem


BAD_VERSIONS = ["1.0", "1", "01.0.0", "1.00.0", "1.0.0/../x", "v1.0.0", "1.0.0-", "1.0.0+"]
BAD_VERSIONS += ["1.0.0-01", "", " 1.0.0", "1.0.0-a..b", "1.0.0+a+b", "1.0.0-é", "1.0.0 "]
CONTROL_VERSIONS = ["1.0.0\n", "1.0.0\x1b[2J", "1.0.0\r"]


@pytest.mark.parametrize("version", BAD_VERSIONS)
def test_version_that_is_not_semver_is_refused(version: str) -> None:
    refused_registry(one_plugin(version=version), "plugin 'calc'", "not a SemVer version")
    with pytest.raises(ValueError, match="is not a SemVer version"):
        trust.version_key(version)


@pytest.mark.parametrize("version", CONTROL_VERSIONS)
def test_version_with_control_characters_is_refused(version: str) -> None:
    raw = registry_bytes(plugins=one_plugin(version=version))
    with pytest.raises(TrustError, match="not a SemVer version"):
        verify(raw)


@pytest.mark.parametrize("version", CONTROL_VERSIONS)
def test_version_with_control_characters_is_reported_in_one_printable_line(version: str) -> None:
    message = refused_registry(one_plugin(version=version), "not a SemVer version")
    assert message.isprintable(), message


BAD_ITEMS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "sha256 uppercase": ({"sha256": "AB" * 32}, ("sha256 must be 64 lowercase hex digits",)),
    "sha256 63 chars": ({"sha256": "a" * 63}, ("sha256 must be 64 lowercase hex",)),
    "sha256 65 chars": ({"sha256": "a" * 65}, ("sha256 must be 64 lowercase hex",)),
    "sha256 not hex": ({"sha256": "g" * 64}, ("sha256 must be 64 lowercase hex",)),
    "sha256 prefixed": ({"sha256": "sha256:" + "a" * 57}, ("sha256 must be 64",)),
    "sha256 a number": ({"sha256": 12}, ("'sha256' is missing or malformed",)),
    "sha256 missing": ({"sha256": ...}, ("'sha256' is missing or malformed",)),
    "length 0": ({"length": 0}, ("length must be positive",)),
    "length negative": ({"length": -300}, ("length must be positive",)),
    "length bool": ({"length": True}, ("'length' is missing or malformed",)),
    "length text": ({"length": "300"}, ("'length' is missing or malformed",)),
    "length float": ({"length": 300.0}, ("'length' is missing or malformed",)),
    "length missing": ({"length": ...}, ("'length' is missing or malformed",)),
    "url missing": ({"url": ...}, ("'url' is missing or malformed",)),
    "url a list": ({"url": ["https://x"]}, ("'url' is missing or malformed",)),
    "signatures missing": ({"signatures": ...}, ("'signatures' is missing or malformed",)),
    "signatures an object": ({"signatures": {}}, ("'signatures' is missing or malformed",)),
    "signature not hex": (
        {"signatures": [{"keyid": "ab" * 16, "sig": "nothex"}]},
        ("is not hex",),
    ),
    "description a number": ({"description": 1}, ("description or permissions malformed",)),
    "permissions text": ({"permissions": "network"}, ("description or permissions malformed",)),
}


@pytest.mark.parametrize(("item", "words"), BAD_ITEMS.values(), ids=BAD_ITEMS.keys())
def test_malformed_version_item_is_refused(item: dict[str, Any], words: tuple[str, ...]) -> None:
    refused_registry(one_plugin(**item), "plugin 'calc' 1.0.0", *words)


def test_version_permissions_that_are_not_text_are_refused() -> None:
    refused_registry(one_plugin(permissions=[1, {"net": "x"}, None]), "permissions must be text")


BAD_ENTRIES: dict[str, tuple[Any, tuple[str, ...]]] = {
    "entry a list": (["1.0.0"], ("plugin 'calc' is not an object",)),
    "entry null": (None, ("plugin 'calc' is not an object",)),
    "versions missing": ({"description": "x"}, ("'versions' is missing or malformed",)),
    "versions a list": ({"versions": ["1.0.0"]}, ("'versions' is missing or malformed",)),
    "versions empty": ({"versions": {}}, ("plugin 'calc' lists no versions",)),
    "item a list": ({"versions": {"1.0.0": []}}, ("plugin 'calc' 1.0.0 is not an object",)),
    "description a list": (
        {"description": ["x"], "versions": {}},
        ("description or permissions malformed",),
    ),
    "permissions an object": (
        {"permissions": {"network": True}, "versions": {}},
        ("description or permissions malformed",),
    ),
    "permissions not text": (
        {"permissions": ["network", 3], "versions": {}},
        ("permissions must be text",),
    ),
}


@pytest.mark.parametrize(("entry", "words"), BAD_ENTRIES.values(), ids=BAD_ENTRIES.keys())
def test_malformed_plugin_entry_is_refused(entry: Any, words: tuple[str, ...]) -> None:
    refused_registry({"calc": entry}, *words)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"plugins": []}, ("'plugins' is missing or malformed",)),
        ({"plugins": None}, ("'plugins' is missing or malformed",)),
        ({"version": "2"}, ("'version' is missing or malformed",)),
        ({"version": True}, ("'version' is missing or malformed",)),
        ({"version": 2.0}, ("'version' is missing or malformed",)),
        ({"root_version": "1"}, ("'root_version' is malformed",)),
        ({"root_version": False}, ("'root_version' is malformed",)),
    ],
    ids=[
        "plugins list",
        "plugins null",
        "version text",
        "version bool",
        "version float",
        "root_version text",
        "root_version bool",
    ],
)
def test_malformed_registry_fields_are_refused(
    fields: dict[str, Any], words: tuple[str, ...]
) -> None:
    raw = signing.envelope({**registry_document(), **fields}, [ROOT_A])
    refused(lambda: verify(raw), "registry.json", *words)


def test_an_empty_registry_is_valid() -> None:
    assert verify(registry_bytes(plugins={})).plugins == {}


def test_root_version_defaults_to_the_roots() -> None:
    document = registry_document()
    del document["root_version"]
    root = trust.verify_new_root(
        make_root([ROOT_A]), root_bytes([ROOT_A], signers=[ROOT_A], version=2)
    )
    assert verify(signing.envelope(document, [ROOT_A]), root).root_version == 2


# -- SemVer precedence and lookups --------------------------------------------------------

SEMVER_ORG_ORDER = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "2.0.0",
    "2.1.0",
    "2.1.1",
    "2.10.0",
    "10.0.0",
]


def test_version_key_follows_semver_precedence() -> None:
    """semver.org §11's examples, plus numeric (not text) comparison of each part."""
    for lower, higher in itertools.pairwise(SEMVER_ORG_ORDER):
        assert trust.version_key(lower) < trust.version_key(higher), (lower, higher)
    shuffled = sorted(SEMVER_ORG_ORDER, key=lambda v: hashlib.sha256(v.encode()).digest())
    assert sorted(shuffled, key=trust.version_key) == SEMVER_ORG_ORDER


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.0.0-alpha.9", "1.0.0-alpha.10"),  # numeric identifiers compare as numbers
        ("1.0.0-2", "1.0.0-10"),
        ("1.0.0-99", "1.0.0-a"),  # numeric identifiers sort before alphanumeric ones
        ("1.0.0-Beta", "1.0.0-alpha"),  # alphanumeric ones in ASCII order
        ("1.0.0-alpha", "1.0.0-alpha.0"),  # a longer list of equal prefix is higher
        ("1.9.9", "2.0.0-alpha"),
        ("0.0.0", "0.0.1-0"),
    ],
)
def test_version_key_edge_cases(lower: str, higher: str) -> None:
    assert trust.version_key(lower) < trust.version_key(higher)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1.0.0", "1.0.0+build.1"),
        ("1.0.0+20130313144700", "1.0.0+exp.sha.5114f85"),
        ("1.0.0-alpha", "1.0.0-alpha+001"),
        ("1.0.0-beta+exp.sha.5114f85", "1.0.0-beta"),
    ],
)
def test_version_key_ignores_build_metadata(a: str, b: str) -> None:
    assert trust.version_key(a) == trust.version_key(b)


def lookup_registry() -> Registry:
    versions = ["1.9.0", "1.10.0", "1.10.0-rc.1", "0.1.0"]  # listed out of order on purpose
    return verify(registry_bytes(plugins={"calc": plugin_entry("calc", versions)}))


def test_latest_is_the_highest_precedence_not_the_last_listed_or_the_largest_text() -> None:
    registry = lookup_registry()
    latest = registry.latest("calc")
    assert latest is not None and latest.version == "1.10.0"
    assert registry.find("calc").version == "1.10.0"
    assert registry.latest("nope") is None


def test_find_returns_the_version_asked_for() -> None:
    artifact = lookup_registry().find("calc", "1.10.0-rc.1")
    assert (artifact.name, artifact.version) == ("calc", "1.10.0-rc.1")
    assert artifact.sha256 == hashlib.sha256(payload("calc", "1.10.0-rc.1")).hexdigest()


@pytest.mark.parametrize("name", ["nope", "../../calc", "CALC", ""])
def test_find_an_unknown_plugin_says_so(name: str) -> None:
    refused(lambda: lookup_registry().find(name), f"the registry has no plugin '{name}'")
    refused(lambda: lookup_registry().find(name, "1.0.0"), "has no plugin")


def test_find_an_unknown_version_lists_the_known_ones_in_order() -> None:
    refused(
        lambda: lookup_registry().find("calc", "2.0.0"),
        "the registry has no 'calc' 2.0.0 (it has: 0.1.0, 1.9.0, 1.10.0-rc.1, 1.10.0)",
    )
    refused(lambda: lookup_registry().find("calc", "1.10"), "has no 'calc' 1.10")


# -- helpers themselves -------------------------------------------------------------------


def test_key_id_is_the_sha256_of_the_public_key() -> None:
    assert kid(ROOT_A) == hashlib.sha256(public(ROOT_A)).hexdigest()
    assert kid(ROOT_A) != kid(ROOT_B)


def test_format_time_is_utc_with_a_z() -> None:
    assert (
        trust.format_time(EXPIRY.astimezone(timezone(timedelta(hours=-7))))
        == "2027-01-31T00:00:00Z"
    )


def test_envelope_signs_the_exact_text_it_carries() -> None:
    raw = signing.envelope({"b": 1, "a": 2}, [ROOT_A, ROOT_B])
    outer = orjson.loads(raw)
    assert outer["signed"] == '{\n  "a": 2,\n  "b": 1\n}'  # sorted keys, indented
    assert [s["keyid"] for s in outer["signatures"]] == [kid(ROOT_A), kid(ROOT_B)]
    for key, listed in zip((ROOT_A, ROOT_B), outer["signatures"], strict=True):
        key.verify_key.verify(outer["signed"].encode(), bytes.fromhex(listed["sig"]))
