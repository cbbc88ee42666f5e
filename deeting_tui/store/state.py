"""What the client remembers about its registry, under ``data/registry``.

- ``root.json``: the pinned root (after rotations, the newest one the chain verified);
- ``registry.json``: the last registry that verified, byte for byte;
- ``state.json``: the registry's URL, its ETag, and the highest registry version ever seen;
  under ``others``, the highest version seen of each registry this home followed before
  (a switch back must not reset its rollback protection).

The highest version is kept apart from the registry copy on purpose: it must survive the
copy expiring or being removed, or an attacker could replay an older (still validly signed)
registry once the newer one has gone stale. Each file is replaced atomically; the order of
writes (root, registry, state) means a crash between them only ever leaves the client
trusting more, never less: ``seen_version`` is also read back from the stored registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from deeting_tui.atomic import write_bytes_atomic, write_json_atomic

__all__ = ["RegistryMeta", "RegistryStateError", "RegistryStateFiles"]

#: Nothing we store is near this; a bigger file is damage, not data.
STATE_FILE_MAX = 64 * 2**20


class RegistryStateError(Exception):
    """A stored file is unreadable; the message names it and says how to recover."""


@dataclass(frozen=True)
class RegistryMeta:
    url: str | None = None
    etag: str | None = None
    seen_version: int = 0
    #: (url, highest version seen) of the registries followed before this one.
    others: tuple[tuple[str, int], ...] = ()

    def seen_of(self, url: str) -> int:
        """The highest version seen of ``url``, whether it is followed now or was before."""
        if url == self.url:
            return self.seen_version
        return dict(self.others).get(url, 0)


class RegistryStateFiles:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.root_file = folder / "root.json"
        self.registry_file = folder / "registry.json"
        self.state_file = folder / "state.json"

    def root(self) -> bytes | None:
        return self._read(self.root_file)

    def registry(self) -> bytes | None:
        return self._read(self.registry_file)

    def meta(self) -> RegistryMeta:
        raw = self._read(self.state_file)
        if raw is None:
            return RegistryMeta()
        try:
            data: Any = orjson.loads(raw)
            url, etag, seen = data["url"], data.get("etag"), data["seen_version"]
            others = data.get("others", {})
            valid = (
                (url is None or isinstance(url, str))
                and (etag is None or isinstance(etag, str))
                and _counter(seen)
                and isinstance(others, dict)
                and all(isinstance(k, str) and _counter(v) for k, v in others.items())
            )
        except (orjson.JSONDecodeError, TypeError, KeyError, AttributeError):
            valid = False
        if not valid:
            raise RegistryStateError(
                f"{self.state_file} is damaged — remove the folder {self.folder} and sync "
                "again with --url and --root"
            )
        return RegistryMeta(url, etag, seen, tuple(sorted(others.items())))

    def save(self, *, root: bytes | None, registry: bytes | None, meta: RegistryMeta) -> None:
        """Root first, then the registry, then the meta (see the module's docstring); None
        for a file that has not changed (a no-change sync writes nothing at all)."""
        if root is not None:
            write_bytes_atomic(self.root_file, root)
        if registry is not None:
            write_bytes_atomic(self.registry_file, registry)
        if meta == self.meta():
            return
        document: dict[str, Any] = {
            "url": meta.url,
            "etag": meta.etag,
            "seen_version": meta.seen_version,
        }
        if meta.others:
            document["others"] = dict(meta.others)
        write_json_atomic(self.state_file, document)

    def _read(self, path: Path) -> bytes | None:
        try:
            if path.stat().st_size > STATE_FILE_MAX:
                raise RegistryStateError(f"{path} is implausibly large — remove {self.folder}")
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RegistryStateError(f"{path}: unreadable ({exc.strerror})") from None


def _counter(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
