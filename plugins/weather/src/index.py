"""weather: current conditions and a daily forecast from Open-Meteo (free, no key).

The requests, the WMO code words and the card are in handler.py. Failures (no network, an
unknown place, a bad answer) raise one clear line, which the kernel reports as a tool error.
"""

from __future__ import annotations

from typing import Any

from deeting_tui.sdk import Context, Result

try:
    from .handler import MAX_DAYS, WeatherClient, build_report
except ImportError:  # imported as a plain module, with src/ on sys.path
    from handler import (  # type: ignore[no-redef,import-not-found]
        MAX_DAYS,
        WeatherClient,
        build_report,
    )

TOOLS = ("weather",)
ARGUMENTS = ("location", "days")
DEFAULT_DAYS = 3
MAX_LOCATION = 100

#: The HTTP client; tests replace it with one that answers from canned JSON.
client = WeatherClient()


def invoke(ctx: Context, tool: str, args: dict[str, Any]) -> Result:
    location, days = _check(tool, args)
    ctx.progress(0.1, f"looking up {location}")
    place = client.place(location)
    ctx.progress(0.5, f"fetching the forecast for {place.label}")
    data, text = build_report(place, client.forecast(place, days), days)
    return Result(data=data, text=text, renderer="weather-cards")


def _check(tool: str, args: Any) -> tuple[str, int]:
    if tool not in TOOLS:
        raise ValueError(f"weather has no tool {tool!r} (tools: {', '.join(TOOLS)})")
    if not isinstance(args, dict):
        raise ValueError(f"{tool}: arguments must be an object")
    unknown = sorted(set(args) - set(ARGUMENTS))
    if unknown:
        expected = ", ".join(ARGUMENTS)
        raise ValueError(f"{tool}: unknown argument(s) {', '.join(unknown)} (expected: {expected})")
    location = args.get("location")
    if location is None:
        raise ValueError(f'{tool}: missing argument "location" (a city, like "Paris")')
    if not isinstance(location, str):
        raise ValueError(f"{tool}: location must be a string, not {type(location).__name__}")
    location = " ".join(location.split())
    if not location:
        raise ValueError(f'{tool}: location is empty (a city, like "Paris")')
    if len(location) > MAX_LOCATION:
        raise ValueError(f"{tool}: location is too long (at most {MAX_LOCATION} characters)")
    days = args.get("days", DEFAULT_DAYS)
    if days is None:
        days = DEFAULT_DAYS
    if isinstance(days, float) and days.is_integer():
        days = int(days)
    if isinstance(days, bool) or not isinstance(days, int):
        raise ValueError(f"{tool}: days must be a whole number from 1 to {MAX_DAYS}")
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"{tool}: days must be from 1 to {MAX_DAYS}, not {days}")
    return location, days
