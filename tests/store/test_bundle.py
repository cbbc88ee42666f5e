"""The official plugins deeting carries: a fresh home's first run, listings, installs from the
bundle, and every refusal (a damaged bundle, a used home, two first runs at once)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from bundle_support import DEFAULTS, OTHERS, REPO, make_bundle, official_version
from registry_support import TestRegistry, client_at
from support import DEETING, FAST_POLICY, run_deeting

from deeting_tui.command_output import error_line
from deeting_tui.compose import fresh_home, plug_ports
from deeting_tui.errors import DeetingError
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.plugins.info import Origin
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import resolve_paths
from deeting_tui.store.first_run import MARKER
from registry_tools import serve
from registry_tools.gen_registry import generate
from registry_tools.keys import build_root, write_root

SOURCE = "bundled with deeting 0.1.0"


@pytest.fixture(scope="session")
def bundle_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bundle-cache")


@pytest.fixture
def bundle(tmp_path: Path, bundle_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = make_bundle(tmp_path / "bundled", bundle_cache)
    monkeypatch.setenv("DEETING_BUNDLE", str(folder))
    return folder


@pytest.fixture
async def composed(home: Path) -> AsyncIterator[Callable[[], Kernel]]:
    """Kernels composed as the CLI and the chat compose theirs (fresh-home check first)."""
    made: list[Kernel] = []

    def make() -> Kernel:
        paths = resolve_paths()
        first_run = fresh_home(paths)
        kernel = Kernel(paths, assistant=OfflineAssistant(), policy=FAST_POLICY)
        made.append(plug_ports(kernel, first_run=first_run))
        return made[-1]

    try:
        yield make
    finally:
        for kernel in made:
            await kernel.shutdown()


def marker(home: Path) -> str | None:
    path = home / "data" / "plugins" / MARKER
    return path.read_text().strip() if path.exists() else None


def damage(path: Path) -> None:
    """One byte changed in the middle, the length kept."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


async def test_a_fresh_home_gets_the_plugins_that_need_no_consent(
    home: Path, bundle: Path, composed: Callable[[], Kernel]
) -> None:
    kernel = composed()
    assert await kernel.plugins.first_run() is None
    records = {r.name: r for r in kernel.installed.all()}
    assert tuple(sorted(records)) == DEFAULTS
    for record in records.values():
        assert (record.enabled, record.dev, record.source) == (True, False, SOURCE)
    assert {i.origin for i in kernel.plugins.all()} == {Origin.BUNDLED}
    assert tuple(p.name for p in kernel.plugins.available()) == OTHERS
    assert marker(home) == "done"
    assert not (home / "data" / "registry").exists()  # the user's registry state: untouched
    # They start with the kernel, like any enabled plugin.
    assert await kernel.start(ticker=False) == []
    assert sorted(kernel.loader.runtimes) == list(DEFAULTS)


async def test_the_first_run_happens_once_and_an_uninstalled_calc_stays_away(
    home: Path, bundle: Path, composed: Callable[[], Kernel]
) -> None:
    first = composed()
    await first.plugins.first_run()
    await first.plugins.uninstall("calc")
    again = composed()
    assert not again.plugins.bundled.first_run  # type: ignore[union-attr]
    assert await again.plugins.first_run() is None
    assert again.installed.get("calc") is None
    assert [p.name for p in again.plugins.available()] == ["calc", *OTHERS]


@pytest.mark.parametrize(
    "used",
    ["data/sessions.sqlite3", "data/plugins/state.json", "data/grants.json", "data/registry"],
)
async def test_a_used_home_gets_no_plugins_pushed_into_it(
    home: Path, bundle: Path, composed: Callable[[], Kernel], used: str
) -> None:
    """A home from before deeting carried plugins: what it has is the user's choice."""
    path = home / used
    path.parent.mkdir(parents=True, exist_ok=True)
    if used == "data/registry":
        path.mkdir()
    elif used.endswith("state.json"):
        path.write_bytes(b'{"plugins": {}}')
    elif used.endswith("grants.json"):
        path.write_bytes(b"{}")
    else:  # a chat was opened here once
        kernel = Kernel(resolve_paths())
        kernel.open_session()
        kernel.sessions.close()
    kernel = composed()
    assert await kernel.plugins.first_run() is None
    assert kernel.installed.all() == []
    assert tuple(p.name for p in kernel.plugins.available()) == DEFAULTS + OTHERS
    assert marker(home) is None


async def test_a_tampered_zip_is_refused_with_one_line_and_nothing_installed(
    home: Path, bundle: Path, composed: Callable[[], Kernel]
) -> None:
    damage(bundle / "artifacts" / "calc-1.0.0.zip")
    kernel = composed()
    warning = await kernel.plugins.first_run()
    assert warning is not None and "\n" not in warning
    assert "calc 1.0.0: sha256" in warning and "reinstall deeting" in warning
    assert kernel.installed.all() == []
    assert not (home / "data" / "plugins" / "versions" / "calc").exists()
    assert marker(home) == "pending"  # tried again at the next start
    # The others install from the bundle one by one; calc is refused the same way.
    await kernel.plugins.install("clock")
    with pytest.raises(DeetingError, match="sha256") as refused:
        await kernel.plugins.install("calc")
    assert error_line(refused.value).count("\n") == 0
    assert [r.name for r in kernel.installed.all()] == ["clock"]


async def test_a_damaged_index_lists_nothing_and_an_install_says_why(
    home: Path, bundle: Path, composed: Callable[[], Kernel]
) -> None:
    damage(bundle / "registry.json")
    kernel = composed()
    warning = await kernel.plugins.first_run()
    assert warning is not None and "damaged" in warning and "valid signatures" in warning
    assert kernel.plugins.available() == []
    with pytest.raises(DeetingError, match="bundled with deeting are damaged"):
        await kernel.plugins.install("calc")
    assert kernel.installed.all() == []


def test_a_damaged_bundle_is_one_warning_and_deeting_still_starts(home: Path, bundle: Path) -> None:
    damage(bundle / "artifacts" / "calc-1.0.0.zip")
    done = run_deeting("--script", "-", home=home, stdin="hello\n", timeout=60)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("deeting: ")]
    assert len(warnings) == 1 and "not installed" in warnings[0]
    assert "Traceback" not in done.stderr


def test_two_first_runs_at_once_install_once(home: Path, bundle: Path) -> None:
    """Two deeting processes start on one fresh home: neither fails, nothing twice."""
    import os

    env = {**os.environ, "DEETING_HOME": str(home)}
    processes = [
        subprocess.Popen(
            [*DEETING, "plugin", "list", "--json"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert err == ""
        states = {r["name"]: r["state"] for r in orjson.loads(out)["plugins"]}
        assert states == {
            **dict.fromkeys(DEFAULTS, "ready"),  # their workers start when first used
            "clock": "enabled",  # a tick subscriber starts with deeting
            **dict.fromkeys(OTHERS, "available"),
        }
    versions = home / "data" / "plugins" / "versions"
    assert sorted(p.name for p in versions.iterdir()) == list(DEFAULTS)
    for name in DEFAULTS:
        assert [v.name for v in (versions / name).iterdir()] == [official_version(name)]
    assert marker(home) == "done"


async def test_installing_a_bundled_plugin_asks_for_its_permissions(
    home: Path, bundle: Path, composed: Callable[[], Kernel]
) -> None:
    kernel = composed()
    asked: list[str] = []

    async def deny(name: str, scopes: list[object]) -> list[object]:
        asked.append(name)
        return []

    report = await kernel.plugins.install("weather", ask_all=deny)  # type: ignore[arg-type]
    assert asked == ["weather"] and not report.enabled and report.awaiting
    record = kernel.installed.get("weather")
    assert record is not None and record.source == SOURCE and not record.dev
    report = await kernel.plugins.install("sysinfo", yes=True)
    assert report.enabled


async def test_an_expired_user_registry_does_not_stand_in_the_bundles_way(
    home: Path, bundle: Path, composed: Callable[[], Kernel], tmp_path: Path
) -> None:
    """The two trusts are apart: the user's registry root expired (time passed since its
    sync), and the bundle still installs what it carries, while the registry's own plugin
    is refused with the registry's reason."""
    registry = TestRegistry(tmp_path / "user-registry")
    registry.add("1.0.0")
    registry.publish()
    await client_at(home).sync([], registry.url, registry.root_file)
    expired = registry.make_root(
        registry.keys, 1, signers=registry.keys, expires=datetime.now(UTC) - timedelta(days=1)
    )
    (home / "data" / "registry" / "root.json").write_bytes(expired)
    kernel = composed()
    report = await kernel.plugins.install("calc")
    assert report.enabled and kernel.installed.get("calc").source == SOURCE  # type: ignore[union-attr]
    with pytest.raises(DeetingError, match="expired"):
        await kernel.plugins.install("echo-fixture")


def _registry_with_calc(tmp_path: Path, version: str) -> tuple[Path, Path]:
    """A registry (gen_registry's) with calc at ``version``: its site and root."""
    sources = tmp_path / "sources"
    shutil.copytree(REPO / "plugins" / "calc", sources / "calc")
    for manifest in ("kimai.json", "package.json"):
        path = sources / "calc" / manifest
        document = orjson.loads(path.read_bytes())
        document["version"] = version
        path.write_bytes(orjson.dumps(document))
    from nacl.signing import SigningKey

    now = datetime.now(UTC).replace(microsecond=0)
    key = SigningKey.generate()
    raw, number = build_root([bytes(key.verify_key)], 1, [key], now=now)
    write_root(tmp_path / "keys", raw, number)
    generate(
        sources,
        tmp_path / "site",
        root_path=tmp_path / "keys" / "root.json",
        signing_keys=[("k", key)],
        now=now,
    )
    return tmp_path / "site", tmp_path / "keys" / "root.json"


async def test_a_newer_registry_version_supersedes_the_bundled_one(
    home: Path, bundle: Path, composed: Callable[[], Kernel], tmp_path: Path
) -> None:
    kernel = composed()
    await kernel.plugins.first_run()
    site, root = _registry_with_calc(tmp_path, "1.1.0")
    with serve.start(site) as server:
        url = server.url + "registry.json"
        report = await client_at(home).sync([("calc", "1.0.0")], url, root)
        assert [(u.name, u.installed, u.available) for u in report.updates] == [
            ("calc", "1.0.0", "1.1.0")
        ]
        assert kernel.plugins.updates() == {"calc": "1.1.0"}
        upgraded = await kernel.plugins.upgrade("calc")
    assert upgraded is not None and (upgraded.old, upgraded.new) == ("1.0.0", "1.1.0")
    record = kernel.installed.get("calc")
    assert record is not None and record.source == f"registry {url}"
    assert record.previous == "1.0.0"
    assert kernel.plugins.info("calc").origin is Origin.REGISTRY
    rolled = await kernel.plugins.rollback("calc")  # to the bundled copy it kept
    assert (rolled.old, rolled.new) == ("1.1.0", "1.0.0")
    record = kernel.installed.get("calc")
    assert record is not None and record.source.startswith("bundled with deeting ")
    assert kernel.plugins.info("calc").origin is Origin.BUNDLED
    rolled = await kernel.plugins.rollback("calc")  # and forward again: from the registry
    record = kernel.installed.get("calc")
    assert record is not None and (record.version, record.source) == ("1.1.0", f"registry {url}")


def test_plugin_list_and_info_show_the_available_ones(home: Path, bundle: Path) -> None:
    listed = run_deeting("plugin", "list", home=home, timeout=60)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    for name in DEFAULTS:
        state = "enabled" if name == "clock" else "ready"  # the clock's tick starts it at once
        assert any(line.split()[:3] == [name, official_version(name), state] for line in lines)
    for name in OTHERS:
        expected = [name, official_version(name), "available"]
        assert any(line.split()[:3] == expected for line in lines)
    assert "install one with: deeting plugin install sysinfo" in lines
    info = run_deeting("plugin", "info", "weather", home=home, timeout=60)
    assert info.returncode == 0, info.stderr
    assert "available (bundled with deeting, not installed)" in info.stdout
    assert "network:api.open-meteo.com" in info.stdout
    as_json = run_deeting("plugin", "info", "weather", "--json", home=home, timeout=60)
    document = orjson.loads(as_json.stdout)
    assert (document["state"], document["origin"]) == ("available", "bundled")
    installed = run_deeting("plugin", "install", "weather", "--yes", home=home, timeout=60)
    assert installed.returncode == 0, installed.stderr
    assert "installed weather 1.0.0 from the plugins deeting carries (verified)" in installed.stdout


@pytest.mark.parametrize("link", ["../outside.zip", "file:///etc/passwd", "/etc/passwd"])
async def test_a_signed_link_out_of_the_bundle_is_refused(
    home: Path,
    composed: Callable[[], Kernel],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    link: str,
) -> None:
    """Even a correctly signed index may only name zips inside the bundle folder."""
    made = TestRegistry(tmp_path / "bundled")
    entry = made.add("1.0.0")
    entry["url"] = link
    (tmp_path / "outside.zip").write_bytes(
        (made.folder / "artifacts" / "echo-fixture-1.0.0.zip").read_bytes()
    )
    made.publish()
    monkeypatch.setenv("DEETING_BUNDLE", str(made.folder))
    kernel = composed()
    with pytest.raises(DeetingError, match="points outside the bundle"):
        await kernel.plugins.install("echo-fixture")
    assert kernel.installed.all() == []


async def test_a_synced_registry_comes_first_and_the_bundle_fills_in(
    home: Path, bundle: Path, composed: Callable[[], Kernel], tmp_path: Path
) -> None:
    site, root = _registry_with_calc(tmp_path, "1.1.0")
    await client_at(home).sync([], (site / "registry.json").as_uri(), root)
    kernel = composed()
    calc = await kernel.plugins.install("calc")
    notes = await kernel.plugins.install("notes")  # not in the synced registry
    assert (calc.spec.version, notes.spec.version) == ("1.1.0", "1.1.0")
    assert kernel.plugins.info("calc").origin is Origin.REGISTRY
    assert kernel.plugins.info("notes").origin is Origin.BUNDLED


def test_an_empty_sessions_database_is_no_sign_of_use(home: Path, bundle: Path) -> None:
    """``deeting --session ID`` or ``deeting view`` as the very first command makes an empty
    sessions database; the next start is still the home's first run."""
    refused = run_deeting("--session", "nosuch", home=home, stdin="", timeout=60)
    assert refused.returncode == 2, refused.stderr
    assert (home / "data" / "sessions.sqlite3").exists()
    assert not (home / "data" / "plugins").exists()  # no first run took part yet
    done = run_deeting("--script", "-", home=home, stdin="calc 2+3\n", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "2+3 = 5" in done.stdout
