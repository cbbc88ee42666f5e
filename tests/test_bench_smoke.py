"""Smoke test for ``python -m bench``: it runs, and reports every figure as a positive number.

Targets are deliberately not asserted: timings depend on the machine, and a test suite must
not fail because CI is slow. ``python -m bench`` itself prints PASS/FAIL.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

needs_mcp = pytest.mark.skipif(
    importlib.util.find_spec("mcp") is None, reason="the bench extra (mcp) is not installed"
)


def _numbers(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(item, f"{path}.{key}")
    else:
        yield path, value


@needs_mcp
def test_bench_quick_json_reports_every_figure() -> None:
    process = subprocess.run(
        # The browser and scale sections have their own smoke tests below: run once, not twice.
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--json",
            "--skip",
            "browser",
            "--skip",
            "scale",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr.decode(errors="replace")
    report = json.loads(process.stdout)

    assert report["errors"] == {}
    assert report["machine"]["cpu_count"] > 0
    assert report["machine"]["python"]

    results = report["results"]
    for key in ("invoke", "floor_asyncio", "floor_blocking", "mcp"):
        assert key in results, key
        for figure in ("p50_us", "p99_us", "mean_us", "n"):
            assert figure in results[key], (key, figure)
    assert "exec" in results["ready"]
    for key in (
        "total_s",
        "startup_s",
        "end_to_end_msgs_per_s",
        "msgs_per_s_excl_startup",
        "user_events_stored",
    ):
        assert key in results["throughput"]
    notes = results["notes"]
    assert set(notes["notes"]) == set(notes["calc"]) == {"200", "1000"}
    assert notes["notes_stored"] == 1200  # every note added is in the notebook
    assert {"launch", "launch_baseline_textual", "flood"} <= results["ui"].keys()
    assert {"verify", "floor", "floor_with_parse", "ratio_to_floor"} <= results["registry"].keys()
    assert {"recall", "tokens_ratio_max", "timings"} <= results["tool_budget"].keys()
    sandbox = results["sandbox"]
    assert sandbox.pop("level").startswith(("enforced", "partial", "guard-rail"))
    for key in ("sandboxed", "unsandboxed", "overhead", "apply_ms"):
        assert key in sandbox, key
    confinement = results["confinement"]
    assert set(confinement.pop("mechanisms")) == {"containment", "pids", "memory", "cpu"}
    if confinement["cgroup_per_worker_ms"] is None:  # no cgroups this user may make here
        del confinement["cgroup_per_worker_ms"]
    assert confinement["watchdog_sample_us"]["n"] > 0
    figures = list(_numbers(results))
    assert len(figures) >= 4 * 4 + 4 + 6 + 4 * 2 + 4
    for path, value in figures:
        assert isinstance(value, int | float) and not isinstance(value, bool), path
        assert value > 0, f"{path} = {value}"
    # Persistence is a fact, not a timing: every scripted message must be stored.
    throughput = results["throughput"]
    assert throughput["user_events_stored"] == throughput["messages"]

    targets = report["targets"]
    assert targets and all(isinstance(t["pass"], bool) for t in targets)


def test_bench_ui_quick_json_reports_every_figure() -> None:
    """``python -m bench.ui``: the chat's launch and key latency, as positive numbers."""
    process = subprocess.run(
        [sys.executable, "-m", "bench.ui", "--quick", "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr.decode(errors="replace")
    report = json.loads(process.stdout)

    for key in ("launch", "launch_baseline_textual"):
        launch = report[key]
        assert launch["n"] >= 1
        assert launch["alt_screen_p50_ms"] <= launch["first_frame_p50_ms"]
        assert launch["first_frame_p50_ms"] <= launch["first_frame_max_ms"]
    flood = report["flood"]
    for key in ("keys_idle", "keys_flood"):
        keys = flood[key]
        assert keys["keys_handled"] == keys["keys_sent"], (key, keys)  # no key lost
        assert keys["p50_ms"] <= keys["p95_ms"] <= keys["max_ms"]
    # Every update the plugin pushed reached the chat, and the card was drawn, coalesced.
    assert flood["updates_seen"] == flood["updates_asked"]
    assert 0 < flood["card_frames_painted"] <= flood["updates_seen"]
    figures = list(_numbers(report))
    assert len(figures) >= 2 * 4 + 6 + 2 * 5
    for path, value in figures:
        assert isinstance(value, int | float) and not isinstance(value, bool), path
        assert value > 0, f"{path} = {value}"


def test_bench_registry_quick_json_reports_every_figure() -> None:
    """``python -m bench.registry``: verifying a signed 1,000-plugin registry, and its floor."""
    process = subprocess.run(
        [sys.executable, "-m", "bench.registry", "--quick", "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr.decode(errors="replace")
    report = json.loads(process.stdout)

    assert (report["plugins"], report["versions_per_plugin"]) == (1000, 3)
    # Realistic entries: each version's URL, hash, length and signature take hundreds of bytes.
    assert report["registry_bytes"] > 1000 * 3 * 300
    for key in ("verify", "floor", "floor_with_parse"):
        timing = report[key]
        assert timing["n"] >= 1
        assert timing["p50_ms"] <= timing["max_ms"], (key, timing)
    assert report["ratio_to_floor"] == pytest.approx(
        report["verify"]["p50_ms"] / report["floor"]["p50_ms"], rel=0.01
    )
    # A no-change sync through the real client makes exactly one request (answered 304).
    assert report["no_change_sync_requests"] == 1
    for key in ("no_change_sync", "conditional_get"):
        assert report[key]["n"] >= 1
    figures = list(_numbers(report))
    assert len(figures) == 4 + 5 * 4 + 1 + 1
    for path, value in figures:
        assert isinstance(value, int | float) and not isinstance(value, bool), path
        assert value > 0, f"{path} = {value}"


def test_bench_triggers_quick_json_reports_every_figure() -> None:
    """``python -m bench.triggers``: matching a message against 200 plugins' triggers."""
    process = subprocess.run(
        [sys.executable, "-m", "bench.triggers", "--quick", "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr.decode(errors="replace")
    report = json.loads(process.stdout)
    assert report["plugins"] == 200
    for group in ("rows", "adversarial"):
        for name, row in report[group].items():
            assert row["n"] >= 1 and row["chars"] > 0, name
            assert 0 <= row["p50_ms"] <= row["max_ms"], name
    assert "hostile-freezer, 41 chars" in report["rows"]
    assert report["old_engine_41_chars_s_extrapolated"] > 0
    assert report["loop_worst_ms"] > 0 and report["loop_ms_max"] == 10.0


def test_bench_scale_quick_json_reports_every_figure() -> None:
    """``python -m bench.scale``: at each number of installed plugins, cold start, first
    frame against bare Textual, the process tree's memory, tool-spec tokens and a first call
    against warm ones, as positive numbers; the homes hold exactly the plugins asked for."""
    process = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--quick", "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=240,
    )
    assert process.returncode == 0, process.stderr.decode(errors="replace")
    report = json.loads(process.stdout)
    sizes = report["sizes"]
    assert list(sizes) == ["3", "20"]
    for count, at in sizes.items():
        assert at["plugins"] == int(count), at
        assert at["cold_start_to_reply_median_ms"] <= at["cold_start_to_exit_median_ms"]
        # The kernel and at least the worker that answered the message, all sampled.
        assert at["processes_after_one_message"] >= 2
        # Every installed tool is counted, and no model turn carries more than all of them
        # plus the budget's own find_tools.
        assert at["tool_specs_all"] >= at["plugins"]
        assert at["tool_specs_sent"] <= at["tool_specs_all"] + 1
        assert at["first_call_n"] >= 1
    assert sizes["20"]["tool_specs_all"] == sizes["3"]["tool_specs_all"] + 17
    targets = report.pop("targets")
    assert len(targets) == 5 and all(isinstance(t["pass"], bool) for t in targets)
    figures = list(_numbers(report))
    assert len(figures) >= 2 * 18 + 1
    for path, value in figures:
        assert isinstance(value, int | float) and not isinstance(value, bool), path
        assert value > 0, f"{path} = {value}"


def test_bench_diskquota_reports_its_figures() -> None:
    """``python -m bench.diskquota``: the accounting's cost, and how far past its quota a
    plugin writing a gigabyte got, each way (a figure, not a target)."""
    process = subprocess.run(
        [sys.executable, "-m", "bench.diskquota", "--runs", "1", "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr.decode(errors="replace")
    report = json.loads(process.stdout)
    assert report["accounted_mb"] == 1024  # every byte of the gigabyte seen, by events alone
    assert report["accounting_events"] >= 3 * 1024 and report["accounting_cpu_ms"] > 0
    assert report["walk_ms"] > 0
    for key in ("overshoot_mb", "parallel_overshoot_mb", "kernel_cpu_ms"):
        assert len(report[key]) == 1 and report[key][0] >= 0, (key, report[key])
    # Stopped: far from the gigabyte it tried to write.
    assert report["overshoot_mb"][0] < 1024 - 64 and report["parallel_overshoot_mb"][0] < 1024 - 64


def test_bench_browser_quick_json_reports_every_figure() -> None:
    """``python -m bench.browser``: server start, frame latency (in process, deeting view and
    the floor), the live chart's heap and the big chart, as positive numbers; nothing missing."""
    from browser_support import skip_reason

    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    process = subprocess.run(
        [sys.executable, "-m", "bench.browser", "--quick", "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=240,
    )
    assert process.returncode == 0, process.stderr.decode(errors="replace")
    report = json.loads(process.stdout)
    assert "missing" not in report, report.get("missing")
    for key in ("server_start", "server_start_floor"):
        assert report[key]["n"] >= 1 and report[key]["p50_ms"] <= report[key]["max_ms"], key
    for key in ("frame_in_process", "frame_view", "frame_floor"):
        frames = report[key]
        assert frames["frames_drawn"] >= 1, key
        assert frames["frames_drawn"] <= frames["frames_sent"], key
        assert frames["p50_ms"] <= frames["p99_ms"] <= frames["max_ms"], key
    # Every stamped frame of the in-process card and the floor reaches the page: nothing
    # between the plugin and the iframe drops a frame at 50 frames/s.
    assert report["frame_in_process"]["frames_drawn"] == report["frame_in_process"]["frames_sent"]
    flood = report["chart_flood"]
    assert 1 <= flood["frames_drawn"] <= flood["frames_pushed"]
    big = report["big_chart"]
    assert big["points"] == 10_000 and big["painted"]["n"] >= 1
    figures = list(_numbers(report))
    assert len(figures) >= 2 * 4 + 3 * 5 + 8 + 1 + 4 * 4
    for path, value in figures:
        assert isinstance(value, int | float) and not isinstance(value, bool), path
        assert value > 0, f"{path} = {value}"


def test_bench_tool_budget_json_reports_its_figures() -> None:
    """``python -m bench.tool_budget``: tokens, recall and selection time at 200 tools."""
    process = subprocess.run(
        [sys.executable, "-m", "bench.tool_budget", "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr.decode(errors="replace")
    report = json.loads(process.stdout)
    assert report["tools"] == 200 and report["queries"] >= 100
    assert 0 < report["tokens_ratio_mean"] <= report["tokens_ratio_max"] < 1
    assert 0 < report["recall"] <= 1 and report["fresh_queries"] > 0
    assert list(report["timings"]) == ["200", "1000"]
    for timing in report["timings"].values():
        assert 0 < timing["select_p50_ms"] <= timing["select_max_ms"]


@needs_mcp
def test_bench_mcp_serve_quick_json_reports_every_figure() -> None:
    """``python -m bench.mcp_serve``: one tools/call through deeting mcp serve, the kernel
    call it wraps, and the SDK's own server, each as positive p50 and p95."""
    process = subprocess.run(
        [sys.executable, "-m", "bench.mcp_serve", "--quick", "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr.decode(errors="replace")
    report = json.loads(process.stdout)
    assert sorted(report) == ["kernel", "peer", "serve"]
    for name, row in report.items():
        assert row["n"] >= 1, name
        assert 0 < row["p50_ms"] <= row["p95_ms"], name
