from __future__ import annotations

from pathlib import Path

import pytest

from deeting_tui.command_output import error_line
from deeting_tui.kernel.permissions import (
    GrantStore,
    GrantStoreError,
    PermissionMissing,
    missing_scopes,
)
from deeting_tui.plugin.scopes import parse_scope


def scopes(*texts: str) -> list:
    return [parse_scope(t) for t in texts]


def test_broad_grants_cover_narrow_requests() -> None:
    assert missing_scopes(scopes("network:api.example.com"), scopes("network")) == []
    assert missing_scopes(scopes("shell", "gpu"), scopes("shell")) == scopes("gpu")


def test_grants_persist_and_check(tmp_path: Path) -> None:
    store = GrantStore(tmp_path / "grants.json")
    store.grant("weather", scopes("network:api.open-meteo.com"))
    again = GrantStore(tmp_path / "grants.json")
    again.check("weather", scopes("network:api.open-meteo.com"))
    with pytest.raises(PermissionMissing) as info:
        again.check("weather", scopes("network:api.open-meteo.com", "shell"))
    message = error_line(info.value)
    assert "permission 'shell' not granted to 'weather'" in message
    assert "run: deeting plugin grant weather shell" in message


def test_revoke_and_forget(tmp_path: Path) -> None:
    store = GrantStore(tmp_path / "grants.json")
    store.grant("x", scopes("shell", "gpu"))
    assert store.revoke("x", parse_scope("shell"))
    assert not store.revoke("x", parse_scope("shell"))
    assert store.granted("x") == scopes("gpu")
    store.forget("x")
    assert GrantStore(tmp_path / "grants.json").granted("x") == []


@pytest.mark.parametrize(
    "content", [b"{not json", b"[1, 2]", b'{"x": "shell"}', b'{"x": ["netwrk"]}']
)
def test_a_damaged_grant_file_is_an_error_not_an_empty_store(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "grants.json"
    path.write_bytes(content)
    with pytest.raises(GrantStoreError, match=r"grants\.json"):
        GrantStore(path)
