"""Each official plugin folder follows docs/plugins.md: files, names, versions, tools, trigger."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
SCHEMAS = ROOT / "deeting_tui" / "plugin" / "schemas"
OFFICIAL = ("calc", "notes", "clock", "sysinfo", "weather")
#: What each official plugin may ask for — and nothing else (its README says why).
PERMISSIONS = {
    "sysinfo": ["filesystem:read:/proc"],
    "weather": ["network:api.open-meteo.com", "network:geocoding-api.open-meteo.com"],
}
FILES = ("package.json", "kimai.json", "llm-tool.yaml", "src/index.py", "src/handler.py")
ALLOWED_IMPORTS = ("deeting_tui.sdk",)  # and the plugin's own modules, beside index.py


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def tools(name: str) -> list[dict[str, Any]]:
    document = yaml.safe_load((PLUGINS / name / "llm-tool.yaml").read_text(encoding="utf-8"))
    assert isinstance(document, list) and document
    return document


#: Official plugins released past 1.0.0 (notes 1.1.0: SQLite instead of a JSON file).
VERSIONS = {"notes": "1.1.0"}


@pytest.mark.parametrize("name", OFFICIAL)
def test_layout(name: str) -> None:
    for rel in (*FILES, "README.md"):
        assert (PLUGINS / name / rel).is_file(), f"{name}/{rel} is missing"


@pytest.mark.parametrize("name", OFFICIAL)
def test_package_and_manifest_agree(name: str) -> None:
    package = read_json(PLUGINS / name / "package.json")
    kimai = read_json(PLUGINS / name / "kimai.json")
    assert package["name"] == kimai["name"] == name
    assert package["version"] == kimai["version"] == VERSIONS.get(name, "1.0.0")
    assert package["author"] == "Deeting" and package["license"] == "MIT"
    assert package["description"] and package["description"] == kimai["description"]
    assert kimai.get("permissions", []) == PERMISSIONS.get(name, [])


@pytest.mark.parametrize("name", OFFICIAL)
def test_manifest_matches_the_schema(name: str) -> None:
    schema = read_json(SCHEMAS / "kimai.schema.json")
    Draft202012Validator(schema).validate(read_json(PLUGINS / name / "kimai.json"))


@pytest.mark.parametrize("name", OFFICIAL)
def test_tools_are_valid(name: str) -> None:
    schema = read_json(SCHEMAS / "llm-tool.schema.json")
    document = tools(name)
    Draft202012Validator(schema).validate(document)
    names = [tool["name"] for tool in document]
    assert len(names) == len(set(names))
    for tool in document:
        assert set(tool) == {"name", "description", "parameters"}
        assert tool["description"].strip()
        parameters = tool["parameters"]
        Draft202012Validator.check_schema(parameters)
        assert parameters["type"] == "object"
        assert parameters["additionalProperties"] is False
        assert isinstance(parameters["required"], list)
        assert set(parameters["required"]) <= set(parameters["properties"])


@pytest.mark.parametrize("name", OFFICIAL)
def test_trigger_fits_its_tool(name: str) -> None:
    trigger = read_json(PLUGINS / name / "kimai.json")["trigger"]
    by_name = {tool["name"]: tool for tool in tools(name)}
    tool = by_name[trigger["tool"]]
    groups = set(re.compile(trigger["regex"]).groupindex)
    properties = tool["parameters"]["properties"]
    assert groups <= set(properties)
    assert set(tool["parameters"]["required"]) <= groups


@pytest.mark.parametrize("name", OFFICIAL)
def test_code_imports_only_the_stdlib_and_the_sdk(name: str) -> None:
    sources = sorted((PLUGINS / name / "src").glob("*.py"))
    own = {path.stem for path in sources}
    for path in sources:
        rel = path.relative_to(PLUGINS / name).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # from .handler import …
                    continue
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert module in (*ALLOWED_IMPORTS, *own) or top in sys.stdlib_module_names, (
                    f"{name}/{rel} imports {module}"
                )


PLAIN_IMPORT = """
import sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import index
from deeting_tui.sdk import Context, normalize_result

class Channel:
    def notify(self, method, params):
        pass

folder = Path(tempfile.mkdtemp())
ctx = Context(name="x", version="1.0.0", data_dir=folder / "data", cache_dir=folder / "cache",
              channel=Channel())
print(normalize_result(index.invoke(ctx, sys.argv[2], {}))["renderer"])
"""


@pytest.mark.parametrize(
    ("name", "tool"), [("calc", "calc"), ("notes", "note_list"), ("clock", "now")]
)
def test_index_also_imports_as_a_plain_module(name: str, tool: str) -> None:
    """Authors and tools may put src/ on sys.path and ``import index``; that must work too."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", PLAIN_IMPORT, str(PLUGINS / name / "src"), tool],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    if name == "calc":  # calc with no arguments refuses, with its own message
        assert "missing argument 'expr'" in done.stderr
    else:
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() in ("table", "key-value")


@pytest.mark.parametrize("name", OFFICIAL)
def test_check_plugin_finds_no_problem(name: str) -> None:
    checker = pytest.importorskip("deeting_tui.plugin.checker")
    spec, problems = checker.check_plugin(PLUGINS / name)
    assert [str(problem) for problem in problems] == []
    assert spec is not None
