"""The README's face pictures are the screenshot references, small, and all shown."""

from __future__ import annotations

from web.readme_pictures import MAX_BYTES, PICTURES, problems


def test_readme_pictures_match_the_references() -> None:
    found = problems()
    assert not found, (
        "the README's face pictures are out of date: run `python tests/web/readme_pictures.py`"
        " after rewriting the references:\n" + "\n".join(found)
    )


def test_readme_pictures_are_small() -> None:
    pictures = sorted(PICTURES.glob("*.png"))
    assert pictures, "no face pictures in docs/images/faces"
    for picture in pictures:
        assert picture.stat().st_size <= MAX_BYTES, picture.name
