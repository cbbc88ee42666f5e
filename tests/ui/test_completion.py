"""Completion of the chat's input line, as a pure function over text, tools and folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from deeting_tui.ui.completion import complete

TOOLS = {"calc": ["expr"], "note_add": ["text", "tag"], "note_list": []}


@pytest.mark.parametrize(
    ("typed", "completed"),
    [
        ("/h", "/help"),
        ("/p", "/plugins"),
        ("/s", "/sessions"),
        ("/n", "/new"),  # the chat's commands come before tools
        ("/note_a", "/note_add "),
        ("/note_l", "/note_list "),
        ("/ca", "/calc "),
        ("/calc ", "/calc expr="),
        ("/calc e", "/calc expr="),
        ("/note_add ", "/note_add text="),
        ("/note_add text=milk ", "/note_add text=milk tag="),
        ("/note_add tag=x t", "/note_add tag=x text="),
    ],
)
def test_commands_tools_and_argument_names_complete(typed: str, completed: str) -> None:
    assert complete(typed, TOOLS) == completed


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "hello /calc",  # free text goes to the assistant
        "/help",  # already whole
        "/zzz",
        "/zzz ",  # unknown tool: nothing to offer
        "/calc expr=2",  # a value is the user's own
        "/calc expr=2 ",  # every parameter given
        "/note_list ",  # no parameters
    ],
)
def test_nothing_is_offered_when_nothing_fits(typed: str) -> None:
    assert complete(typed, TOOLS) is None


def test_image_completes_paths_and_marks_folders(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.png").write_bytes(b"")
    (tmp_path / ".hidden").write_bytes(b"")
    (tmp_path / "notes.txt").write_bytes(b"")
    assert complete(f"/image {tmp_path}/ph", TOOLS) == f"/image {tmp_path}/photos/"
    assert complete(f"/image {tmp_path}/photos/", TOOLS) == f"/image {tmp_path}/photos/cat.png"
    assert complete(f"/image {tmp_path}/", TOOLS) == f"/image {tmp_path}/notes.txt"  # not hidden
    assert complete(f"/image {tmp_path}/.h", TOOLS) == f"/image {tmp_path}/.hidden"
    assert complete(f"/image {tmp_path}/nothing", TOOLS) is None
    assert complete(f"/image {tmp_path}/missing/x", TOOLS) is None  # unreadable: quiet
