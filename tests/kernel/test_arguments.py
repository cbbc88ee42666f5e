from __future__ import annotations

import re

import pytest

from deeting_tui.kernel.arguments import (
    ArgumentError,
    coerce,
    parse_arguments,
    split_command,
    trigger_arguments,
)
from deeting_tui.plugin.triggers import compile_trigger

SCHEMA = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "limit": {"type": "integer"},
        "ratio": {"type": "number"},
        "loud": {"type": "boolean"},
        "tags": {"type": "array"},
    },
    "required": ["text"],
}


def test_split_command() -> None:
    assert split_command("/calc expr=1+1") == ("calc", "expr=1+1")
    assert split_command("  /now  ") == ("now", "")
    assert split_command("calc 1+1") is None
    assert split_command("/") is None
    assert split_command("/a b/c") == ("a", "b/c")


def test_values_follow_the_schema_types() -> None:
    line = 'text="hello world" limit=5 ratio=0.5 loud=yes tags=\'["a",1]\''
    args = parse_arguments(line, SCHEMA)
    assert args == {"text": "hello world", "limit": 5, "ratio": 0.5, "loud": True, "tags": ["a", 1]}


def test_string_parameter_keeps_numeric_looking_text() -> None:
    assert parse_arguments("text=007", SCHEMA) == {"text": "007"}


def test_bare_text_fills_the_first_required_string() -> None:
    assert parse_arguments("buy milk and eggs", SCHEMA) == {"text": "buy milk and eggs"}


def test_bad_pairs_explain_the_form() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}
    with pytest.raises(ArgumentError, match="expected key=value"):
        parse_arguments("a=1 oops", schema)
    with pytest.raises(ArgumentError, match="given twice"):
        parse_arguments("a=1 a=2", schema)
    with pytest.raises(ArgumentError, match="cannot read"):
        parse_arguments('a="unclosed', schema)


def test_unreadable_numbers_are_left_for_the_schema_check() -> None:
    assert coerce("many", {"type": "integer"}) == "many"
    assert coerce("1e3", {"type": "number"}) == 1000.0
    assert coerce("maybe", {"type": "boolean"}) == "maybe"
    assert coerce("[1,2]", None) == [1, 2]
    assert coerce("plain", None) == "plain"


def test_trigger_named_groups_and_single_unnamed_group() -> None:
    named = re.compile(r"^note (?P<text>.+?)(?: limit (?P<limit>\d+))?$").match("note hi limit 3")
    assert named is not None
    assert trigger_arguments(named, SCHEMA) == {"text": "hi", "limit": 3}
    unnamed = re.compile(r"^say (.+)$").match("say hello")
    assert unnamed is not None
    assert trigger_arguments(unnamed, SCHEMA) == {"text": "hello"}


def test_trigger_arguments_from_the_kernels_engine_re2() -> None:
    named = compile_trigger(r"^note (?P<text>.+?)(?: limit (?P<limit>\d+))?$").search(
        "note hi limit 3"
    )
    assert named is not None
    assert trigger_arguments(named, SCHEMA) == {"text": "hi", "limit": 3}
    unnamed = compile_trigger(r"^(?i:say) (.+)$").search("SAY héllo wörld")
    assert unnamed is not None
    assert trigger_arguments(unnamed, SCHEMA) == {"text": "héllo wörld"}
    two = compile_trigger(r"^(say) (.+)$").search("say hello")
    assert two is not None
    assert trigger_arguments(two, SCHEMA) == {}  # two unnamed groups: nothing to name them
