"""Trigger regexes run on RE2: linear time in the message, whatever the pattern.

The kernel tries every installed trigger against every message the user types, on its own
event loop. A backtracking engine (Python's ``re``) lets one pattern such as
``^(\\w+\\s?)*$`` take seconds, doubling with each character; RE2 guarantees time linear in
the text, and refuses the constructs it cannot run that way (backreferences, lookaround,
possessive quantifiers, atomic groups, conditionals). The manifest checker uses
:func:`compile_trigger` so such a pattern is refused at lint, at install and in the registry
with a message that names the construct and what to write instead.

RE2's syntax is Python's for everything else a trigger needs (``(?P<name>…)``, ``(?i:…)``,
classes, anchors). Two differences to know: ``\\w``, ``\\d``, ``\\s`` and ``\\b`` are ASCII
(use ``\\pL`` or ``[[:alpha:]]`` for letters of any script), and the end of the text is
``$`` or ``\\z``, never ``\\Z``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Protocol

import re2

from deeting_tui.errors import DeetingError

__all__ = [
    "SET_MAX_MEM",
    "TriggerMatch",
    "TriggerPattern",
    "TriggerRegexError",
    "TriggerSet",
    "compile_trigger",
]

#: Memory RE2 may use for one compiled trigger (its default); a pattern needing more is
#: refused as too large rather than run slowly.
PATTERN_MAX_MEM = 8 << 20
#: Memory for the one set the kernel builds from every installed trigger.
SET_MAX_MEM = 64 << 20


class TriggerMatch(Protocol):
    """What the kernel reads from a match: the groups, by name and by number."""

    def groupdict(self) -> dict[str, str | None]: ...

    def groups(self) -> tuple[str | None, ...]: ...


class TriggerPattern(Protocol):
    """A compiled trigger: RE2's pattern object, typed for what Deeting uses of it."""

    @property
    def pattern(self) -> str: ...

    @property
    def groupindex(self) -> dict[str, int]: ...

    def search(self, text: str) -> TriggerMatch | None: ...


class TriggerRegexError(DeetingError, ValueError):
    """RE2 cannot run the pattern; the message names the construct and the way out."""


def _options(max_mem: int) -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would write to the process's stderr: the chat's screen
    options.max_mem = max_mem
    return options


def compile_trigger(regex: str) -> TriggerPattern:
    """The RE2-compiled trigger, or :class:`TriggerRegexError` saying why it cannot be."""
    try:
        pattern: TriggerPattern = re2.compile(regex, _options(PATTERN_MAX_MEM))
    except re2.error as error:
        raise TriggerRegexError(_explain(regex, _text(error))) from None
    return pattern


class TriggerSet:
    """Many triggers in one RE2 set: a single pass over a message says which ones match.

    Patterns must already have passed :func:`compile_trigger`. Raises TriggerRegexError
    when the set as a whole does not fit in :data:`SET_MAX_MEM`.
    """

    def __init__(self, regexes: Iterable[str]) -> None:
        self._set = re2.Set.SearchSet(_options(SET_MAX_MEM))
        self.size = 0
        for regex in regexes:
            try:
                self._set.Add(regex)
            except re2.error as error:
                raise TriggerRegexError(_explain(regex, _text(error))) from None
            self.size += 1
        try:
            self._set.Compile()
        except re2.error:
            raise TriggerRegexError(
                f"{self.size} triggers together need more than {SET_MAX_MEM >> 20} MiB"
            ) from None

    def matching(self, text: str) -> set[int]:
        """Indexes (in the order added) of the patterns that match somewhere in ``text``."""
        if not self.size:
            return set()
        return set(self._set.Match(text) or ())


def _text(error: Exception) -> str:
    detail = error.args[0] if error.args else str(error)
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    return str(detail)


# RE2's message ("invalid perl operator: (?=" and the like) → what the construct is.
_GROUP_CONSTRUCTS = (
    ("(?P=", "a named backreference (?P=name)", "compare the parts in your tool instead"),
    ("(?=", "a lookahead (?=…)", "match the text and check it in your tool instead"),
    ("(?!", "a negative lookahead (?!…)", "match the text and check it in your tool instead"),
    ("(?<=", "a lookbehind (?<=…)", "match the text and check it in your tool instead"),
    ("(?<!", "a negative lookbehind (?<!…)", "match the text and check it in your tool instead"),
    ("(?>", "an atomic group (?>…)", "write a plain group (?:…): RE2 never backtracks"),
    ("(?(", "a conditional group (?(…)…)", "use an alternation (…|…)"),
    ("(?#", "a comment group (?#…)", "remove it"),
)
_BACKREFERENCE = re.compile(r"\\(?:[1-9][0-9]?|g)")
_LINEAR = "RE2 runs triggers in linear time and cannot run it"


def _explain(regex: str, detail: str) -> str:
    """One line: which construct, why it is refused, and what to write instead."""
    operator = detail.partition(": ")[2]
    if detail.startswith("invalid perl operator"):
        if operator == "(?P" and "(?P=" in regex:
            operator = "(?P="
        for prefix, construct, instead in _GROUP_CONSTRUCTS:
            if operator.startswith(prefix):
                return f"{construct} is not supported: {_LINEAR} — {instead}"
        if operator[2:3].isalpha():
            return (
                f"the inline flag {operator}…) is not supported: RE2 knows only i, m, s and U "
                "(like (?i) or (?i:…))"
            )
    if detail.startswith("invalid escape sequence"):
        if _BACKREFERENCE.fullmatch(operator):
            return (
                f"a backreference {operator} is not supported: {_LINEAR} — match the parts "
                "and compare them in your tool instead"
            )
        if operator == "\\Z":
            return "\\Z is not supported: write \\z (or $) for the end of the text"
        return f"the escape {operator} is not supported by RE2 (it knows \\pL, \\d, \\x{{…}}…)"
    if detail.startswith("bad repetition operator") and operator.endswith("+"):
        return (
            f"the possessive quantifier {operator} is not supported: {_LINEAR} — write "
            f"{operator[:-1]} (RE2 never backtracks, so it is not needed)"
        )
    if detail.startswith("invalid repetition size"):
        return (
            f"the repetition {operator} is too large: RE2 allows counts up to 1000 "
            "(nested counts multiplied)"
        )
    if "pattern too large" in detail:
        return f"the pattern is too large: it needs over {PATTERN_MAX_MEM >> 20} MiB compiled"
    return f"bad regex: {detail}"
