"""Every browser face, drawn from its example.json, against a committed reference picture.

One picture per face and theme at 720x480, and a 360-wide phone picture for the faces whose
layout changes on a phone. A face is drawn top-level through ``DeetingFace.drawForTest`` under
the production CSP (``shots_support``), with reduced motion, after its fonts and two painted
frames. Pictures match when at most ``MAX_FRACTION`` of the pixels moved by more than
``CHANNEL_DELTA`` in some channel: antialiasing and hinting differ between machines, a
changed layout or colour does not.

A missing reference FAILS, naming the command that writes the references
(``DEETING_UPDATE_SHOTS=1``); it never passes unseen. On a mismatch the actual picture, the
reference and a diff (differing pixels in red) are written to the test's tmp dir.

``open_face`` is tests/web/conftest.py's (faces_support), on a ``browser`` that lives for one
module: a session-wide sync Playwright would keep its loop running under every async test
collected after this module.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from web.faces_support import FacePage
from web.shots_support import (
    UPDATE_COMMAND,
    UPDATE_ENV,
    Shot,
    compare,
    example_of,
    face_names,
    screenshot,
)

Opener = Callable[..., FacePage]

#: A channel may move this much (of 255) before its pixel counts as different.
CHANNEL_DELTA = 48
#: This share of pixels may differ: a few glyphs' edges (at 720x480, 0.1% is ~350 pixels,
#: about ten glyphs of 13 px text), not a moved block. A face is mostly background, so a
#: looser share hides real changes: two changed words of the text face are 0.44%.
MAX_FRACTION = 0.001

DESKTOP = (720, 480)
PHONE = (360, 640)
#: Faces whose layout changes at phone width get a phone picture too.
PHONE_FACES = ("text", "table", "key-value", "chart", "weather-cards", "search-cards")


def shots() -> list[Shot]:
    found = []
    for face in face_names():
        for theme in ("light", "dark"):
            found.append(Shot(face, theme, *DESKTOP))
        if face in PHONE_FACES:
            found.append(Shot(face, "light", *PHONE, label="phone"))
    return found


@pytest.mark.parametrize("shot", shots(), ids=lambda shot: shot.key)
def test_face_matches_its_reference(open_face: Opener, shot: Shot, tmp_path: Path) -> None:
    png = screenshot(open_face, shot, example_of(shot.face))
    if os.environ.get(UPDATE_ENV) == "1":
        shot.reference.parent.mkdir(parents=True, exist_ok=True)
        shot.reference.write_bytes(png)
        return
    if not shot.reference.is_file():
        pytest.fail(
            f"no reference picture {shot.reference.name} for the {shot.face} face: look at "
            f"the drawing, then write the references with: {UPDATE_COMMAND}",
            pytrace=False,
        )
    difference, diff = compare(png, shot.reference, CHANNEL_DELTA)
    if not difference.size_matches or difference.fraction > MAX_FRACTION:
        actual = tmp_path / f"{shot.key}-actual.png"
        actual.write_bytes(png)
        (tmp_path / f"{shot.key}-reference.png").write_bytes(shot.reference.read_bytes())
        where = f"actual: {actual}"
        if diff is not None:
            diff.save(tmp_path / f"{shot.key}-diff.png")
            where += f", diff: {tmp_path / f'{shot.key}-diff.png'}"
        pytest.fail(
            f"{shot.key} differs from its reference: {difference.describe()} "
            f"(allowed {MAX_FRACTION:.1%} over a channel delta of {CHANNEL_DELTA}); {where}. "
            f"If the change is meant, rewrite the references with: {UPDATE_COMMAND}",
            pytrace=False,
        )


def test_every_face_has_its_pictures() -> None:
    """The parametrised list is not empty and covers every face with a browser face (a face
    added later gets its pictures, or its test fails for want of a reference)."""
    keys = {shot.key for shot in shots()}
    assert "text-light" in keys and "text-dark" in keys
    for face in face_names():
        assert f"{face}-light" in keys and f"{face}-dark" in keys


def test_the_comparison_sees_a_changed_drawing(open_face: Opener) -> None:
    """The tolerance forgives antialiasing, not content: the text face drawing other words is
    over the limit against text-light's reference, and the same drawing is within it."""
    shot = Shot("text", "light", *DESKTOP)
    if not shot.reference.is_file():
        pytest.fail(f"no reference {shot.reference.name}: {UPDATE_COMMAND}", pytrace=False)
    same = screenshot(open_face, shot, example_of("text"))
    other = screenshot(open_face, shot, {"text": "Disk usage of /var: 3.1 GB of 64 GB.\nOK."})
    assert compare(same, shot.reference, CHANNEL_DELTA)[0].fraction <= MAX_FRACTION
    changed, diff = compare(other, shot.reference, CHANNEL_DELTA)
    assert changed.size_matches and changed.fraction > MAX_FRACTION, changed.describe()
    assert diff is not None and diff.size == (DESKTOP[0], DESKTOP[1])
