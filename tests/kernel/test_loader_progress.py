"""What the TUI needs from the Loader: install progress, consent asked for all scopes at
once, and single-scope grant/revoke with the same effects as the CLI."""

from __future__ import annotations

from collections.abc import Collection

import pytest
from support import FIXTURES, OFFICIAL

from deeting_tui.command_output import error_line
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.plugins.loader import INSTALL_STEPS, PluginError
from deeting_tui.plugin.scopes import Scope, parse_scope

WEATHER_SCOPES = ["network:api.open-meteo.com", "network:geocoding-api.open-meteo.com"]


async def test_every_step_is_reported_in_order_ending_at_one(kernel: Kernel) -> None:
    steps: list[tuple[str, float]] = []
    report = await kernel.loader.install(
        FIXTURES / "good_plugin", on_step=lambda label, done: steps.append((label, done))
    )
    assert report.enabled
    assert [label for label, _ in steps] == [*INSTALL_STEPS, "done"]
    fractions = [done for _, done in steps]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0


async def test_a_failed_install_stops_reporting_where_it_failed(kernel: Kernel) -> None:
    steps: list[str] = []
    with pytest.raises(PluginError, match="not a valid plugin"):
        await kernel.loader.install(
            FIXTURES / "bad_plugins" / "bad_scope", on_step=lambda label, _: steps.append(label)
        )
    assert steps == ["unpacking", "validating"]
    assert kernel.installed.all() == []


async def test_ask_all_hears_every_missing_scope_at_once(kernel: Kernel) -> None:
    asked: list[tuple[str, list[str]]] = []

    async def ask_all(name: str, scopes: list[Scope]) -> Collection[Scope]:
        asked.append((name, [str(s) for s in scopes]))
        return scopes

    report = await kernel.loader.install(OFFICIAL / "weather", ask_all=ask_all)
    assert asked == [("weather", WEATHER_SCOPES)]
    assert report.enabled and [str(s) for s in report.granted] == WEATHER_SCOPES
    await kernel.loader.disable("weather")


async def test_ask_all_can_allow_part_and_never_grants_more_than_asked(kernel: Kernel) -> None:
    async def ask_all(name: str, scopes: list[Scope]) -> Collection[Scope]:
        return [scopes[0], parse_scope("network"), parse_scope("shell")]

    report = await kernel.loader.install(OFFICIAL / "weather", ask_all=ask_all)
    assert [str(s) for s in kernel.grants.granted("weather")] == WEATHER_SCOPES[:1]
    assert not report.enabled
    assert report.problem is not None and WEATHER_SCOPES[1] in report.problem


async def test_the_cli_prompt_is_still_asked_one_scope_at_a_time(kernel: Kernel) -> None:
    asked: list[str] = []

    def ask(name: str, scope: Scope) -> bool:
        asked.append(str(scope))
        return False

    report = await kernel.loader.install(OFFICIAL / "weather", grant=[WEATHER_SCOPES[0]], ask=ask)
    assert asked == WEATHER_SCOPES[1:]  # --grant already settled the first
    assert [str(s) for s in report.granted] == WEATHER_SCOPES[:1] and not report.enabled


async def test_grant_starts_the_plugin_once_nothing_is_missing(kernel: Kernel) -> None:
    await kernel.loader.install(OFFICIAL / "weather")
    first, second = (parse_scope(s) for s in WEATHER_SCOPES)
    report = await kernel.loader.grant("weather", [first])
    assert report.added == [first] and report.missing == [second] and not report.enabled
    assert "weather" not in kernel.loader.runtimes
    report = await kernel.loader.grant("weather", [second])
    assert report.added == [second] and report.missing == [] and report.enabled
    assert "weather" in kernel.loader.runtimes
    again = await kernel.loader.grant("weather", [second])
    assert again.added == [] and not again.enabled  # already running: nothing to do


async def test_revoke_stops_a_running_plugin_and_says_why(kernel: Kernel) -> None:
    await kernel.loader.install(OFFICIAL / "weather", yes=True)
    assert "weather" in kernel.loader.runtimes
    scope = parse_scope(WEATHER_SCOPES[1])
    report = await kernel.loader.revoke("weather", scope)
    assert report.revoked and report.disabled
    assert report.reason == f"permission '{scope}' was revoked"
    assert "weather" not in kernel.loader.runtimes
    record = kernel.loader.record("weather")
    assert not record.enabled and record.disabled_reason == report.reason
    assert [str(s) for s in kernel.grants.granted("weather")] == WEATHER_SCOPES[:1]
    twice = await kernel.loader.revoke("weather", scope)
    assert not twice.revoked and not twice.disabled


async def test_revoking_from_a_stopped_plugin_only_changes_the_grants(kernel: Kernel) -> None:
    await kernel.loader.install(OFFICIAL / "weather", yes=True)
    await kernel.loader.disable("weather")
    report = await kernel.loader.revoke("weather", parse_scope(WEATHER_SCOPES[0]))
    assert report.revoked and not report.disabled
    assert kernel.loader.record("weather").disabled_reason is None


async def test_grant_and_revoke_of_an_unknown_plugin_say_how_to_look(kernel: Kernel) -> None:
    with pytest.raises(PluginError) as refused:
        await kernel.loader.grant("nope", [parse_scope("network")])
    assert error_line(refused.value).endswith("— run: deeting plugin list")
    with pytest.raises(PluginError) as refused:
        await kernel.loader.revoke("nope", parse_scope("network"))
    assert error_line(refused.value).endswith("— run: deeting plugin list")


def test_install_steps_name_what_the_ui_shows() -> None:
    assert INSTALL_STEPS == (
        "unpacking",
        "validating",
        "copying",
        "dependencies",
        "postinstall",
        "permissions",
        "starting",
    )
