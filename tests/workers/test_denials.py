"""A plugin's refusals reach its log and, once each and never as a flood, the user."""

from __future__ import annotations

from pathlib import Path

from deeting_tui.workers.denials import MAX_MESSAGE, DenialReporter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _reporter(tmp_path: Path, told: list[str], clock: Clock) -> DenialReporter:
    return DenialReporter("x", tmp_path / "x.log", lambda m, _hint: told.append(m), clock=clock)


def test_each_refusal_is_told_once_per_quiet_period_and_logged(tmp_path: Path) -> None:
    told: list[str] = []
    clock = Clock()
    reporter = _reporter(tmp_path, told, clock)
    assert reporter.refused("plugin 'x' may not connect to a:1")
    assert not reporter.refused("plugin 'x' may not connect to a:1")
    clock.now += 61
    assert reporter.refused("plugin 'x' may not connect to a:1")
    assert told == ["plugin 'x' may not connect to a:1"] * 2
    log = (tmp_path / "x.log").read_text()
    assert log.count("denied: plugin 'x' may not connect to a:1") == 2
    assert "(1 more refusals not repeated here)" in log


def test_a_flood_of_different_refusals_is_cut_to_a_burst(tmp_path: Path) -> None:
    told: list[str] = []
    clock = Clock()
    reporter = _reporter(tmp_path, told, clock)
    for n in range(10_000):
        reporter.refused(f"refusal {n}")
    assert len(told) == 5
    assert len((tmp_path / "x.log").read_text().splitlines()) == 5
    clock.now += 60
    reporter.refused("later")
    assert told[-1] == "later"
    assert "9995 more refusals" in (tmp_path / "x.log").read_text()


def test_messages_are_one_capped_line(tmp_path: Path) -> None:
    told: list[str] = []
    reporter = _reporter(tmp_path, told, Clock())
    reporter.refused("a\nb\r\n" + "c" * 10_000)
    assert told[0].startswith("a b c") and len(told[0]) == MAX_MESSAGE
    assert "\n" not in told[0]


def test_the_workers_own_log_lines_are_not_doubled(tmp_path: Path) -> None:
    told: list[str] = []
    reporter = _reporter(tmp_path, told, Clock())
    reporter.refused("already in the log", log=False)
    assert told == ["already in the log"]
    assert not (tmp_path / "x.log").exists()


def test_an_unwritable_log_does_not_stop_the_telling(tmp_path: Path) -> None:
    told: list[str] = []
    reporter = DenialReporter("x", tmp_path / "missing" / "x.log", lambda m, _h: told.append(m))
    assert reporter.refused("still told")
    assert told == ["still told"]
