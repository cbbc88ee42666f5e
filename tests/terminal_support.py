"""What reached a terminal, checked for anything a plugin could drive it with.

An oracle of its own, on purpose not ``deeting_tui.terminal_text``: the tests must not pass
because the code under test agrees with itself. Importable without Rich or Textual, so the
escape suites can use it when they run again as an unprivileged user (with a smaller kit).
"""

from __future__ import annotations

import json
import re

from support import HOSTILE

#: The hostile fixture plugin: every string it hands the kernel carries the attacks below.
TERMJACK = HOSTILE / "termjack"
#: Its manifest's description, which its code also uses for replies, errors, logs, streams.
ATTACK: str = json.loads((TERMJACK / "kimai.json").read_text(encoding="utf-8"))["description"]
#: Words between the attacks: still shown, so neutralising did not eat the text around them.
VISIBLE = "titleclipclearc1rev"
#: Rich markup in the attack, which must show as written (never be read as markup).
MARKUP = "[bold]markup[/bold]"
#: What the OSC sequences carried (a title, a clipboard payload): dropped with them.
PAYLOADS = ("PWNED", "ZXZpbA==")

# What a terminal acts on: C0 controls but newline and tab (ESC, BEL, CR …), DEL, C1 (8-bit CSI,
# OSC, ST …) and the bidi embeddings, overrides and isolates.
_ACTIVE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def active(text: str) -> list[str]:
    """The characters in ``text`` a terminal would act on, each once, as reprs."""
    return sorted({repr(char) for char in _ACTIVE.findall(text)})


def assert_terminal_safe(output: str | bytes, where: str, *, payloads: bool = True) -> str:
    """``output`` (what was written to a terminal) holds no control character but newline and
    tab, no bidi control, and (with ``payloads``) none of what the attacks' sequences carried.
    Returns it as text (bytes must be UTF-8)."""
    text = output.decode("utf-8") if isinstance(output, bytes) else output
    found = active(text)
    assert not found, f"{where}: {', '.join(found)} reached the terminal: {text[:2000]!r}"
    if payloads:
        for payload in PAYLOADS:
            assert payload not in text, f"{where}: {payload!r} shown: {text[:2000]!r}"
    return text
