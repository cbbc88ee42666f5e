from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from deeting_tui.plugin._schema import load_schema
from deeting_tui.plugin.checker import check_plugin, load_plugin
from deeting_tui.plugin.manifest import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    TRIGGER_PRIORITY,
    EventSubscription,
    Limits,
    ManifestError,
    Problem,
    TriggerSpec,
)
from deeting_tui.plugin.scopes import parse_scope

MakePlugin = Callable[..., Path]
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EXPECTED: dict[str, str] = json.loads((FIXTURES / "bad_plugins" / "EXPECTED.json").read_text())


def messages(path: Path) -> list[str]:
    spec, problems = check_plugin(path)
    assert (spec is None) == bool(problems)
    return [str(problem) for problem in problems]


def test_good_fixture_loads() -> None:
    spec = load_plugin(FIXTURES / "good_plugin")
    assert (spec.name, spec.version, spec.license) == ("echo-fixture", "1.0.0", "MIT")
    assert [tool.name for tool in spec.tools] == ["echo", "add"]
    assert spec.trigger == TriggerSpec("^echo (?P<text>.+)$", "echo", 50)
    assert spec.trigger.pattern.match("echo hi there")["text"] == "hi there"  # type: ignore[index]
    assert spec.tool("add") is not None and spec.tool("nope") is None
    assert spec.limits == Limits() and spec.events == () and spec.renderer is None
    assert spec.manifest["name"] == "echo-fixture"
    hash(spec)  # frozen specs can sit in sets and dict keys


def test_there_are_enough_bad_fixtures() -> None:
    cases = {p.name for p in (FIXTURES / "bad_plugins").iterdir() if p.is_dir()}
    assert cases == set(EXPECTED)
    assert len(cases) >= 12


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_each_bad_fixture_has_exactly_its_one_problem(case: str) -> None:
    found = messages(FIXTURES / "bad_plugins" / case)
    assert len(found) == 1, found
    assert EXPECTED[case] in found[0]
    with pytest.raises(ManifestError):
        load_plugin(FIXTURES / "bad_plugins" / case)


def test_problem_text() -> None:
    problem = Problem("kimai.json", "permissions[1]", "'netwrk' is not a scope")
    assert str(problem) == "kimai.json: permissions[1]: 'netwrk' is not a scope"
    assert str(Problem("kimai.json", "", "missing")) == "kimai.json: missing"


def test_manifest_error_lists_every_problem(make_plugin: MakePlugin) -> None:
    root = make_plugin(kimai={"version": "1", "colour": "red", "permissions": ["netwrk"]})
    with pytest.raises(ManifestError) as caught:
        load_plugin(root)
    lines = str(caught.value).splitlines()
    assert lines == [str(problem) for problem in caught.value.problems]
    assert any("'1' is not a semver version" in line for line in lines)
    assert any("unknown key 'colour'" in line for line in lines)
    assert any("permissions[0]: 'netwrk'" in line for line in lines)


def test_every_problem_is_collected(make_plugin: MakePlugin) -> None:
    root = make_plugin(
        kimai={"name": "Bad Name", "trigger": {"regex": "(", "tool": "echo"}},
        tools="- name: 'has space'\n  description: ''\n  parameters: {type: object}\n",
        remove=["src/index.py"],
    )
    found = messages(root)
    assert any("kimai.json: name:" in line for line in found)
    assert any("package.json: name:" in line for line in found)
    assert any("trigger.regex: bad regex" in line for line in found)
    assert any("[0].name: 'has space' is not a valid tool name" in line for line in found)
    assert any("[0].description: must not be empty" in line for line in found)
    assert any(line.startswith("src/index.py: missing") for line in found)


def test_not_a_directory(tmp_path: Path) -> None:
    assert "does not exist" in messages(tmp_path / "nope")[0]
    (tmp_path / "file").write_text("x")
    assert "is not a directory" in messages(tmp_path / "file")[0]


@pytest.mark.parametrize(
    ("kimai", "expected"),
    [
        ({"name": None}, "kimai.json: 'name' is required"),
        ({"version": 1}, "kimai.json: version: must be a string, not an integer"),
        ({"permissions": "network"}, "permissions: must be a list, not a string"),
        ({"permissions": [3]}, "permissions[0]: must be a string, not an integer"),
        ({"trigger": {"tool": "echo"}}, "kimai.json: trigger: 'regex' is required"),
        ({"trigger": {"regex": "x", "priority": "high"}}, "trigger.priority: must be an integer"),
        ({"trigger": {"regex": "x", "when": 1}}, "trigger: unknown key 'when'"),
        ({"renderer": "Cards!"}, "renderer: 'Cards!' is not a renderer name"),
        ({"events": [{"priority": 1}]}, "events[0]: 'topic' is required"),
        ({"events": [{"topic": "a b"}]}, "events[0].topic: 'a b' is not a topic"),
        (
            {"trigger": {"regex": "x", "priority": 1_000_000}},
            "trigger.priority: 1000000 is out of range: a priority is an integer from 0 to 100",
        ),
        ({"trigger": {"regex": "x", "priority": -1}}, "trigger.priority: -1 is out of range"),
        (
            {"events": [{"topic": "system.tick", "priority": 101}]},
            "events[0].priority: 101 is out of range: a priority is an integer from 0 to 100",
        ),
        ({"limits": {"call_timeout": 4000}}, "limits.call_timeout: must be at most 3600"),
        ({"limits": {"memory_mb": 8}}, "limits.memory_mb: must be at least 64, not 8"),
        ({"limits": {"memory_mb": 100.5}}, "limits.memory_mb: must be an integer"),
        ({"limits": {"tasks": 4}}, "limits.tasks: must be at least 8, not 4"),
        ({"limits": {"tasks": "many"}}, "limits.tasks: must be an integer, not a string"),
        ({"limits": {"disk_mb": 0}}, "limits.disk_mb: must be at least 16, not 0"),
        ({"limits": {"cpu_percent": 0}}, "limits.cpu_percent: must be at least 1, not 0"),
        ({"limits": {"idle_cpu_percent": 7000}}, "limits.idle_cpu_percent: must be at most 6400"),
        ({"limits": {"cpus": 2}}, "limits: unknown key 'cpus'"),
        ({"author": {"name": "x"}}, "author: must be a string, not an object"),
    ],
)
def test_schema_messages(make_plugin: MakePlugin, kimai: dict[str, object], expected: str) -> None:
    found = messages(make_plugin(kimai=kimai))
    assert any(expected in line for line in found), found


def test_optional_fields_become_the_spec(make_plugin: MakePlugin) -> None:
    root = make_plugin(
        kimai={
            "permissions": ["network:api.example.com", "filesystem:read:~/notes"],
            "renderer": "key-value",
            "events": [{"topic": "system.tick"}, {"topic": "plugin.*", "priority": 5}],
            "limits": {
                "call_timeout": 2.5,
                "memory_mb": 256,
                "tasks": 32,
                "disk_mb": 100,
                "cpu_percent": 200,
                "idle_cpu_percent": 5,
            },
            "trigger": {"regex": "^echo (?P<text>.+)$"},
            "$schema": "https://deeting.dev/schemas/kimai.schema.json",
        }
    )
    spec = load_plugin(root)
    assert spec.permissions == (
        parse_scope("network:api.example.com"),
        parse_scope("filesystem:read:~/notes"),
    )
    assert spec.renderer == "key-value"
    assert spec.events == (EventSubscription("system.tick", 0), EventSubscription("plugin.*", 5))
    assert spec.limits == Limits(
        2.5, 256, tasks=32, disk_mb=100, cpu_percent=200, idle_cpu_percent=5
    )
    assert spec.trigger == TriggerSpec("^echo (?P<text>.+)$", "echo", 50)  # default: first tool


def test_package_json_fills_in_and_npm_author_objects(make_plugin: MakePlugin) -> None:
    root = make_plugin(
        kimai={"description": None, "author": None},
        package={"author": {"name": "Ada", "email": "ada@example.com"}},
    )
    spec = load_plugin(root)
    assert spec.author == "Ada"
    assert spec.description.startswith("Echoes text")


def test_package_json_without_version(make_plugin: MakePlugin) -> None:
    found = messages(make_plugin(package={"version": None}))
    assert found == ["package.json: version: missing (should be '1.0.0', as in kimai.json)"]


def test_duplicate_json_keys_and_nan(make_plugin: MakePlugin) -> None:
    kimai = '{"name": "echo-fixture", "name": "x", "version": "1.0.0"}'
    assert "duplicate key 'name'" in messages(make_plugin(files={"kimai.json": kimai}))[0]
    nan = '{"name": "echo-fixture", "version": "1.0.0", "limits": {"call_timeout": NaN}}'
    assert "NaN is not a JSON number" in messages(make_plugin(files={"kimai.json": nan}))[0]


def test_kimai_must_be_an_object(make_plugin: MakePlugin) -> None:
    found = messages(make_plugin(files={"kimai.json": "[]"}))
    assert found == ["kimai.json: must be a JSON object, not a list"]


WRAPPED = """\
- type: function
  function:
    name: echo
    description: Repeat text.
    parameters: {type: object, properties: {text: {type: string}}, required: [text]}
"""


def test_openai_wrapper_form(make_plugin: MakePlugin) -> None:
    spec = load_plugin(make_plugin(tools=WRAPPED, kimai={"trigger": None}))
    assert [tool.name for tool in spec.tools] == ["echo"]
    bad = WRAPPED.replace("parameters: {type: object", "parameters: {type: array")
    found = messages(make_plugin(tools=bad, kimai={"trigger": None}))
    assert found == ["llm-tool.yaml: [0].function.parameters.type: must be 'object', not 'array'"]
    extra = WRAPPED + "  extra: 1\n"
    found = messages(make_plugin(tools=extra, kimai={"trigger": None}))
    assert found == ["llm-tool.yaml: [0]: unknown key 'extra' (allowed: type, function)"]


def test_single_tool_mapping(make_plugin: MakePlugin) -> None:
    single = "name: echo\ndescription: Repeat text.\nparameters: {type: object}\n"
    spec = load_plugin(make_plugin(tools=single))
    assert spec.tool("echo") is not None
    bad = single.replace("{type: object}", "{}")
    assert messages(make_plugin(tools=bad)) == ["llm-tool.yaml: parameters: 'type' is required"]


@pytest.mark.parametrize(
    ("tools", "expected"),
    [
        ("just a string\n", "must be a tool (a mapping"),
        ("", "not an empty file"),
        ("- 3\n", "[0]: must be a mapping with name, description and parameters, not an integer"),
        ("- name: x\n  description: d\n", "[0]: 'parameters' is required"),
        ("- name: x\n  description: d\n  parameters: {type: object}\n  paramz: 1\n", "unknown key"),
        ("- name: x\n  description: 5\n  parameters: {type: object}\n", "must be a string"),
        ("- name: x\n  description: d\n  parameters: [1]\n", "parameters: must be an object"),
    ],
)
def test_tool_problems(make_plugin: MakePlugin, tools: str, expected: str) -> None:
    found = messages(make_plugin(tools=tools, kimai={"trigger": None}))
    assert any(expected.replace("not an empty file", "an empty file") in f for f in found), found


def test_yaml_error_names_the_line(make_plugin: MakePlugin) -> None:
    found = messages(make_plugin(tools="- name: x\n  description: [\n"))
    assert found[0].startswith("llm-tool.yaml: not valid YAML (line ")


def test_no_tools_is_fine_without_a_trigger(make_plugin: MakePlugin) -> None:
    assert load_plugin(make_plugin(tools="[]\n", kimai={"trigger": None})).tools == ()
    found = messages(make_plugin(tools="[]\n", kimai={"trigger": {"regex": "^x$"}}))
    assert found == ["kimai.json: trigger: there is no tool in llm-tool.yaml to route messages to"]


def test_trigger_groups(make_plugin: MakePlugin) -> None:
    # An unnamed group fills the first required string parameter: nothing to check by name.
    assert load_plugin(make_plugin(kimai={"trigger": {"regex": "^say (.+)$"}})).trigger
    # A tool without declared properties accepts whatever groups the regex names.
    tools = "- name: echo\n  description: d\n  parameters: {type: object}\n"
    root = make_plugin(tools=tools, kimai={"trigger": {"regex": "^(?P<anything>.+)$"}})
    assert load_plugin(root).trigger is not None


def test_symlinks(make_plugin: MakePlugin, tmp_path: Path) -> None:
    outside = tmp_path / "secret.py"
    outside.write_text("x = 1\n")
    root = make_plugin()
    os.symlink(root / "src" / "index.py", root / "src" / "alias.py")
    assert messages(root) == []  # a link that stays inside is fine
    os.symlink(outside, root / "src" / "x.py")
    assert messages(root) == ["src/x.py: symlink points outside the plugin"]


def test_symlinked_manifest_is_not_read(make_plugin: MakePlugin, tmp_path: Path) -> None:
    root = make_plugin()
    outside = tmp_path / "elsewhere.json"
    outside.write_text((root / "kimai.json").read_text())
    (root / "kimai.json").unlink()
    os.symlink(outside, root / "kimai.json")
    assert messages(root) == ["kimai.json: symlink points outside the plugin"]


def test_bundled_schemas_are_valid_json_schema() -> None:
    for name in ("kimai.schema.json", "llm-tool.schema.json"):
        Draft202012Validator.check_schema(load_schema(name))
    good = json.loads((FIXTURES / "good_plugin" / "kimai.json").read_text())
    assert Draft202012Validator(load_schema("kimai.schema.json")).is_valid(good)


@pytest.mark.parametrize("topic", ["user.message", "user.image", "user.*", "*"])
def test_subscribing_to_user_input_needs_the_messages_scope(
    make_plugin: MakePlugin, topic: str
) -> None:
    found = messages(make_plugin(kimai={"events": [{"topic": "system.tick"}, {"topic": topic}]}))
    assert found == [
        f"kimai.json: events[1].topic: {topic!r} delivers what the user types: add "
        '"messages" to permissions (the user is asked to allow it), or subscribe to narrower '
        "topics (like system.tick)"
    ]
    spec = load_plugin(
        make_plugin(kimai={"permissions": ["messages"], "events": [{"topic": topic}]})
    )
    assert spec.permissions == (parse_scope("messages"),)
    assert spec.events == (EventSubscription(topic, 0),)


def test_the_schema_and_the_checker_agree_on_the_priority_range() -> None:
    schema = load_schema("kimai.schema.json")["properties"]
    for where in (schema["trigger"]["properties"], schema["events"]["items"]["properties"]):
        assert (where["priority"]["minimum"], where["priority"]["maximum"]) == (
            PRIORITY_MIN,
            PRIORITY_MAX,
        )
    assert schema["trigger"]["properties"]["priority"]["default"] == TRIGGER_PRIORITY


def test_the_core_renderer_names_are_the_catalogs() -> None:
    """What a manifest may name (lint, install) is exactly what the catalog draws."""
    from deeting_tui.render.catalog import names
    from deeting_tui.resources import core_renderer_names

    assert sorted(core_renderer_names()) == names()
