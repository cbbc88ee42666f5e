"""Session titles are one-line labels: the store cleans whatever a front end hands it."""

from __future__ import annotations

from pathlib import Path

import pytest

from deeting_tui.kernel.sessions.encoding import TITLE_MAX, clean_title
from deeting_tui.kernel.sessions.store import SessionStore


@pytest.fixture
def store(tmp_path: Path):
    with SessionStore(tmp_path / "sessions.db") as s:
        yield s


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (None, None),
        ("", None),
        ("   \t\n ", None),
        ("Lisbon trip", "Lisbon trip"),
        ("  padded  ", "padded"),
        ("two\nlines\tand  tabs", "two lines and tabs"),
        # The whole escape sequence goes; a lone control shows as U+FFFD (terminal_text.py)
        ("red \x1b[31mtext\x07\x00", "red text\ufffd\ufffd"),
        ("\u202eevil\u202c name", "evil name"),  # a bidi override would reverse the row
        ("\x1b]0;title\x07\x1b[2J\u202e", None),  # nothing but sequences: nothing left
        ("\x1b\x07", "\ufffd\ufffd"),
        ("ünïcödé 日本語 🙂", "ünïcödé 日本語 🙂"),
    ],
)
def test_clean_title(raw: str | None, clean: str | None) -> None:
    assert clean_title(raw) == clean


def test_a_long_title_is_capped() -> None:
    cleaned = clean_title("x" * 10_000)
    assert cleaned is not None and len(cleaned) == TITLE_MAX
    # a cut that lands after a space leaves no trailing blank
    cleaned = clean_title("y" * (TITLE_MAX - 1) + " tail")
    assert cleaned == "y" * (TITLE_MAX - 1)


def test_rename_and_create_store_the_cleaned_title(store: SessionStore) -> None:
    a = store.create("  first\ntitle ")
    assert store.get(a.id).title == "first title"
    store.rename(a.id, "a\x1b" + "b" * 500)
    title = store.get(a.id).title
    assert title is not None and title.startswith("ab") and len(title) == TITLE_MAX
    store.rename(a.id, " \t ")  # nothing left: back to the first message
    assert store.get(a.id).title is None
