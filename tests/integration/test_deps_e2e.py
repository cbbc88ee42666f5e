"""A plugin with Python dependencies, the way people meet it: a maintainer builds a registry
with ``gen_registry`` (its wheels vendored, from a local index on 127.0.0.1), a user syncs and
``deeting plugin install``s it, and another installs the plugin's folder; in both, its tool
runs in the sandbox on its own tabulate and its own (older) orjson."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
from registry_support import maintainer_keys, registry_tool
from support import FIXTURES, run_deeting

PINS = {"tabulate": "0.9.0", "orjson": "3.11.4"}


def tool(*args: str) -> None:
    registry_tool(*args, timeout=300)  # gen_registry fetches wheels with pip


def probe(home: Path) -> dict[str, Any]:
    done = run_deeting("--script", "-", "--json", home=home, stdin="/probe\n", timeout=120)
    assert done.returncode == 0, done.stderr
    events = [orjson.loads(line) for line in done.stdout.splitlines()]
    (result,) = [event for event in events if event["type"] == "tool_result"]
    return dict(result["data"])


def assert_runs_on_its_own_copies(home: Path) -> None:
    data = probe(home)
    code = home / "data" / "plugins" / "versions" / "deps-demo" / "1.0.0"
    assert data["orjson_version"] == PINS["orjson"] != orjson.__version__
    assert Path(data["orjson_file"]).is_relative_to(code / "deps")
    assert Path(data["tabulate_file"]).is_relative_to(code / "deps")
    shown = run_deeting("plugin", "info", "deps-demo", home=home)
    assert "  dependencies: orjson==3.11.4, tabulate==0.9.0\n" in shown.stdout, shown.stdout


def test_from_a_gen_registry_registry(tmp_path: Path, home: Path, wheel_index: str) -> None:
    from registry_tools import serve

    sources = tmp_path / "plugins"
    shutil.copytree(FIXTURES / "deps-demo", sources / "deps-demo")
    keys = tmp_path / "keys"
    maintainer_keys(keys)
    site = tmp_path / "site"
    tool(
        "registry_tools.gen_registry", str(sources), "--out", str(site),
        "--root", str(keys / "root.json"), "--key", str(keys / "maintainer.key"),
    )  # fmt: skip
    with serve.start(site) as server:
        url = server.url + "registry.json"
        done = run_deeting(
            "registry", "sync", "--url", url, "--root", str(keys / "root.json"), home=home
        )
        assert done.returncode == 0, done.stderr
        done = run_deeting("plugin", "install", "deps-demo", home=home, timeout=120)
        assert done.returncode == 0, done.stderr
    assert "installed deps-demo 1.0.0 from the registry (verified)" in done.stdout
    assert_runs_on_its_own_copies(home)


def test_from_its_folder(tmp_path: Path, home: Path, wheel_index: str) -> None:
    folder = tmp_path / "deps-demo"
    shutil.copytree(FIXTURES / "deps-demo", folder)
    done = run_deeting("plugin", "install", str(folder), "--yes", home=home, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "installed deps-demo 1.0.0 (a local dev install from a folder)" in done.stdout
    assert_runs_on_its_own_copies(home)
