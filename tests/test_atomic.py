"""The one atomic writer shared by the kernel, the SDK and registry_tools."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from deeting_tui import atomic
from deeting_tui.sdk import write_text_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")

    def refuse(src: str, dst: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        atomic.write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_mode_sets_the_published_permissions(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "registry.json"
    atomic.write_bytes_atomic(target, b"{}", mode=0o644)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    atomic.write_bytes_atomic(tmp_path / "private", b"x")
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600


def test_the_sdk_writes_text_as_utf8(tmp_path: Path) -> None:
    target = tmp_path / "notes.json"
    write_text_atomic(target, "café ☕\n")
    write_text_atomic(target, "thé\n")
    assert target.read_bytes() == "thé\n".encode()
    assert [p.name for p in tmp_path.iterdir()] == ["notes.json"]
