// The weather-cards face: conditions now and a daily forecast, shaped after Open-Meteo (see
// schema.json). The condition words and the icon come from the WMO code when the plugin sends no
// words; the icons are drawn here as inline SVG (no remote asset, no emoji font needed). Each
// day's low..high sits on one scale shared by all days, so a cold and a warm day differ at a
// glance, as in the terminal face.
(function () {
  "use strict";

  const MAX_DAYS = 16; // Open-Meteo's longest forecast
  const SVG = "http://www.w3.org/2000/svg";
  const clean = (text) => DeetingFace.clean(text);

  // WMO weather interpretation codes (as Open-Meteo documents them): code -> [words, icon].
  const WMO = {
    0: ["Clear sky", "clear"], 1: ["Mainly clear", "partly"], 2: ["Partly cloudy", "partly"],
    3: ["Overcast", "cloud"], 45: ["Fog", "fog"], 48: ["Rime fog", "fog"],
    51: ["Light drizzle", "drizzle"], 53: ["Drizzle", "drizzle"], 55: ["Dense drizzle", "drizzle"],
    56: ["Freezing drizzle", "rain"], 57: ["Freezing drizzle", "rain"],
    61: ["Light rain", "rain"], 63: ["Rain", "rain"], 65: ["Heavy rain", "rain"],
    66: ["Freezing rain", "rain"], 67: ["Heavy freezing rain", "rain"],
    71: ["Light snow", "snow"], 73: ["Snow", "snow"], 75: ["Heavy snow", "snow"], 77: ["Snow grains", "snow"],
    80: ["Light showers", "drizzle"], 81: ["Showers", "drizzle"], 82: ["Violent showers", "rain"],
    85: ["Snow showers", "snow"], 86: ["Heavy snow showers", "snow"],
    95: ["Thunderstorm", "thunder"], 96: ["Thunderstorm, hail", "thunder"], 99: ["Thunderstorm, heavy hail", "thunder"],
  };
  // Words in a plugin's own condition -> icon, when it sends no code (first match wins).
  const WORDS = [
    ["thunder", "thunder"], ["snow", "snow"], ["sleet", "snow"], ["shower", "drizzle"],
    ["drizzle", "drizzle"], ["rain", "rain"], ["fog", "fog"], ["mist", "fog"], ["partly", "partly"],
    ["overcast", "cloud"], ["cloud", "cloud"], ["clear", "clear"], ["sun", "clear"],
  ];
  const COMPASS = ["N", "NE", "E", "SE", "S", "SW", "W", "NW"];
  const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  // A field of the expected type, null when absent; anything else is the plugin's mistake and
  // fails the card with a sentence saying where (as the terminal face does).
  const { field, kind } = DeetingFace;
  // A value only drawn when it is a finite number (as the terminal's number()).
  const number = (value) => (typeof value === "number" && Number.isFinite(value) ? value : null);

  function cut(text, limit) {
    return text.length > limit ? text.slice(0, limit - 1) + "…" : text;
  }

  function fmt(value, digits) {
    const rounded = Number(value.toFixed(digits));
    return String(Object.is(rounded, -0) ? 0 : rounded).replace("-", "−");
  }

  const element = DeetingFace.el;

  function iconKind(code, condition, isDay) {
    let found = Number.isInteger(code) && WMO[code] ? WMO[code][1] : "";
    if (!found && condition) {
      const lowered = condition.toLowerCase();
      const hit = WORDS.find(([word]) => lowered.includes(word));
      found = hit ? hit[1] : "";
    }
    if (found === "clear" && isDay !== null && isDay !== undefined && !isDay) return "night";
    return found || "unknown";
  }

  function words(code, condition) {
    if (condition) {
      const text = cut(clean(condition), 60);
      return text.slice(0, 1).toUpperCase() + text.slice(1);
    }
    return Number.isInteger(code) && WMO[code] ? WMO[code][0] : "";
  }

  // --- icons: simple filled shapes on a 32x32 grid, coloured by the theme through face.css ---
  function shape(tag, attrs, className) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    if (className) node.setAttribute("class", className);
    return node;
  }
  function cloud(dy, dark) {
    const g = shape("g", { transform: `translate(0 ${dy})` }, dark ? "cloud dark" : "cloud");
    g.append(
      shape("circle", { cx: 12, cy: 16, r: 6 }),
      shape("circle", { cx: 19, cy: 13, r: 7.5 }),
      shape("rect", { x: 5, y: 15, width: 23, height: 8, rx: 4 }),
    );
    return g;
  }
  function sun(cx, cy, r) {
    const g = shape("g", {}, "sun");
    g.append(shape("circle", { cx, cy, r }));
    for (let i = 0; i < 8; i++) {
      const a = (i * Math.PI) / 4;
      const x1 = cx + Math.cos(a) * (r + 2.5), y1 = cy + Math.sin(a) * (r + 2.5);
      const x2 = cx + Math.cos(a) * (r + 5), y2 = cy + Math.sin(a) * (r + 5);
      g.append(shape("line", { x1: x1.toFixed(2), y1: y1.toFixed(2), x2: x2.toFixed(2), y2: y2.toFixed(2) }, "ray"));
    }
    return g;
  }
  function drops(kindName) {
    const g = shape("g", {}, kindName === "snow" ? "snowflakes" : "drops");
    const xs = [11, 17, 23];
    xs.forEach((x, i) => {
      if (kindName === "snow") g.append(shape("circle", { cx: x - 1, cy: 27 + (i % 2) * 2, r: 1.6 }));
      else if (kindName === "drizzle") g.append(shape("line", { x1: x, y1: 26, x2: x - 1, y2: 28 + (i % 2) }));
      else g.append(shape("line", { x1: x, y1: 25.5, x2: x - 2, y2: 30 }));
    });
    return g;
  }
  function icon(kindName, label) {
    const svg = shape("svg", { viewBox: "0 0 32 32", role: "img", "aria-label": label || kindName }, `wx-icon icon-${kindName}`);
    if (kindName === "clear") svg.append(sun(16, 16, 6.5));
    else if (kindName === "night") svg.append(shape("path", { d: "M19 4a12 12 0 1 0 9 17A10 10 0 0 1 19 4Z" }, "moon"));
    else if (kindName === "partly") svg.append(sun(12, 11, 5), cloud(3, false));
    else if (kindName === "cloud") svg.append(cloud(0, false));
    else if (kindName === "fog") {
      svg.append(cloud(-4, false));
      const g = shape("g", {}, "fog-lines");
      g.append(shape("line", { x1: 6, y1: 24, x2: 26, y2: 24 }), shape("line", { x1: 9, y1: 28, x2: 23, y2: 28 }));
      svg.append(g);
    } else if (kindName === "drizzle" || kindName === "rain" || kindName === "snow") {
      svg.append(cloud(-4, kindName === "rain"), drops(kindName));
    } else if (kindName === "thunder") {
      svg.append(cloud(-4, true), shape("path", { d: "M17 19l-5 7h4l-2 5 6-8h-4l2-4z" }, "bolt"));
    } else {
      const g = shape("g", {}, "thermo");
      g.append(shape("rect", { x: 13, y: 4, width: 6, height: 18, rx: 3 }), shape("circle", { cx: 16, cy: 24, r: 5 }));
      svg.append(g);
    }
    return svg;
  }
  function arrow(degrees) {
    // Points where the wind blows to (it is given as where it comes from).
    const svg = shape("svg", { viewBox: "0 0 16 16", "aria-hidden": "true" }, "wind-arrow");
    svg.append(shape("path", { d: "M8 2l4 10-4-2.5L4 12z" }));
    svg.style.transform = `rotate(${(degrees + 180) % 360}deg)`;
    return svg;
  }

  // --- values ---
  function dayLabel(date) {
    const match = /^(\d{4})-(\d{2})-(\d{2})/.exec(date);
    if (match) {
      const when = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])));
      if (!Number.isNaN(when.getTime()) && when.getUTCDate() === Number(match[3])) {
        return [WEEKDAYS[when.getUTCDay()], `${when.getUTCDate()} ${MONTHS[when.getUTCMonth()]}`];
      }
    }
    return [cut(clean(date), 12), ""];
  }

  // A colour for a temperature: blue below freezing up to red past 28 °C (as the terminal).
  function warmth(celsius) {
    if (celsius < 0) return "var(--series-1)";
    if (celsius < 10) return "var(--series-3)";
    if (celsius < 20) return "var(--good)";
    if (celsius < 28) return "var(--warn)";
    return "var(--bad)";
  }

  function now(current, unit) {
    const where = "current/";
    const temperature = field(current, "temperature", "number", where, true);
    const condition = field(current, "condition", "string", where, false);
    const code = field(current, "code", "integer", where, false);
    const time = field(current, "time", "string", where, false);
    const sky = words(code, condition);
    const box = element("div", "wx-now");
    box.append(icon(iconKind(code, condition, current.is_day), sky || "weather"));
    const temp = element("div", "wx-temp");
    temp.append(document.createTextNode(fmt(temperature, 1)), element("span", "wx-unit", unit));
    box.append(temp);
    const side = element("div", "wx-side");
    if (sky) side.append(element("div", "wx-cond", sky));
    if (time) {
      const at = /T(\d{2}:\d{2})/.exec(time);
      side.append(element("div", "wx-time", `as of ${at ? at[1] : cut(clean(time), 25)}`));
    }
    box.append(side);
    return box;
  }

  function details(current, unit) {
    const where = "current/";
    const list = element("ul", "wx-details");
    const add = (label, value, extra) => {
      const item = element("li", "wx-detail");
      item.append(element("span", "wx-label", label));
      const strong = element("span", "wx-value", value);
      if (extra) strong.append(extra);
      item.append(strong);
      list.append(item);
    };
    const feels = number(current.feels_like);
    if (feels !== null) add("Feels like", `${fmt(feels, 0)}${unit}`);
    const wind = field(current, "wind", "numberOrString", where, false);
    if (typeof wind === "string") add("Wind", cut(clean(wind), 40));
    else if (wind !== null) {
      const windUnit = cut(clean(field(current, "wind_unit", "string", where, false) || "km/h"), 10);
      const direction = number(current.wind_direction);
      if (direction !== null) {
        const point = COMPASS[Math.round((((direction % 360) + 360) % 360) / 45) % 8];
        add("Wind", `${fmt(wind, 0)} ${windUnit} ${point}`, arrow(direction));
      } else {
        add("Wind", `${fmt(wind, 0)} ${windUnit}`);
      }
    }
    const humidity = number(current.humidity);
    if (humidity !== null) add("Humidity", `${fmt(humidity, 0)}%`);
    const rain = number(current.precipitation);
    if (rain) add("Precipitation", `${fmt(rain, 1)} mm`);
    return list.childNodes.length ? list : null;
  }

  function forecast(daily, unit) {
    const days = daily.slice(0, MAX_DAYS).map((day, index) => {
      const where = `daily/${index}/`;
      if (day === null || typeof day !== "object" || Array.isArray(day)) {
        throw new Error(`daily/${index}: expected an object, not ${kind(day)}`);
      }
      return {
        date: field(day, "date", "string", where, true),
        low: field(day, "min", "number", where, false),
        high: field(day, "max", "number", where, false),
        condition: field(day, "condition", "string", where, false),
        code: field(day, "code", "integer", where, false),
        chance: number(day.precipitation_probability),
      };
    });
    const all = days.flatMap((d) => [d.low, d.high]).filter((v) => v !== null);
    const bottom = all.length ? Math.min(...all) : 0;
    const top = all.length ? Math.max(...all) : 0;
    const short = unit.slice(0, 1);
    const fahrenheit = unit.toUpperCase().includes("F");
    const list = element("ol", "wx-days");
    for (const day of days) {
      const item = element("li", "wx-day");
      const [weekday, date] = dayLabel(day.date);
      const label = element("span", "wx-date");
      label.append(element("span", "wx-weekday", weekday), element("span", "wx-daydate", date));
      const sky = words(day.code, day.condition);
      const rain = element("span", "wx-chance", day.chance === null ? "" : `${fmt(day.chance, 0)}%`);
      if (day.chance !== null) rain.title = "chance of precipitation";
      const low = element("span", "wx-low", day.low === null ? "—" : `${fmt(day.low, 0)}${short}`);
      const high = element("span", "wx-high", day.high === null ? "—" : `${fmt(day.high, 0)}${short}`);
      const bar = element("span", "wx-bar");
      bar.setAttribute("aria-hidden", "true");
      if (day.low !== null && day.high !== null) {
        const span = top - bottom;
        const a = Math.min(day.low, day.high), b = Math.max(day.low, day.high);
        const fill = element("span", "wx-fill");
        fill.style.left = `${span > 0 ? ((a - bottom) / span) * 100 : 0}%`;
        fill.style.width = `${span > 0 ? ((b - a) / span) * 100 : 100}%`;
        const celsius = (t) => (fahrenheit ? ((t - 32) * 5) / 9 : t);
        fill.style.background = `linear-gradient(90deg, ${warmth(celsius(a))}, ${warmth(celsius(b))})`;
        bar.append(fill);
      }
      item.append(label, icon(iconKind(day.code, day.condition, null), sky || "weather"),
        element("span", "wx-words", sky), rain, low, bar, high);
      list.append(item);
    }
    return list;
  }

  DeetingFace.register({
    draw(payload) {
      if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
        throw new Error(`the 'weather-cards' renderer expects an object, not ${kind(payload)}`);
      }
      const location = field(payload, "location", "string", "", true);
      const current = field(payload, "current", "object", "", true);
      const daily = field(payload, "daily", "list", "", false) || [];
      const source = field(payload, "source", "string", "", false);
      const timezone = field(payload, "timezone", "string", "", false);
      const unit = cut(clean(field(current, "unit", "string", "current/", false) || "°C"), 8);

      const root = element("section", "wx");
      const head = element("header", "wx-head");
      head.append(element("h1", "wx-place", cut(clean(location), 120)));
      const where = [source, timezone].filter(Boolean).map((s) => cut(clean(s), 60)).join(" · ");
      if (where) head.append(element("span", "wx-source", where));
      root.append(head, now(current, unit));
      const more = details(current, unit);
      if (more) root.append(more);
      if (daily.length) {
        root.append(forecast(daily, unit));
        if (daily.length > MAX_DAYS) root.append(element("p", "wx-more", `… ${daily.length - MAX_DAYS} more days`));
      }
      document.body.replaceChildren(root);
    },
  });
})();
