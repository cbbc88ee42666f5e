"""gen_registry.py on copies of the official plugins: reproducible, verifiable, append-only."""

from __future__ import annotations

import json
import os
import shutil
import stat
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bundle_support import official_version

from deeting_tui.kernel.plugins.loader import COPY_IGNORE
from deeting_tui.plugin.archive import extract_zip
from deeting_tui.plugin.checker import check_plugin
from deeting_tui.store import trust
from registry_tools import ToolError
from registry_tools.artifacts import LintFailure
from registry_tools.reprozip import build_zip, is_ignored

Snapshot = Callable[[Path], dict[str, bytes]]
Build = Callable[..., Any]
Keyring = Any  # conftest's Keyring: key pairs by name, .root(...) writes a root
OFFICIAL_NAMES = {"calc", "clock", "notes", "sysinfo", "weather"}


def _registry(out: Path, root: Path, now: datetime) -> trust.Registry:
    trusted = trust.verify_root(root.read_bytes(), now=now)
    return trust.verify_registry((out / "registry.json").read_bytes(), trusted, now=now)


def _document(out: Path) -> dict[str, Any]:
    return json.loads(json.loads((out / "registry.json").read_bytes())["signed"])


def _bump(folder: Path, version: str) -> None:
    for name in ("kimai.json", "package.json"):
        document = json.loads((folder / name).read_text())
        document["version"] = version
        (folder / name).write_text(json.dumps(document, indent=2))


# -- what is built verifies ---------------------------------------------------------------


def test_every_artifact_and_the_registry_verify_with_the_client_rules(
    tmp_path: Path, build: Build, keyring: Keyring, now: datetime
) -> None:
    summary = build()
    out = tmp_path / "out"
    registry = _registry(out, keyring.folder / "root.json", now)
    trusted = trust.verify_root((out / "root.json").read_bytes(), now=now)
    assert summary.version == registry.version == 1
    assert registry.root_version == trusted.version == 1
    assert set(registry.plugins) == OFFICIAL_NAMES
    for name in OFFICIAL_NAMES:
        version = official_version(name)
        artifact = registry.find(name, version)
        assert artifact.url == f"artifacts/{name}-{version}.zip"
        data = (out / artifact.url).read_bytes()
        trust.verify_artifact(data, artifact, trusted)
        assert stat.S_IMODE((out / artifact.url).stat().st_mode) == 0o644
    weather = registry.find("weather")
    assert weather.permissions == (
        "network:api.open-meteo.com",
        "network:geocoding-api.open-meteo.com",
    )
    assert weather.description.startswith("Current weather")
    document = _document(out)
    assert document["_type"] == "deeting-registry" and document["spec_version"] == 1
    assert document["plugins"]["weather"]["permissions"] == list(weather.permissions)


def test_each_zip_installs_through_the_clients_extractor(tmp_path: Path, build: Build) -> None:
    build()
    for name in OFFICIAL_NAMES:
        zipped = tmp_path / "out" / "artifacts" / f"{name}-{official_version(name)}.zip"
        root = extract_zip(zipped, tmp_path / name)
        assert root == tmp_path / name / name  # one top folder, named after the plugin
        spec, problems = check_plugin(root)
        assert problems == [] and spec is not None and spec.name == name


def test_zip_entries_are_sorted_dated_1980_and_normalised(sources: Path, tmp_path: Path) -> None:
    calc = sources / "calc"
    (calc / "src" / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(calc / "src" / "run.sh", 0o700)
    os.chmod(calc / "README.md", 0o600)
    (calc / "src" / "__pycache__").mkdir()
    (calc / "src" / "__pycache__" / "index.cpython-311.pyc").write_bytes(b"\0")
    (calc / ".DS_Store").write_bytes(b"\0")
    (calc / ".git").mkdir()
    (calc / ".git" / "HEAD").write_text("ref\n")
    (tmp_path / "calc.zip").write_bytes(build_zip(calc, "calc"))
    with zipfile.ZipFile(tmp_path / "calc.zip") as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert names[0] == "calc/"
    assert all(name.startswith("calc/") for name in names)
    assert not any("__pycache__" in n or ".git" in n or ".DS_Store" in n for n in names)
    modes = {info.filename: info.external_attr >> 16 for info in infos}
    assert modes["calc/"] == stat.S_IFDIR | 0o755
    assert modes["calc/src/"] == stat.S_IFDIR | 0o755
    assert modes["calc/README.md"] == stat.S_IFREG | 0o644
    assert modes["calc/src/run.sh"] == stat.S_IFREG | 0o755
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.compress_type for info in infos if not info.is_dir()} == {zipfile.ZIP_DEFLATED}


def test_skips_at_least_what_a_folder_install_skips() -> None:
    names = ["__pycache__", "x.pyc", ".git", ".DS_Store", "keep.py", ".github", "data"]
    assert COPY_IGNORE("/", names) <= {name for name in names if is_ignored(name)}
    assert not is_ignored("keep.py") and not is_ignored("data")


# -- reproducible -------------------------------------------------------------------------


def test_two_runs_give_identical_zips_whatever_the_clock_mtimes_or_modes(
    tmp_path: Path, build: Build, sources: Path, now: datetime, snapshot: Snapshot
) -> None:
    build(out=tmp_path / "one")
    handler = sources / "calc" / "src" / "handler.py"
    os.utime(handler, (0, 1_000_000_000))
    os.chmod(handler, 0o600)
    os.chmod(sources / "notes" / "src", 0o700)
    (sources / "weather" / "src" / "__pycache__").mkdir()
    (sources / "weather" / "src" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    build(out=tmp_path / "two", when=now + timedelta(hours=5))
    first, second = (
        snapshot(tmp_path / "one" / "artifacts"),
        snapshot(tmp_path / "two" / "artifacts"),
    )
    assert len(first) == len(OFFICIAL_NAMES)
    assert first == second


def test_the_executable_bit_is_part_of_the_artifact(sources: Path) -> None:
    """The other side of reproducibility: what matters does change the bytes."""
    before = build_zip(sources / "calc", "calc")
    os.chmod(sources / "calc" / "src" / "handler.py", 0o755)
    assert build_zip(sources / "calc", "calc") != before


def test_a_rerun_raises_the_version_and_changes_only_version_and_expiry(
    tmp_path: Path, build: Build, now: datetime, snapshot: Snapshot
) -> None:
    build()
    out = tmp_path / "out"
    zips, first = snapshot(out / "artifacts"), _document(out)
    summary = build(when=now + timedelta(minutes=1))
    second = _document(out)
    assert summary.version == second["version"] == 2
    assert snapshot(out / "artifacts") == zips
    assert second["expires"] != first["expires"]
    for key in ("version", "expires"):
        first.pop(key), second.pop(key)
    assert first == second


# -- append-only history -------------------------------------------------------------------


def test_previous_versions_stay_listed_while_their_zips_exist(
    tmp_path: Path, build: Build, sources: Path, keyring: Keyring, now: datetime
) -> None:
    out = tmp_path / "out"
    build()
    _bump(sources / "calc", "1.1.0")
    (sources / "calc" / "README.md").write_text("# calc 1.1\n")
    summary = build()
    registry = _registry(out, keyring.folder / "root.json", now)
    assert summary.version == 2
    assert set(registry.plugins["calc"]) == {"1.0.0", "1.1.0"}
    assert registry.find("calc").version == "1.1.0"  # latest
    old = registry.find("calc", "1.0.0")
    trusted = trust.verify_root((keyring.folder / "root.json").read_bytes(), now=now)
    trust.verify_artifact((out / old.url).read_bytes(), old, trusted)
    (out / "artifacts" / "calc-1.0.0.zip").unlink()
    build()
    assert set(_registry(out, keyring.folder / "root.json", now).plugins["calc"]) == {"1.1.0"}


def test_new_bytes_under_a_published_version_are_refused(
    tmp_path: Path, build: Build, sources: Path, snapshot: Snapshot
) -> None:
    build()
    before = snapshot(tmp_path / "out")
    (sources / "calc" / "README.md").write_text("# changed without a version bump\n")
    with pytest.raises(ToolError, match=r"calc-1\.0\.0\.zip already exists with different "
                       r"contents — bump the version of 'calc'"):  # fmt: skip
        build()
    assert snapshot(tmp_path / "out") == before


def test_a_tampered_previous_registry_cannot_name_files_outside_artifacts(
    tmp_path: Path, build: Build, snapshot: Snapshot
) -> None:
    build()
    out = tmp_path / "out"
    outer = json.loads((out / "registry.json").read_bytes())
    document = json.loads(outer["signed"])
    document["plugins"]["../../x"] = document["plugins"]["calc"]
    outer["signed"] = json.dumps(document)
    (out / "registry.json").write_text(json.dumps(outer))
    before = snapshot(out)
    with pytest.raises(ToolError, match="is not a registry this tool wrote"):
        build()
    assert snapshot(out) == before


# -- refusals that write nothing ----------------------------------------------------------


def test_a_plugin_with_problems_fails_the_run_and_nothing_is_written(
    tmp_path: Path, sources: Path, keyring: Keyring, now: datetime, run_tool: Any
) -> None:
    keyring.root(["alice"], 1, now=now)
    (sources / "notes" / "kimai.json").write_text('{"name": "Notes!", "version": "1.0"}')
    done = run_tool(
        "gen_registry", sources, "--out", tmp_path / "out",
        "--root", keyring.folder / "root.json", "--key", keyring["alice"].secret,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"{sources / 'notes'}: kimai.json" in done.stderr
    assert "1 plugin has problems" in done.stderr and "nothing was written" in done.stderr
    assert not (tmp_path / "out").exists()


def test_lint_failure_leaves_an_existing_registry_alone(
    tmp_path: Path, build: Build, sources: Path, snapshot: Snapshot
) -> None:
    build()
    before = snapshot(tmp_path / "out")
    (sources / "calc" / "src" / "index.py").unlink()
    with pytest.raises(LintFailure) as failure:
        build()
    assert any("calc" in line for line in failure.value.problems)
    assert snapshot(tmp_path / "out") == before


def test_a_symlink_in_a_plugin_is_refused(tmp_path: Path, build: Build, sources: Path) -> None:
    (sources / "calc" / "link.md").symlink_to("README.md")
    with pytest.raises(LintFailure) as failure:
        build()
    assert any("a symlink cannot go into a plugin archive" in p for p in failure.value.problems)
    assert not (tmp_path / "out").exists()


def test_keys_below_the_roots_threshold_are_refused(
    tmp_path: Path, build: Build, keyring: Keyring, now: datetime
) -> None:
    root = keyring.root(["alice", "bob"], 2, now=now)
    with pytest.raises(ToolError, match="the root needs 2 signatures and --key gives 1"):
        build(root=root, keys=["alice"])
    with pytest.raises(ToolError, match="is not one of the root's keys"):
        build(root=root, keys=["alice", "mallory"])
    with pytest.raises(ToolError, match="the root needs 2 signatures and --key gives 1"):
        build(root=root, keys=["alice", "alice"])  # one key twice is still one key
    assert not (tmp_path / "out").exists()
    build(root=root, keys=["alice", "bob"])
    artifact = _registry(tmp_path / "out", root, now).find("calc")
    assert len({keyid for keyid, _ in artifact.signatures}) == 2


def test_an_expired_root_is_refused(
    tmp_path: Path, build: Build, keyring: Keyring, now: datetime
) -> None:
    root = keyring.root(["alice"], 1, now=now - timedelta(days=10), expires_days=5)
    with pytest.raises(ToolError, match=r"expired at .* rotate it"):
        build(root=root)
    assert not (tmp_path / "out").exists()


def test_bad_options_are_refused(tmp_path: Path, build: Build) -> None:
    with pytest.raises(ToolError, match=r"--base-url 'example\.com' must be an http"):
        build(base_url="example.com")
    with pytest.raises(ToolError, match="--expires-days 0 must be at least 1"):
        build(expires_days=0)
    with pytest.raises(ToolError, match="holds no plugin folders"):
        (tmp_path / "empty").mkdir()
        build(plugins=tmp_path / "empty")
    assert not (tmp_path / "out").exists()


# -- urls and roots -----------------------------------------------------------------------


def test_base_url_makes_absolute_artifact_urls(
    tmp_path: Path, build: Build, keyring: Keyring, now: datetime
) -> None:
    build(base_url="https://plugins.example.org/deeting/")
    registry = _registry(tmp_path / "out", keyring.folder / "root.json", now)
    url = "https://plugins.example.org/deeting/artifacts/calc-1.0.0.zip"
    assert registry.find("calc").url == url


def test_root_is_copied_into_out_with_its_chain(
    tmp_path: Path, build: Build, keyring: Keyring, now: datetime
) -> None:
    first = keyring.root(["alice"], 1, now=now)
    first_raw = first.read_bytes()
    second = keyring.root(["bob"], 1, ["alice", "bob"], now=now, previous=first)
    build(root=second, keys=["bob"])
    out = tmp_path / "out"
    assert (out / "root.json").read_bytes() == second.read_bytes()
    assert (out / "roots" / "1.root.json").read_bytes() == first_raw
    assert (out / "roots" / "2.root.json").read_bytes() == second.read_bytes()
    assert _document(out)["root_version"] == 2


def test_an_older_root_never_replaces_the_published_one(
    tmp_path: Path, build: Build, keyring: Keyring, now: datetime, snapshot: Snapshot
) -> None:
    first = keyring.root(["alice"], 1, now=now)
    saved = tmp_path / "old-root"
    saved.mkdir()
    shutil.copy(first, saved / "root.json")
    keyring.root(["alice"], 1, now=now, previous=first)  # version 2, same key
    build(root=first)
    before = snapshot(tmp_path / "out")
    with pytest.raises(ToolError, match="is root version 2, not older than --root's 1"):
        build(root=saved / "root.json")
    assert snapshot(tmp_path / "out") == before


def test_the_command_line_builds_and_reports(
    tmp_path: Path, sources: Path, keyring: Keyring, now: datetime, run_tool: Any
) -> None:
    root = keyring.root(["alice"], 1, now=now)
    out = tmp_path / "out"
    args = [sources, "--out", out, "--root", root, "--key", keyring["alice"].secret]
    done = run_tool("gen_registry", *args, "--base-url", "http://127.0.0.1:8000")
    assert done.returncode == 0, done.stderr
    assert "built calc 1.0.0 (" in done.stderr and " kB)" in done.stderr
    assert "version 1: 5 plugins, 5 versions (5 from source, 0 kept)" in done.stdout
    registry = _registry(out, root, now)
    assert registry.find("calc").url == "http://127.0.0.1:8000/artifacts/calc-1.0.0.zip"
    help_text = run_tool("gen_registry", "--help")
    assert help_text.returncode == 0 and "--base-url" in help_text.stdout
