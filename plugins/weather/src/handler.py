"""Open-Meteo, read with urllib: place lookup, forecast, WMO codes, the card and its summary.

The HTTP layer is one function, :func:`fetch_json`; :class:`WeatherClient` takes any function
of that shape, so tests hand it canned Open-Meteo answers and never touch the network. Every
failure becomes a :class:`WeatherError` with one line that says what to do.
"""

from __future__ import annotations

import http.client
import json
import math
import re
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FORECAST_URL",
    "GEOCODING_URL",
    "MAX_DAYS",
    "TIMEOUT",
    "Place",
    "WeatherClient",
    "WeatherError",
    "build_report",
    "describe_code",
    "fetch_json",
    "parse_coordinates",
]

GEOCODING_URL = "https://geocoding-api.open-meteo.com/v1/search"
FORECAST_URL = "https://api.open-meteo.com/v1/forecast"
#: Seconds for connecting and for each read; two requests stay well inside a call's deadline.
TIMEOUT = 10.0
MAX_DAYS = 7
MAX_BYTES = 2 * 1024 * 1024
USER_AGENT = "deeting-weather/1.0 (+https://open-meteo.com)"
CURRENT_FIELDS = "temperature_2m,weather_code,wind_speed_10m,relative_humidity_2m"
DAILY_FIELDS = "temperature_2m_max,temperature_2m_min,weather_code"

#: WMO weather interpretation codes, as Open-Meteo documents them.
WMO_CODES: dict[int, str] = {
    0: "clear sky",
    1: "mainly clear",
    2: "partly cloudy",
    3: "overcast",
    45: "fog",
    48: "depositing rime fog",
    51: "light drizzle",
    53: "drizzle",
    55: "dense drizzle",
    56: "light freezing drizzle",
    57: "dense freezing drizzle",
    61: "light rain",
    63: "rain",
    65: "heavy rain",
    66: "light freezing rain",
    67: "heavy freezing rain",
    71: "light snow",
    73: "snow",
    75: "heavy snow",
    77: "snow grains",
    80: "light rain showers",
    81: "rain showers",
    82: "violent rain showers",
    85: "light snow showers",
    86: "heavy snow showers",
    95: "thunderstorm",
    96: "thunderstorm with light hail",
    99: "thunderstorm with heavy hail",
}

_TUNNEL = re.compile(r"^Tunnel connection failed: (?P<words>(?P<status>\d{3})\b.*)$")
_COORDINATES = re.compile(r"^\s*([+-]?\d{1,3}(?:\.\d+)?)\s*,\s*([+-]?\d{1,3}(?:\.\d+)?)\s*$")


class WeatherError(ValueError):
    """The weather cannot be given; the message is one line saying why and what to do."""


def describe_code(code: Any) -> str:
    """WMO code → words (``61`` → ``light rain``); unknown codes say so."""
    if isinstance(code, bool) or not isinstance(code, int | float) or not math.isfinite(code):
        return "unknown"
    if code != int(code):
        return f"unknown (code {code})"
    return WMO_CODES.get(int(code), f"unknown (code {int(code)})")


# -- HTTP ---------------------------------------------------------------------------------------


def fetch_json(url: str, timeout: float = TIMEOUT) -> Any:
    """GET ``url`` and decode its JSON. urllib honours HTTPS_PROXY/HTTP_PROXY, which is how the
    sandbox's proxy is reached. Raises :class:`WeatherError` with a one-line reason."""
    host = urllib.parse.urlsplit(url).hostname or url
    request = urllib.request.Request(
        url, headers={"User-Agent": USER_AGENT, "Accept": "application/json"}
    )
    # A fresh opener reads the proxy variables now; urlopen's cached one keeps the first seen.
    opener = urllib.request.build_opener()
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as error:
        raise WeatherError(_http_error(host, error)) from None
    except urllib.error.URLError as error:
        raise WeatherError(_unreachable(host, error.reason, timeout)) from None
    except (OSError, http.client.HTTPException) as error:  # timeouts, resets, bad answers
        raise WeatherError(_unreachable(host, error, timeout)) from None
    if len(body) > MAX_BYTES:
        raise WeatherError(f"{host} sent an answer larger than {MAX_BYTES // 1024} KiB")
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WeatherError(f"{host} sent an answer that is not JSON — try again later") from None


def _http_error(host: str, error: urllib.error.HTTPError) -> str:
    reason = ""
    try:
        document = json.loads(error.read(64 * 1024).decode("utf-8"))
        if isinstance(document, dict) and isinstance(document.get("reason"), str):
            reason = document["reason"]
    except (OSError, ValueError):
        pass
    finally:
        error.close()
    if reason:
        return f"{host} refused the request (HTTP {error.code}): {_one_line(reason)}"
    return f"{host} answered HTTP {error.code} {error.reason} — try again later"


def _unreachable(host: str, reason: Any, timeout: float) -> str:
    if isinstance(reason, PermissionError):  # the sandbox: its message says how to grant
        return f"cannot reach {host}: {_one_line(str(reason))}"
    if isinstance(reason, TimeoutError | socket.timeout) or "timed out" in str(reason):
        why = f"no answer within {timeout:g} s"
    elif isinstance(reason, socket.gaierror):
        why = "the host name cannot be resolved"
    elif isinstance(reason, ssl.SSLError):
        why = f"secure connection failed ({getattr(reason, 'reason', None) or reason})"
    elif (tunnel := _TUNNEL.match(str(reason))) is not None:  # the proxy said no
        status = tunnel["status"]
        if status == "403":
            return (
                f"cannot reach {host}: the sandbox's proxy refused it ({tunnel['words']}) — "
                "is the host granted? see: deeting plugin info weather"
            )
        why = f"the proxy could not connect ({tunnel['words']})"
    elif isinstance(reason, OSError) and reason.strerror:
        why = reason.strerror
    else:
        why = str(reason) or type(reason).__name__
    return f"cannot reach {host}: {_one_line(why)} — check the network"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


# -- the two requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    label: str
    latitude: float
    longitude: float


def parse_coordinates(text: str) -> tuple[float, float] | None:
    """``"48.85, 2.35"`` → (48.85, 2.35); None when ``text`` is not a coordinate pair."""
    match = _COORDINATES.match(text)
    if match is None:
        return None
    latitude, longitude = float(match[1]), float(match[2])
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise WeatherError(
            f"{text.strip()!r} is not a place on Earth: latitude is -90 to 90, "
            "longitude -180 to 180"
        )
    return latitude, longitude


class WeatherClient:
    """Open-Meteo through one ``fetch(url) -> JSON`` function (replaced in tests)."""

    def __init__(
        self,
        fetch: Callable[[str], Any] = fetch_json,
        geocoding_url: str = GEOCODING_URL,
        forecast_url: str = FORECAST_URL,
    ) -> None:
        self.fetch = fetch
        self.geocoding_url = geocoding_url
        self.forecast_url = forecast_url

    def place(self, location: str) -> Place:
        """A city name (looked up), ``"City, Country"`` or ``"City, Region"`` (the first match
        in that country or region), or ``"lat,lon"`` (used as is)."""
        coordinates = parse_coordinates(location)
        if coordinates is not None:
            latitude, longitude = coordinates
            return Place(f"{latitude:g}, {longitude:g}", latitude, longitude)
        name, _, qualifier = (part.strip() for part in location.partition(","))
        if len(name) < 2:
            raise WeatherError(f"{location.strip()!r} is too short for a place name")
        query = urllib.parse.urlencode(
            {"name": name, "count": 10 if qualifier else 1, "language": "en", "format": "json"}
        )
        answer = self.fetch(f"{self.geocoding_url}?{query}")
        results = answer.get("results", []) if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise WeatherError("the place lookup sent an unexpected answer — try again later")
        candidates = [r for r in results if isinstance(r, dict) and _has_coordinates(r)]
        if not candidates:
            raise WeatherError(
                f"no place called {name!r} was found — check the spelling, "
                "or give coordinates as 'latitude,longitude'"
            )
        if qualifier:
            wanted = qualifier.casefold()
            candidates = [r for r in candidates if wanted in _region_names(r)]
            if not candidates:
                raise WeatherError(
                    f"no place called {name!r} was found in {qualifier!r} — check the spelling, "
                    f"try just {name!r}, or give coordinates as 'latitude,longitude'"
                )
        return _place(candidates[0])

    def forecast(self, place: Place, days: int) -> Any:
        query = urllib.parse.urlencode(
            {
                "latitude": f"{place.latitude:.4f}",
                "longitude": f"{place.longitude:.4f}",
                "current": CURRENT_FIELDS,
                "daily": DAILY_FIELDS,
                "timezone": "auto",
                "forecast_days": days,
            },
            safe=",",
        )
        return self.fetch(f"{self.forecast_url}?{query}")


def _has_coordinates(result: dict[str, Any]) -> bool:
    latitude, longitude = result.get("latitude"), result.get("longitude")
    return _is_number(latitude) and _is_number(longitude)


def _region_names(result: dict[str, Any]) -> set[str]:
    keys = ("country", "country_code", "admin1", "admin2")
    return {v.casefold() for k in keys if isinstance(v := result.get(k), str) and v}


def _place(result: dict[str, Any]) -> Place:
    name = result.get("name")
    parts = [name if isinstance(name, str) and name else "?"]
    country = result.get("country")
    if isinstance(country, str) and country and country != parts[0]:
        parts.append(country)
    return Place(", ".join(parts), float(result["latitude"]), float(result["longitude"]))


# -- the card -----------------------------------------------------------------------------------


def build_report(place: Place, forecast: Any, days: int) -> tuple[dict[str, Any], str]:
    """Open-Meteo's forecast answer → the ``weather-cards`` payload and the model's summary.

    The payload follows ``renderers/weather-cards/schema.json``: ``current.temperature`` and
    ``humidity`` are numbers, ``wind`` a phrase, a missing value is left out (``null`` for a
    day's min or max), and ``code`` carries the WMO code for the card's icon.
    """
    if not isinstance(forecast, dict):
        raise WeatherError("the forecast service sent an unexpected answer — try again later")
    if forecast.get("error"):
        reason = forecast.get("reason")
        raise WeatherError(f"the forecast service refused: {_one_line(str(reason))}")
    current = forecast.get("current")
    if not isinstance(current, dict):
        raise WeatherError("the forecast has no current conditions — try again later")
    units = forecast.get("current_units")
    units = units if isinstance(units, dict) else {}
    temperature = _number(current.get("temperature_2m"))
    if temperature is None:
        raise WeatherError("the forecast has no current temperature — try again later")
    now: dict[str, Any] = {
        "temperature": temperature,
        "unit": _unit(units, "temperature_2m", "°C"),
        "condition": describe_code(current.get("weather_code")),
    }
    if isinstance(current.get("time"), str):
        now["time"] = current["time"]
    code = _code(current.get("weather_code"))
    if code is not None:
        now["code"] = code
    wind = _number(current.get("wind_speed_10m"))
    if wind is not None:
        now["wind"] = f"{wind:g} {_unit(units, 'wind_speed_10m', 'km/h')}"
    humidity = _number(current.get("relative_humidity_2m"))
    if humidity is not None and 0 <= humidity <= 100:
        now["humidity"] = humidity
    daily = _daily(forecast.get("daily"), days)
    data: dict[str, Any] = {
        "location": place.label,
        "latitude": place.latitude,
        "longitude": place.longitude,
        "source": "Open-Meteo",
        "current": now,
        "daily": daily,
    }
    if isinstance(forecast.get("timezone"), str):
        data["timezone"] = forecast["timezone"]
    return data, _summary(place, now, daily)


def _daily(block: Any, days: int) -> list[dict[str, Any]]:
    if not isinstance(block, dict) or not isinstance(block.get("time"), list):
        return []
    dates = block["time"]

    def column(name: str) -> list[Any]:
        values = block.get(name)
        return values if isinstance(values, list) else []

    lows, highs, codes = (
        column("temperature_2m_min"),
        column("temperature_2m_max"),
        column("weather_code"),
    )
    out = []
    for index, date in enumerate(dates[:days]):
        if not isinstance(date, str):
            continue
        raw_code = codes[index] if index < len(codes) else None
        day: dict[str, Any] = {
            "date": date,
            "min": _number(lows[index] if index < len(lows) else None),
            "max": _number(highs[index] if index < len(highs) else None),
            "condition": describe_code(raw_code),
        }
        code = _code(raw_code)
        if code is not None:
            day["code"] = code
        out.append(day)
    return out


def _summary(place: Place, now: dict[str, Any], daily: list[dict[str, Any]]) -> str:
    at = f"{place.label} ({place.latitude:.2f}, {place.longitude:.2f})"
    unit = now["unit"]
    parts = [f"Weather in {at}: {now['temperature']:g}{unit}, {now['condition']}"]
    if "wind" in now:
        parts.append(f"wind {now['wind']}")
    if "humidity" in now:
        parts.append(f"humidity {now['humidity']:g}%")
    text = ", ".join(parts) + "."
    if daily:
        lines = [
            f"{day['date']}: {_temp(day['min'], unit)} to {_temp(day['max'], unit)}, "
            f"{day['condition']}"
            for day in daily
        ]
        text += " Forecast: " + "; ".join(lines) + "."
    return text


def _code(value: Any) -> int | None:
    """A WMO code the card can draw (0 to 99), or None."""
    if not _is_number(value) or value != int(value) or not 0 <= value <= 99:
        return None
    return int(value)


def _temp(value: float | None, unit: str) -> str:
    return "?" if value is None else f"{value:g}{unit}"


def _unit(units: dict[str, Any], key: str, default: str) -> str:
    value = units.get(key)
    return value if isinstance(value, str) and value else default


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _number(value: Any) -> float | None:
    return float(value) if _is_number(value) else None
