"""Which scopes each plugin has been granted, and the check made before any activation.

Grants are stored per plugin name (not version) so an upgrade keeps what the user already
agreed to; an upgrade asking for more is caught by the same ``missing`` check. The OS
enforces the scopes inside the worker; this is the kernel's half: no grant, no start.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import orjson

from deeting_tui.errors import DeetingError, Fix, Hint
from deeting_tui.plugin.scopes import Scope, ScopeError, covers, parse_scope

from ..atomic import write_json_atomic


class PermissionMissing(DeetingError):
    """A plugin declares scopes the user has not granted; the hint grants the first."""

    def __init__(self, name: str, scopes: list[Scope]) -> None:
        self.name = name
        self.scopes = scopes
        first = scopes[0]
        more = f" (and {len(scopes) - 1} more)" if len(scopes) > 1 else ""
        super().__init__(
            f"permission '{first}' not granted to '{name}'{more}",
            Hint(Fix.GRANT, name, str(first)),
        )


class GrantStoreError(DeetingError):
    """grants.json is unreadable; nothing is granted until it is fixed."""


def missing_scopes(declared: Iterable[Scope], granted: Iterable[Scope]) -> list[Scope]:
    granted = list(granted)
    return [want for want in declared if not any(covers(have, want) for have in granted)]


class GrantStore:
    """grants.json: ``{"plugin": ["network:api.example.com", ...]}``, written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._grants: dict[str, list[Scope]] = self._load()

    def _load(self) -> dict[str, list[Scope]]:
        try:
            raw = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError) as exc:
            raise GrantStoreError(
                f"{self.path}: unreadable ({exc}); fix or remove it to start with no grants"
            ) from None
        if not isinstance(raw, dict):
            raise GrantStoreError(f"{self.path}: expected an object of plugin → scopes")
        grants: dict[str, list[Scope]] = {}
        for name, scopes in raw.items():
            if not isinstance(scopes, list):
                raise GrantStoreError(f"{self.path}: {name}: expected a list of scopes")
            try:
                grants[name] = [parse_scope(s) for s in scopes]
            except (ScopeError, TypeError) as exc:
                raise GrantStoreError(f"{self.path}: {name}: {exc}") from None
        return grants

    def _save(self) -> None:
        write_json_atomic(
            self.path, {name: [str(s) for s in scopes] for name, scopes in self._grants.items()}
        )

    def granted(self, name: str) -> list[Scope]:
        return list(self._grants.get(name, []))

    def grant(self, name: str, scopes: Iterable[Scope]) -> list[Scope]:
        """Add scopes; returns those that were new."""
        current = self._grants.setdefault(name, [])
        added = [s for s in scopes if s not in current]
        if added:
            current.extend(added)
            self._save()
        return added

    def revoke(self, name: str, scope: Scope) -> bool:
        current = self._grants.get(name, [])
        if scope not in current:
            return False
        current.remove(scope)
        self._save()
        return True

    def forget(self, name: str) -> None:
        if self._grants.pop(name, None) is not None:
            self._save()

    def check(self, name: str, declared: Iterable[Scope]) -> None:
        """Raise PermissionMissing unless every declared scope is covered by a grant."""
        missing = missing_scopes(declared, self.granted(name))
        if missing:
            raise PermissionMissing(name, missing)
