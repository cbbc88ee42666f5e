"""weather: canned Open-Meteo answers, WMO words, argument checks and every no-network path.

No test touches the internet: the plugin's client is handed a fake ``fetch``, and the HTTP
layer itself is tried against servers and proxies on 127.0.0.1 that this file starts.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from deeting_tui.sandbox.plugin_import import import_plugin_module
from deeting_tui.sdk import Context, normalize_result

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "plugins" / "weather" / "src"
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")

# Shapes as Open-Meteo sends them (trimmed to the fields asked for).
GEO_PARIS = {
    "results": [
        {
            "id": 2988507,
            "name": "Paris",
            "latitude": 48.85341,
            "longitude": 2.3488,
            "elevation": 42.0,
            "feature_code": "PPLC",
            "country_code": "FR",
            "admin1_id": 3012874,
            "admin2_id": 2968815,
            "timezone": "Europe/Paris",
            "population": 2138551,
            "country_id": 3017382,
            "country": "France",
            "admin1": "Île-de-France",
            "admin2": "Paris",
        }
    ],
    "generationtime_ms": 0.6439686,
}
GEO_PARIS_MANY = {
    "results": [
        {
            "id": 4717560,
            "name": "Paris",
            "latitude": 33.66094,
            "longitude": -95.55551,
            "country_code": "US",
            "country": "United States",
            "admin1": "Texas",
        },
        GEO_PARIS["results"][0],
    ],
    "generationtime_ms": 0.9,
}
GEO_NOTHING = {"generationtime_ms": 0.38}  # what an unknown name gets: no "results" at all
FORECAST = {
    "latitude": 48.86,
    "longitude": 2.3399997,
    "generationtime_ms": 0.0786781,
    "utc_offset_seconds": 3600,
    "timezone": "Europe/Paris",
    "timezone_abbreviation": "GMT+1",
    "elevation": 43.0,
    "current_units": {
        "time": "iso8601",
        "interval": "seconds",
        "temperature_2m": "°C",
        "weather_code": "wmo code",
        "wind_speed_10m": "km/h",
        "relative_humidity_2m": "%",
    },
    "current": {
        "time": "2026-11-26T14:00",
        "interval": 900,
        "temperature_2m": 12.3,
        "weather_code": 2,
        "wind_speed_10m": 14.0,
        "relative_humidity_2m": 71,
    },
    "daily_units": {
        "time": "iso8601",
        "temperature_2m_max": "°C",
        "temperature_2m_min": "°C",
        "weather_code": "wmo code",
    },
    "daily": {
        "time": ["2026-11-26", "2026-11-27", "2026-11-28"],
        "temperature_2m_max": [11.0, 9.4, 8.2],
        "temperature_2m_min": [5.1, 4.0, 2.7],
        "weather_code": [63, 3, 80],
    },
}
BAD_REQUEST = {
    "error": True,
    "reason": "Parameter 'forecast_days' is out of allowed range from 0 to 16",
}


@pytest.fixture(autouse=True)
def no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(autouse=True)
def only_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that tries to leave 127.0.0.1 fails loudly instead of touching the internet."""
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1"):
            raise AssertionError(f"a test tried to connect to {address!r}")
        return real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", "::1", "localhost", None):
            raise AssertionError(f"a test tried to resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def plugin(load_plugin: Any) -> ModuleType:
    """A freshly imported src/index.py (conftest's load_plugin)."""
    module: ModuleType = load_plugin("weather")
    return module


@pytest.fixture
def handler(plugin: ModuleType) -> ModuleType:
    return import_plugin_module(SRC, "handler")


@pytest.fixture
def ctx(make_ctx: Any) -> Context:
    context: Context = make_ctx("weather")
    return context


class Canned:
    """A ``fetch`` that answers from canned JSON by host, and remembers the URLs asked for."""

    def __init__(self, geo: Any = GEO_PARIS, forecast: Any = FORECAST) -> None:
        self.answers = {"geocoding-api.open-meteo.com": geo, "api.open-meteo.com": forecast}
        self.urls: list[str] = []

    def __call__(self, url: str) -> Any:
        self.urls.append(url)
        answer = self.answers[urllib.parse.urlsplit(url).hostname or ""]
        if isinstance(answer, Exception):
            raise answer
        return copy.deepcopy(answer)

    def query(self, index: int) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.urls[index]).query))


@pytest.fixture
def canned(plugin: ModuleType, handler: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Canned:
    fake = Canned()
    monkeypatch.setattr(plugin, "client", handler.WeatherClient(fetch=fake))
    return fake


def call(plugin: ModuleType, ctx: Context, **args: Any) -> dict[str, Any]:
    return normalize_result(plugin.invoke(ctx, "weather", args))


# -- the tool, on canned answers ----------------------------------------------------------------


def test_weather_for_a_city(plugin: ModuleType, ctx: Context, canned: Canned) -> None:
    out = call(plugin, ctx, location="Paris")
    assert out["renderer"] == "weather-cards"
    assert out["data"] == {
        "location": "Paris, France",
        "latitude": 48.85341,
        "longitude": 2.3488,
        "timezone": "Europe/Paris",
        "source": "Open-Meteo",
        "current": {
            "time": "2026-11-26T14:00",
            "temperature": 12.3,
            "unit": "°C",
            "condition": "partly cloudy",
            "code": 2,
            "wind": "14 km/h",
            "humidity": 71.0,
        },
        "daily": [
            {"date": "2026-11-26", "min": 5.1, "max": 11.0, "condition": "rain", "code": 63},
            {"date": "2026-11-27", "min": 4.0, "max": 9.4, "condition": "overcast", "code": 3},
            {
                "date": "2026-11-28",
                "min": 2.7,
                "max": 8.2,
                "condition": "light rain showers",
                "code": 80,
            },
        ],
    }
    assert out["text"] == (
        "Weather in Paris, France (48.85, 2.35): 12.3°C, partly cloudy, wind 14 km/h, "
        "humidity 71%. Forecast: 2026-11-26: 5.1°C to 11°C, rain; "
        "2026-11-27: 4°C to 9.4°C, overcast; 2026-11-28: 2.7°C to 8.2°C, light rain showers."
    )


def test_the_requests_it_sends(plugin: ModuleType, ctx: Context, canned: Canned) -> None:
    call(plugin, ctx, location="  Paris ", days=2)
    assert [urllib.parse.urlsplit(u).netloc for u in canned.urls] == [
        "geocoding-api.open-meteo.com",
        "api.open-meteo.com",
    ]
    assert canned.urls[0].startswith("https://geocoding-api.open-meteo.com/v1/search?")
    assert canned.query(0) == {"name": "Paris", "count": "1", "language": "en", "format": "json"}
    assert canned.urls[1].startswith("https://api.open-meteo.com/v1/forecast?")
    assert canned.query(1) == {
        "latitude": "48.8534",
        "longitude": "2.3488",
        "current": "temperature_2m,weather_code,wind_speed_10m,relative_humidity_2m",
        "daily": "temperature_2m_max,temperature_2m_min,weather_code",
        "timezone": "auto",
        "forecast_days": "2",
    }


def test_days_cuts_the_forecast(plugin: ModuleType, ctx: Context, canned: Canned) -> None:
    out = call(plugin, ctx, location="Paris", days=1)
    assert [day["date"] for day in out["data"]["daily"]] == ["2026-11-26"]


def test_the_progress_is_reported(
    plugin: ModuleType, ctx: Context, canned: Canned, channel: Any
) -> None:
    call(plugin, ctx, location="Paris")
    messages = [params["message"] for method, params in channel.sent if method == "progress"]
    assert messages == ["looking up Paris", "fetching the forecast for Paris, France"]


def test_city_and_country_picks_the_right_one(
    plugin: ModuleType, ctx: Context, canned: Canned
) -> None:
    canned.answers["geocoding-api.open-meteo.com"] = GEO_PARIS_MANY
    out = call(plugin, ctx, location="Paris, France")
    assert canned.query(0)["name"] == "Paris" and canned.query(0)["count"] == "10"
    assert out["data"]["location"] == "Paris, France"
    assert canned.query(1)["latitude"] == "48.8534"
    out = call(plugin, ctx, location="paris, texas")
    assert out["data"]["location"] == "Paris, United States"
    assert canned.query(3)["longitude"] == "-95.5555"


def test_city_in_the_wrong_country(plugin: ModuleType, ctx: Context, canned: Canned) -> None:
    canned.answers["geocoding-api.open-meteo.com"] = GEO_PARIS_MANY
    with pytest.raises(ValueError, match=r"no place called 'Paris' was found in 'Narnia'"):
        call(plugin, ctx, location="Paris, Narnia")


def test_coordinates_skip_the_lookup(plugin: ModuleType, ctx: Context, canned: Canned) -> None:
    out = call(plugin, ctx, location="48.85, 2.35")
    assert [urllib.parse.urlsplit(u).netloc for u in canned.urls] == ["api.open-meteo.com"]
    assert out["data"]["location"] == "48.85, 2.35"
    assert (canned.query(0)["latitude"], canned.query(0)["longitude"]) == ("48.8500", "2.3500")


def test_coordinates_off_the_earth(plugin: ModuleType, ctx: Context, canned: Canned) -> None:
    with pytest.raises(ValueError, match=r"'91,0' is not a place on Earth"):
        call(plugin, ctx, location="91,0")
    assert canned.urls == []


def test_unknown_city_is_a_clear_error(plugin: ModuleType, ctx: Context, canned: Canned) -> None:
    canned.answers["geocoding-api.open-meteo.com"] = GEO_NOTHING
    with pytest.raises(ValueError, match=r"^no place called 'Xqzzyville' was found — check"):
        call(plugin, ctx, location="Xqzzyville")
    assert len(canned.urls) == 1  # no forecast asked for


@pytest.mark.parametrize(
    "answer",
    [[], {"results": "Paris"}, {"results": [{"name": "Paris"}]}, {"results": [None]}],
)
def test_odd_lookup_answers(plugin: ModuleType, ctx: Context, canned: Canned, answer: Any) -> None:
    canned.answers["geocoding-api.open-meteo.com"] = answer
    with pytest.raises(ValueError, match=r"unexpected answer|no place called 'Paris'"):
        call(plugin, ctx, location="Paris")


def test_missing_values_do_not_crash(plugin: ModuleType, ctx: Context, canned: Canned) -> None:
    forecast = copy.deepcopy(FORECAST)
    forecast["current"] = {"temperature_2m": 3, "weather_code": 45, "relative_humidity_2m": 140}
    del forecast["current_units"], forecast["timezone"]
    forecast["daily"]["temperature_2m_min"] = [None, 4.0]
    forecast["daily"]["weather_code"] = [999, "x"]
    canned.answers["api.open-meteo.com"] = forecast
    out = call(plugin, ctx, location="Paris")
    # no wind, no time, humidity out of range: left out; the unit falls back to °C
    assert out["data"]["current"] == {
        "temperature": 3.0,
        "unit": "°C",
        "condition": "fog",
        "code": 45,
    }
    assert "timezone" not in out["data"]
    assert out["data"]["daily"] == [
        {"date": "2026-11-26", "min": None, "max": 11.0, "condition": "unknown (code 999)"},
        {"date": "2026-11-27", "min": 4.0, "max": 9.4, "condition": "unknown"},
        {"date": "2026-11-28", "min": None, "max": 8.2, "condition": "unknown"},
    ]
    assert out["text"].startswith("Weather in Paris, France (48.85, 2.35): 3°C, fog. Forecast: ")
    assert "2026-11-26: ? to 11°C, unknown (code 999)" in out["text"]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("nonsense", "unexpected answer"),
        ({"latitude": 1.0}, "no current conditions"),
        ({"current": {"weather_code": 1}}, "no current temperature"),
        (BAD_REQUEST, "the forecast service refused: Parameter 'forecast_days'"),
    ],
)
def test_odd_forecast_answers(
    plugin: ModuleType, ctx: Context, canned: Canned, answer: Any, message: str
) -> None:
    canned.answers["api.open-meteo.com"] = answer
    with pytest.raises(ValueError, match=message):
        call(plugin, ctx, location="Paris")


def test_a_fetch_error_reaches_the_kernel_as_is(
    plugin: ModuleType, handler: ModuleType, ctx: Context, canned: Canned
) -> None:
    canned.answers["geocoding-api.open-meteo.com"] = handler.WeatherError(
        "cannot reach geocoding-api.open-meteo.com: Connection refused — check the network"
    )
    with pytest.raises(ValueError, match=r"^cannot reach geocoding-api.open-meteo.com: "):
        call(plugin, ctx, location="Paris")


def test_the_payload_fits_the_weather_cards_schema(
    plugin: ModuleType, ctx: Context, canned: Canned
) -> None:
    """The kernel checks results against the renderer's schema; a misfit is an error card."""
    schema_path = REPO / "renderers" / "weather-cards" / "schema.json"
    if not schema_path.is_file():
        pytest.skip("renderers/weather-cards/schema.json is not there")
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json.loads(schema_path.read_text("utf-8")))
    full = call(plugin, ctx, location="Paris", days=7)["data"]
    forecast = copy.deepcopy(FORECAST)
    forecast["current"] = {"temperature_2m": -3.5}
    forecast["daily"]["temperature_2m_min"] = [None]
    canned.answers["api.open-meteo.com"] = forecast
    sparse = call(plugin, ctx, location="0,0")["data"]
    for payload in (full, sparse):
        assert [error.message for error in validator.iter_errors(payload)] == []


# -- WMO codes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (0, "clear sky"),
        (1, "mainly clear"),
        (2, "partly cloudy"),
        (3, "overcast"),
        (45, "fog"),
        (48, "depositing rime fog"),
        (51, "light drizzle"),
        (57, "dense freezing drizzle"),
        (61, "light rain"),
        (63, "rain"),
        (65, "heavy rain"),
        (67, "heavy freezing rain"),
        (71, "light snow"),
        (77, "snow grains"),
        (80, "light rain showers"),
        (82, "violent rain showers"),
        (86, "heavy snow showers"),
        (95, "thunderstorm"),
        (99, "thunderstorm with heavy hail"),
        (3.0, "overcast"),
        (4, "unknown (code 4)"),
        (2.5, "unknown (code 2.5)"),
        (None, "unknown"),
        ("3", "unknown"),
        (True, "unknown"),
    ],
)
def test_describe_code(handler: ModuleType, code: Any, words: str) -> None:
    assert handler.describe_code(code) == words


def test_every_documented_code_has_words(handler: ModuleType) -> None:
    documented = {0, 1, 2, 3, 45, 48, 51, 53, 55, 56, 57, 61, 63, 65, 66, 67, 71, 73, 75, 77}
    documented |= {80, 81, 82, 85, 86, 95, 96, 99}
    assert set(handler.WMO_CODES) == documented


# -- arguments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "args", "message"),
    [
        ("forecast", {"location": "Paris"}, r"weather has no tool 'forecast'"),
        ("weather", ["Paris"], "arguments must be an object"),
        ("weather", {}, 'missing argument "location"'),
        ("weather", {"location": None}, 'missing argument "location"'),
        ("weather", {"location": 75001}, "location must be a string, not int"),
        ("weather", {"location": "   "}, "location is empty"),
        ("weather", {"location": "x" * 101}, "location is too long"),
        ("weather", {"location": "P"}, "'P' is too short for a place name"),
        ("weather", {"location": "Paris", "days": 0}, "days must be from 1 to 7, not 0"),
        ("weather", {"location": "Paris", "days": 8}, "days must be from 1 to 7, not 8"),
        ("weather", {"location": "Paris", "days": "3"}, "days must be a whole number"),
        ("weather", {"location": "Paris", "days": 2.5}, "days must be a whole number"),
        ("weather", {"location": "Paris", "days": True}, "days must be a whole number"),
        ("weather", {"location": "Paris", "units": "F"}, r"unknown argument\(s\) units"),
    ],
)
def test_bad_arguments(
    plugin: ModuleType, ctx: Context, canned: Canned, tool: str, args: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        plugin.invoke(ctx, tool, args)
    assert canned.urls == []


def test_days_defaults_to_three_and_accepts_whole_floats(
    plugin: ModuleType, ctx: Context, canned: Canned
) -> None:
    call(plugin, ctx, location="Paris")
    call(plugin, ctx, location="Paris", days=None)
    call(plugin, ctx, location="Paris", days=7.0)
    assert [canned.query(i)["forecast_days"] for i in (1, 3, 5)] == ["3", "3", "7"]


# -- the HTTP layer, against 127.0.0.1 only ----------------------------------------------------


class Server:
    """A local HTTP server (or proxy) answering every request with one canned reply."""

    def __init__(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        reply = (status, body, content_type)
        self.requests: list[str] = []
        requests = self.requests

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                requests.append(f"{self.command} {self.path}")
                code, payload, kind = reply
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_CONNECT = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(status: int, body: Any, content_type: str = "application/json") -> Server:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        server = Server(status, raw, content_type)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_fetch_json_reads_an_answer(handler: ModuleType, serve: Callable[..., Server]) -> None:
    server = serve(200, GEO_PARIS)
    assert handler.fetch_json(f"{server.url}/v1/search?name=Paris") == GEO_PARIS
    assert server.requests == ["GET /v1/search?name=Paris"]


def test_connection_refused(handler: ModuleType) -> None:
    with pytest.raises(handler.WeatherError) as caught:
        handler.fetch_json("http://127.0.0.1:1/v1/forecast")
    assert str(caught.value) == "cannot reach 127.0.0.1: Connection refused — check the network"


def test_the_whole_tool_without_network(plugin: ModuleType, handler: ModuleType, ctx: Any) -> None:
    """The real fetch_json, pointed at a port where nothing listens: one clear line."""
    plugin.client = handler.WeatherClient(
        geocoding_url="http://127.0.0.1:1/v1/search", forecast_url="http://127.0.0.1:1/v1/forecast"
    )
    with pytest.raises(ValueError, match=r"^cannot reach 127\.0\.0\.1: .* — check the network$"):
        plugin.invoke(ctx, "weather", {"location": "Paris"})


def test_a_silent_server_times_out(handler: ModuleType) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        with pytest.raises(handler.WeatherError) as caught:
            handler.fetch_json(f"http://127.0.0.1:{port}/v1/forecast", timeout=0.3)
    assert str(caught.value) == (
        "cannot reach 127.0.0.1: no answer within 0.3 s — check the network"
    )


def test_a_proxy_that_refuses_the_host(
    handler: ModuleType, serve: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    """How the sandbox's proxy says no (or cannot connect): CONNECT answered with 403/502."""
    expected = {
        403: "the sandbox's proxy refused it (403 Forbidden) — is the host granted? "
        "see: deeting plugin info weather",
        502: "the proxy could not connect (502 Bad Gateway) — check the network",
    }
    for status, why in expected.items():
        proxy = serve(status, b"refused by policy", "text/plain")
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        with pytest.raises(handler.WeatherError) as caught:
            handler.fetch_json(f"{handler.FORECAST_URL}?latitude=1&longitude=2")
        assert proxy.requests == ["CONNECT api.open-meteo.com:443"]
        assert str(caught.value) == f"cannot reach api.open-meteo.com: {why}"


def test_an_api_error_gives_its_reason(handler: ModuleType, serve: Callable[..., Server]) -> None:
    server = serve(400, BAD_REQUEST)
    with pytest.raises(handler.WeatherError) as caught:
        handler.fetch_json(f"{server.url}/v1/forecast?forecast_days=99")
    assert str(caught.value) == (
        "127.0.0.1 refused the request (HTTP 400): "
        "Parameter 'forecast_days' is out of allowed range from 0 to 16"
    )


def test_a_server_error_without_reason(handler: ModuleType, serve: Callable[..., Server]) -> None:
    server = serve(503, b"<html>down</html>", "text/html")
    with pytest.raises(handler.WeatherError, match=r"^127.0.0.1 answered HTTP 503 .* try again"):
        handler.fetch_json(f"{server.url}/v1/forecast")


def test_an_answer_that_is_not_json(handler: ModuleType, serve: Callable[..., Server]) -> None:
    server = serve(200, b"<html>captive portal</html>", "text/html")
    with pytest.raises(handler.WeatherError, match=r"^127.0.0.1 sent an answer that is not JSON"):
        handler.fetch_json(f"{server.url}/v1/search")


def test_names_that_do_not_resolve_and_sandbox_denials(handler: ModuleType) -> None:
    gai = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert handler._unreachable("api.open-meteo.com", gai, 10.0) == (
        "cannot reach api.open-meteo.com: the host name cannot be resolved — check the network"
    )
    denied = PermissionError(
        "plugin 'weather' has no 'network' permission: run: deeting plugin grant weather network"
    )
    assert handler._unreachable("example.org", denied, 10.0) == (
        "cannot reach example.org: plugin 'weather' has no 'network' permission: "
        "run: deeting plugin grant weather network"
    )
