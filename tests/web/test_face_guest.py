"""The helpers guest.js gives every face (DeetingFace.kind, .field, .el), in real Chromium: the
words a failed card uses for a plugin's wrong value, and elements that take text, never markup.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from web.faces_support import FacePage

Opener = Callable[..., FacePage]


@pytest.fixture
def face(open_face: Opener) -> FacePage:
    return open_face("text")


def test_kind_names_every_json_type(face: FacePage) -> None:
    words = face.page.evaluate(
        "[null, undefined, [], {}, 1.5, true, 'x'].map((v) => DeetingFace.kind(v))"
    )
    assert words == ["null", "null", "a list", "an object", "a number", "a boolean", "a string"]
    face.assert_clean()


def test_field_returns_checks_and_says_where(face: FacePage) -> None:
    said = face.page.evaluate(
        """() => {
          const { field } = DeetingFace;
          const attempt = (f) => {
            try { return ['ok', f()]; } catch (e) { return ['error', e.message]; }
          };
          const data = { s: 'x', n: 2, i: 3, o: {}, l: [], nil: null, inf: Infinity };
          return [
            attempt(() => field(data, 's', 'string')),
            attempt(() => field(data, 'absent', 'string')),
            attempt(() => field(data, 'nil', 'number', 'daily/0/', false)),
            attempt(() => field(data, 'absent', 'string', 'results/2/', true)),
            attempt(() => field(data, 's', 'number', 'current/')),
            attempt(() => field(data, 'inf', 'number')),
            attempt(() => field(data, 'n', 'numberOrString')),
            attempt(() => field({ i: 1.5 }, 'i', 'integer')),
            attempt(() => field(data, 'l', 'object')),
            attempt(() => field(data, 'o', 'list')),
          ];
        }"""
    )
    assert said == [
        ["ok", "x"],
        ["ok", None],
        ["ok", None],
        ["error", "results/2/absent: missing"],
        ["error", "current/s: expected a number, not a string"],
        ["error", "inf: expected a number, not a number"],
        ["ok", 2],
        ["error", "i: expected an integer, not a number"],
        ["error", "l: expected an object, not a list"],
        ["error", "o: expected a list, not an object"],
    ]
    face.assert_clean()


def test_el_puts_text_in_as_text(face: FacePage) -> None:
    made = face.page.evaluate(
        """() => {
          const a = DeetingFace.el('p', 'note', '<b>bold</b>');
          const b = DeetingFace.el('span', '');
          return [a.outerHTML, b.outerHTML];
        }"""
    )
    assert made == ['<p class="note">&lt;b&gt;bold&lt;/b&gt;</p>', "<span></span>"]
    face.assert_clean()
