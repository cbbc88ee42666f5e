"""sysinfo: /proc parsers over fixture text, the snapshot tool, the live card fed by ticks.

Everything but the last test reads fixture text or a fake /proc folder, so no result depends on
the machine; the last test reads the real /proc (skipped where there is none).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from deeting_tui.sandbox.plugin_import import import_plugin_module
from deeting_tui.sdk import Context, normalize_result

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "plugins" / "sysinfo" / "src"

STAT = """\
cpu  10132153 290696 3084719 46828483 16683 0 25195 0 175628 0
cpu0 1393280 32966 572056 13343292 6130 0 17875 0 23933 0
cpu1 1335256 30485 575316 13377404 2879 0 2525 0 22814 0
cpu2 1329018 28932 567307 13397604 4198 0 1766 0 24003 0
cpu3 1401108 31254 570151 13374617 3475 0 1526 0 24213 0
intr 199292394 9 0 0 0 0 0 0 0 1 0 0 0 0 0 0 0 0
ctxt 375244926
btime 1700000000
processes 1016544
procs_running 2
procs_blocked 0
softirq 76330093 1 26399186 35 1089870 0 0 89 20138318 0 28702594
"""
# 2 s later on the same 4 cores: +400 ticks of busy time out of +800 in all.
STAT_LATER = STAT.replace(
    "cpu  10132153 290696 3084719 46828483 16683 0 25195 0",
    "cpu  10132453 290696 3084819 46828883 16683 0 25195 0",
)
MEMINFO = """\
MemTotal:       16303428 kB
MemFree:         1234567 kB
MemAvailable:    9781996 kB
Buffers:          345678 kB
Cached:          6543210 kB
SwapCached:            0 kB
SwapTotal:       2097148 kB
SwapFree:        1048574 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
"""
LOADAVG = "0.52 0.58 0.59 2/1234 56789\n"
UPTIME = "273845.47 1002388.90\n"


def write_proc(root: Path, **files: str) -> Path:
    """A fake /proc: the four files (override or drop with None) and three process folders."""
    defaults = {"stat": STAT, "meminfo": MEMINFO, "loadavg": LOADAVG, "uptime": UPTIME}
    root.mkdir(parents=True, exist_ok=True)
    for name, text in {**defaults, **files}.items():
        if text is not None:
            (root / name).write_text(text, encoding="utf-8")
    for entry in ("1", "42", "31337", "self", "sys", "net"):
        (root / entry).mkdir(exist_ok=True)
    return root


@pytest.fixture
def plugin(load_plugin: Any) -> ModuleType:
    """A freshly imported src/index.py (conftest's load_plugin)."""
    module: ModuleType = load_plugin("sysinfo")
    return module


@pytest.fixture
def handler(plugin: ModuleType) -> ModuleType:
    return import_plugin_module(SRC, "handler")


@pytest.fixture
def procparse(plugin: ModuleType) -> ModuleType:
    return import_plugin_module(SRC, "procparse")


@pytest.fixture
def ctx(make_ctx: Any) -> Context:
    context: Context = make_ctx("sysinfo")
    return context


@pytest.fixture
def fake_proc(tmp_path: Path, plugin: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_proc(tmp_path / "proc")
    monkeypatch.setattr(plugin, "PROC_ROOT", root)
    return root


class Clock:
    """Stands in for time.monotonic and time.sleep, so sampling is instant and exact."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(plugin: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(plugin.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(plugin.time, "sleep", fake.sleep)
    return fake


# -- parsers ------------------------------------------------------------------------------------


def test_parse_stat(procparse: ModuleType) -> None:
    times = procparse.parse_stat(STAT)
    assert times.cores == 4
    # user nice system idle iowait irq softirq steal; guest is already inside user
    total = 10132153 + 290696 + 3084719 + 46828483 + 16683 + 0 + 25195 + 0
    assert times.total == total
    assert times.busy == total - 46828483 - 16683


def test_cpu_percent_between_two_samples(procparse: ModuleType) -> None:
    before, after = procparse.parse_stat(STAT), procparse.parse_stat(STAT_LATER)
    assert procparse.cpu_percent(before, after) == 50.0
    assert procparse.cpu_percent(before, before) is None  # no time passed
    assert procparse.cpu_percent(after, before) is None  # counters went backwards


def test_parse_stat_of_an_old_kernel_with_four_columns(procparse: ModuleType) -> None:
    times = procparse.parse_stat("cpu 100 0 50 850\ncpu0 100 0 50 850\n")
    assert (times.busy, times.total, times.cores) == (150, 1000, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'no "cpu" line'),
        ("intr 1 2 3\nctxt 5\n", 'no "cpu" line'),
        ("cpu 1 2\n", "expected at least 4"),
        ("cpu 1 two 3 4\n", "not a whole number"),
        ("cpu 1 2 -3 4\n", "negative"),
    ],
)
def test_parse_stat_refuses_odd_text(procparse: ModuleType, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        procparse.parse_stat(text)


def test_parse_loadavg(procparse: ModuleType) -> None:
    load = procparse.parse_loadavg(LOADAVG)
    assert (load.one, load.five, load.fifteen) == (0.52, 0.58, 0.59)
    assert (load.running, load.threads) == (2, 1234)


@pytest.mark.parametrize("text", ["", "0.1 0.2\n", "0.1 0.2 0.3 4\n", "a b c 1/2 3", "nan 1 1 1/2"])
def test_parse_loadavg_refuses_odd_text(procparse: ModuleType, text: str) -> None:
    with pytest.raises(ValueError):
        procparse.parse_loadavg(text)


def test_parse_meminfo(procparse: ModuleType) -> None:
    memory = procparse.parse_meminfo(MEMINFO)
    assert memory.total_kib == 16303428
    assert memory.available_kib == 9781996
    assert memory.used_kib == 16303428 - 9781996
    assert memory.used_percent == 40.0
    assert (memory.swap_total_kib, memory.swap_used_kib) == (2097148, 1048574)


def test_parse_meminfo_without_memavailable(procparse: ModuleType) -> None:
    """Kernels before 3.14: free + buffers + cached stands in for available."""
    text = "\n".join(line for line in MEMINFO.splitlines() if not line.startswith("MemAvailable"))
    memory = procparse.parse_meminfo(text)
    assert memory.available_kib == 1234567 + 345678 + 6543210


def test_parse_meminfo_ignores_junk_lines(procparse: ModuleType) -> None:
    text = "garbage\nMemTotal: 1000 kB\nweird: x kB\nMemAvailable: 250 kB\n:\n"
    memory = procparse.parse_meminfo(text)
    assert (memory.total_kib, memory.available_kib, memory.swap_total_kib) == (1000, 250, 0)
    assert memory.used_percent == 75.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "MemTotal"),
        ("MemTotal: 0 kB\nMemAvailable: 0 kB\n", "MemTotal"),
        ("MemTotal: lots kB\n", "MemTotal"),
        ("MemTotal: 1000 kB\n", "neither MemAvailable nor MemFree"),
    ],
)
def test_parse_meminfo_refuses_odd_text(procparse: ModuleType, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        procparse.parse_meminfo(text)


def test_parse_uptime(procparse: ModuleType) -> None:
    assert procparse.parse_uptime(UPTIME) == 273845.47
    for bad in ("", "soon 1", "-5 1", "inf 1"):
        with pytest.raises(ValueError):
            procparse.parse_uptime(bad)


def test_count_processes(procparse: ModuleType) -> None:
    assert procparse.count_processes(["1", "42", "self", "sys", "٣", "1x", "7"]) == 3


def test_formats(procparse: ModuleType) -> None:
    assert procparse.format_kib(512) == "512 KiB"
    assert procparse.format_kib(2048) == "2.0 MiB"
    assert procparse.format_kib(1048574) == "1.0 GiB"  # not "1024.0 MiB"
    assert procparse.format_kib(16303428) == "15.5 GiB"
    assert procparse.format_uptime(273845.47) == "3d 4h 4m"
    assert procparse.format_uptime(7260) == "2h 1m"
    assert procparse.format_uptime(65) == "1m 5s"


# -- the sysinfo tool ---------------------------------------------------------------------------


def test_snapshot_from_a_fake_proc(
    plugin: ModuleType, ctx: Context, fake_proc: Path, clock: Clock, monkeypatch: Any
) -> None:
    reads = iter([STAT, STAT_LATER])
    real_read = plugin.ProcReader.read

    def read(self: Any, name: str) -> str:
        return next(reads) if name == "stat" else real_read(self, name)

    monkeypatch.setattr(plugin.ProcReader, "read", read)
    out = normalize_result(plugin.invoke(ctx, "sysinfo", {}))
    assert clock.sleeps == [0.25]  # no tick yet: it measured over a short interval
    assert out["renderer"] == "key-value"
    assert out["data"] == {
        "title": "System",
        "items": [
            {"key": "CPU", "value": "50.0 % (4 cores)"},
            {"key": "Load average", "value": "0.52, 0.58, 0.59 (1, 5, 15 min)"},
            {"key": "Memory", "value": "6.2 GiB of 15.5 GiB used (40.0 %)"},
            {"key": "Available", "value": "9.3 GiB"},
            {"key": "Swap", "value": "1.0 GiB of 2.0 GiB used"},
            {"key": "Uptime", "value": "3d 4h 4m"},
            {"key": "Processes", "value": "3 (1234 threads)"},
        ],
    }
    assert out["text"] == (
        "System: CPU 50.0% busy (4 cores), load 0.52, 0.58, 0.59, memory 40.0% used "
        "(6.2 GiB of 15.5 GiB, 9.3 GiB available), swap 1.0 GiB of 2.0 GiB used, "
        "up 3d 4h 4m, 3 processes (1234 threads)."
    )


def test_snapshot_uses_a_recent_tick_as_its_baseline(
    plugin: ModuleType, ctx: Context, fake_proc: Path, clock: Clock
) -> None:
    plugin.on_event(ctx, "system.tick", {"ts": 1.0})
    clock.now += 1.0
    (fake_proc / "stat").write_text(STAT_LATER, encoding="utf-8")
    out = normalize_result(plugin.invoke(ctx, "sysinfo", {}))
    assert clock.sleeps == []  # no waiting: CPU measured since the tick
    assert out["data"]["items"][0] == {"key": "CPU", "value": "50.0 % (4 cores)"}


def test_one_unreadable_file_costs_only_its_line(
    plugin: ModuleType, ctx: Context, fake_proc: Path, clock: Clock
) -> None:
    (fake_proc / "loadavg").write_text("what is this\n", encoding="utf-8")
    (fake_proc / "uptime").unlink()
    out = normalize_result(plugin.invoke(ctx, "sysinfo", {}))
    values = {item["key"]: item["value"] for item in out["data"]["items"]}
    assert values["Load average"].startswith(f"unavailable: cannot understand {fake_proc}/loadavg")
    assert (
        values["Uptime"]
        == f"unavailable: {fake_proc}/uptime does not exist (is {fake_proc} a Linux /proc?)"
    )
    assert values["Processes"] == "3"  # no thread count without loadavg
    assert values["CPU"].startswith("unavailable: the CPU times")  # the fixture never advances
    assert "Could not read: " in out["text"] and "loadavg" in out["text"]


def test_no_proc_at_all_is_one_clear_error(
    plugin: ModuleType, ctx: Context, tmp_path: Path, clock: Clock, monkeypatch: Any
) -> None:
    monkeypatch.setattr(plugin, "PROC_ROOT", tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"nowhere does not exist: sysinfo reads Linux's /proc"):
        plugin.invoke(ctx, "sysinfo", {})


def test_permission_denied_says_how_to_grant(
    plugin: ModuleType,
    handler: ModuleType,
    ctx: Context,
    fake_proc: Path,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the sandbox does when filesystem:read:/proc was not granted."""

    def denied(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(handler, "open", denied, raising=False)  # shadows the builtin there
    monkeypatch.setattr(handler.os, "listdir", denied)
    message = (
        f"cannot read {fake_proc}/stat: permission denied — "
        "run: deeting plugin grant sysinfo filesystem:read:/proc"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        plugin.invoke(ctx, "sysinfo", {})


@pytest.mark.parametrize(
    ("tool", "args", "message"),
    [
        ("top", {}, "sysinfo has no tool 'top'"),
        ("sysinfo", {"verbose": True}, r"unknown argument\(s\) verbose \(expected: none\)"),
        ("sysinfo", ["x"], "arguments must be an object"),
    ],
)
def test_bad_calls(plugin: ModuleType, ctx: Context, tool: str, args: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plugin.invoke(ctx, tool, args)


# -- the live card ------------------------------------------------------------------------------


def advance(root: Path, busy: int, idle: int) -> None:
    """Add ``busy`` and ``idle`` ticks to the fake /proc/stat's aggregate line."""
    first, rest = (root / "stat").read_text(encoding="utf-8").split("\n", 1)
    numbers = [int(field) for field in first.split()[1:]]
    numbers[0] += busy
    numbers[3] += idle
    (root / "stat").write_text("cpu  " + " ".join(map(str, numbers)) + "\n" + rest, "utf-8")


def test_ticks_stream_cpu_and_memory(
    plugin: ModuleType, ctx: Context, channel: Any, fake_proc: Path, clock: Clock
) -> None:
    assert plugin.on_event(ctx, "system.tick", {"ts": 1.0}) is False  # the baseline: no push
    assert channel.streams() == []
    for busy in (25, 75):
        clock.now += 1.0
        advance(fake_proc, busy=busy, idle=100 - busy)
        assert plugin.on_event(ctx, "system.tick", {"ts": clock.now}) is False  # broadcast
    streams = channel.streams()
    assert len(streams) == 2
    assert streams[-1] == {
        "topic": "sysinfo.usage",
        "renderer": "chart",
        "payload": {
            "kind": "sparkline",
            "title": "CPU and memory",
            "unit": "%",
            "series": [
                {"name": "cpu", "values": [25.0, 75.0]},
                {"name": "memory", "values": [40.0, 40.0]},
            ],
        },
    }


def test_at_most_one_push_per_tick_and_bursts_coalesce(
    plugin: ModuleType, ctx: Context, channel: Any, fake_proc: Path, clock: Clock
) -> None:
    plugin.on_event(ctx, "system.tick", {})
    clock.now += 1.0
    advance(fake_proc, busy=10, idle=90)
    plugin.on_event(ctx, "system.tick", {})
    clock.now += 0.01  # a backlog of ticks delivered at once
    advance(fake_proc, busy=10, idle=90)
    plugin.on_event(ctx, "system.tick", {})
    plugin.on_event(ctx, "system.tick", {})
    assert len(channel.streams()) == 1


def test_the_window_keeps_the_last_sixty_points(
    plugin: ModuleType, ctx: Context, channel: Any, fake_proc: Path, clock: Clock
) -> None:
    plugin.on_event(ctx, "system.tick", {})
    for busy in range(70):
        clock.now += 1.0
        advance(fake_proc, busy=busy, idle=100 - busy)
        plugin.on_event(ctx, "system.tick", {})
    series = channel.streams()[-1]["payload"]["series"]
    assert series[0]["values"] == [float(b) for b in range(10, 70)]
    assert len(series[1]["values"]) == 60


def test_a_broken_proc_pauses_the_card_and_logs_once(
    plugin: ModuleType,
    ctx: Context,
    channel: Any,
    fake_proc: Path,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (fake_proc / "meminfo").write_text("nonsense\n", encoding="utf-8")
    for _ in range(3):
        clock.now += 1.0
        assert plugin.on_event(ctx, "system.tick", {}) is False
    assert channel.streams() == []
    warnings = [r for r in caplog.records if "live usage paused" in r.getMessage()]
    assert len(warnings) == 1 and "MemTotal" in warnings[0].getMessage()
    (fake_proc / "meminfo").write_text(MEMINFO, encoding="utf-8")  # it comes back by itself
    for busy in (30, 30):
        clock.now += 1.0
        advance(fake_proc, busy=busy, idle=100 - busy)
        plugin.on_event(ctx, "system.tick", {})
    assert channel.streams()


def test_other_topics_are_ignored(plugin: ModuleType, ctx: Context, channel: Any) -> None:
    assert plugin.on_event(ctx, "user.message", {"text": "hi"}) is False
    assert channel.sent == []


def test_payloads_fit_the_renderer_schemas(
    plugin: ModuleType, ctx: Context, channel: Any, fake_proc: Path, clock: Clock
) -> None:
    """The kernel checks data against each renderer's schema; a misfit is an error card."""
    jsonschema = pytest.importorskip("jsonschema")

    def validator(renderer: str) -> Any:
        path = REPO / "renderers" / renderer / "schema.json"
        if not path.is_file():
            pytest.skip(f"renderers/{renderer}/schema.json is not there")
        return jsonschema.Draft202012Validator(json.loads(path.read_text("utf-8")))

    plugin.on_event(ctx, "system.tick", {})
    clock.now += 1.0
    advance(fake_proc, busy=20, idle=80)
    plugin.on_event(ctx, "system.tick", {})
    (stream,) = channel.streams()
    assert list(validator(stream["renderer"]).iter_errors(stream["payload"])) == []
    (fake_proc / "uptime").unlink()  # a partial snapshot too
    out = normalize_result(plugin.invoke(ctx, "sysinfo", {}))
    assert list(validator(out["renderer"]).iter_errors(out["data"])) == []


# -- the real /proc -----------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/meminfo").is_file(), reason="needs Linux's /proc")
def test_the_real_proc(plugin: ModuleType, ctx: Context) -> None:
    out = normalize_result(plugin.invoke(ctx, "sysinfo", {}))
    values = {item["key"]: item["value"] for item in out["data"]["items"]}
    assert set(values) >= {"CPU", "Load average", "Memory", "Available", "Uptime", "Processes"}
    assert not any(value.startswith("unavailable") for value in values.values()), values
    busy = float(values["CPU"].split(" %")[0])
    assert 0.0 <= busy <= 100.0
    assert int(values["Processes"].split()[0]) >= 1
    assert out["text"].startswith("System: CPU ")
