// The chart face: one Lightweight Charts chart per payload (line, area, bar/histogram,
// candlestick, sparkline), coloured from the theme's variables.
//
// A live stream sends every frame as a full payload. When a frame only adds points after the
// previous frame's (same kind, same series, old points unchanged), the new points go in with
// series.update(), which costs as much as the points added; anything else is a setData. That
// is what keeps 200 frames a second cheap. body.dataset.appended counts the frames appended.
//
// Plugin strings reach the page only as textContent (after DeetingFace.clean) or as canvas
// text drawn by the library: never as markup.
(function () {
  "use strict";

  const LWC = window.LightweightCharts;
  const KINDS = ["line", "bar", "sparkline", "area", "histogram", "candlestick"];
  const CANDLE = ["open", "high", "low", "close"];
  const MAX_SERIES = 8; // as many as the theme has colours
  const MAX_LABEL = 24;
  const MAX_UNIT = 12;

  let view = null; // what is on screen: see build()
  let appended = 0;

  // ---- reading a payload ------------------------------------------------------------------
  // The server has checked the payload against schema.json; these checks are for a face opened
  // by hand and keep the messages as specific as the terminal's.

  function fail(message) {
    throw new Error(DeetingFace.clean(message));
  }

  function shown(value) {
    let text;
    try {
      text = JSON.stringify(value);
    } catch (err) {
      text = String(value);
    }
    text = String(text);
    return text.length > 40 ? `${text.slice(0, 39)}…` : text;
  }

  function typeName(value) {
    if (value === null) return "null";
    if (Array.isArray(value)) return "a list";
    return { object: "an object", string: "a string", number: "a number", boolean: "a boolean" }[typeof value] || typeof value;
  }

  function read(payload) {
    if (!payload || typeof payload !== "object" || Array.isArray(payload)) {
      fail(`a chart payload is an object with series, not ${typeName(payload)}`);
    }
    const kind = payload.kind === undefined || payload.kind === null ? "line" : payload.kind;
    if (!KINDS.includes(kind)) fail(`kind: expected one of ${KINDS.join(", ")}, not ${shown(kind)}`);
    if (!Array.isArray(payload.series)) fail(`series: expected a list, not ${typeName(payload.series)}`);
    const series = payload.series.slice(0, MAX_SERIES).map((item, index) => {
      if (!item || typeof item !== "object" || Array.isArray(item)) {
        fail(`series/${index}: expected an object with values, not ${typeName(item)}`);
      }
      if (!Array.isArray(item.values)) fail(`series/${index}/values: expected a list, not ${typeName(item.values)}`);
      const name = typeof item.name === "string" && item.name ? item.name : `series ${index + 1}`;
      return { name: DeetingFace.clean(name).slice(0, 80), values: item.values };
    });
    for (const key of ["title", "unit"]) {
      if (payload[key] !== undefined && typeof payload[key] !== "string") fail(`${key}: expected a string, not ${typeName(payload[key])}`);
    }
    for (const key of ["labels", "times"]) {
      if (payload[key] !== undefined && !Array.isArray(payload[key])) fail(`${key}: expected a list, not ${typeName(payload[key])}`);
    }
    let length = 0;
    for (const one of series) length = Math.max(length, one.values.length);
    return {
      kind,
      title: (payload.title || "").slice(0, 300),
      unit: DeetingFace.clean(payload.unit || "").slice(0, MAX_UNIT),
      labels: payload.labels || null,
      times: payload.times || null,
      series,
      more: payload.series.length - series.length,
      length,
    };
  }

  // Values from `start` on: numbers (or null), or candles for a candlestick chart.
  function check(spec, start) {
    const candles = spec.kind === "candlestick";
    spec.series.forEach((one, index) => {
      const values = one.values;
      for (let i = start[index] || 0; i < values.length; i++) {
        const value = values[i];
        if (value === null) continue;
        if (candles) {
          if (typeof value !== "object" || Array.isArray(value)) {
            fail(`series/${index}/values/${i}: expected {open, high, low, close} or null, not ${typeName(value)}`);
          }
          for (const key of CANDLE) {
            if (typeof value[key] !== "number") fail(`series/${index}/values/${i}/${key}: expected a number, not ${typeName(value[key])}`);
          }
        } else if (typeof value !== "number") {
          fail(`series/${index}/values/${i}: expected a number or null, not ${typeName(value)}`);
        }
      }
    });
  }

  // Seconds since 1970 for each time, or null when they can't be a time axis (a time is not
  // one, too few of them, or not ascending): then the points are on an index axis, and the
  // times become its labels.
  function secondsOf(times, length) {
    if (!times || times.length < length || length === 0) return null;
    const out = new Array(length);
    for (let i = 0; i < length; i++) {
      const t = toSeconds(times[i]);
      if (t === null || (i > 0 && !(t > out[i - 1]))) return null;
      out[i] = t;
    }
    return out;
  }

  function toSeconds(time) {
    if (typeof time === "number") return Number.isFinite(time) ? time : null;
    if (typeof time !== "string") return null;
    // A date and time without an offset is UTC, as the schema says (Date.parse would take
    // it as local time).
    const text = /[T ]\d\d:\d\d/.test(time) && !/(Z|[+-]\d\d:?\d\d)$/.test(time) ? `${time.replace(" ", "T")}Z` : time;
    const ms = Date.parse(text);
    return Number.isFinite(ms) ? ms / 1000 : null;
  }

  // ---- the theme ----------------------------------------------------------------------------

  function themed() {
    const style = getComputedStyle(document.documentElement);
    const v = (name) => style.getPropertyValue(name).trim();
    const series = [];
    for (let i = 1; i <= MAX_SERIES; i++) series.push(v(`--series-${i}`));
    return { bg: v("--bg"), fg: v("--fg"), muted: v("--muted"), border: v("--border"), good: v("--good"), bad: v("--bad"), font: v("--font"), series };
  }

  function alpha(color, a) {
    const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
    if (!m) return color;
    return `rgba(${parseInt(m[1], 16)}, ${parseInt(m[2], 16)}, ${parseInt(m[3], 16)}, ${a})`;
  }

  function chartColours(colours, spark) {
    return {
      layout: {
        background: { type: LWC.ColorType.Solid, color: colours.bg },
        textColor: colours.muted,
        fontFamily: colours.font,
        // The library's own attribution logo injects a <style> element (the CSP refuses it)
        // and puts this page's path, with the server's secret token, in its link: the face
        // shows the attribution its licence asks for as its own link instead (see build()).
        attributionLogo: false,
      },
      grid: {
        vertLines: { color: alpha(colours.border, 0.6), visible: !spark },
        horzLines: { color: alpha(colours.border, 0.6), visible: !spark },
      },
      rightPriceScale: { borderColor: colours.border },
      timeScale: { borderColor: colours.border },
      crosshair: {
        vertLine: { color: colours.muted, labelBackgroundColor: colours.muted },
        horzLine: { color: colours.muted, labelBackgroundColor: colours.muted },
      },
    };
  }

  function seriesColours(kind, colours, index) {
    const color = colours.series[index % colours.series.length];
    switch (kind) {
      case "area":
        return { lineColor: color, topColor: alpha(color, 0.35), bottomColor: alpha(color, 0.02) };
      case "bar":
      case "histogram":
        return { color };
      case "candlestick":
        return { upColor: colours.good, downColor: colours.bad, wickUpColor: colours.good, wickDownColor: colours.bad, borderVisible: false };
      default:
        return { color };
    }
  }

  function swatchColour(kind, colours, index) {
    return kind === "candlestick" ? colours.good : colours.series[index % colours.series.length];
  }

  function applyTheme() {
    const colours = themed();
    view.chart.applyOptions(chartColours(colours, view.kind === "sparkline"));
    view.series.forEach((api, index) => api.applyOptions(seriesColours(view.kind, colours, index)));
    view.dots.forEach((one, index) => {
      if (one && one.at.length) showDots(one, view.seconds, colours, index);
    });
    view.swatches.forEach((swatch, index) => {
      swatch.style.backgroundColor = swatchColour(view.kind, colours, index); // CSSOM: allowed by the CSP
    });
  }

  // ---- numbers and axis text ------------------------------------------------------------------

  // Axis and crosshair text for a value. The library calls this for every point it lays out,
  // so it is plain arithmetic: Intl.NumberFormat here cost more than drawing 10,000 points.
  function number(value) {
    const size = Math.abs(value);
    if (size < 1) return size === 0 ? "0" : String(Number(value.toPrecision(3)));
    const digits = size >= 1000 ? 0 : size >= 10 ? 1 : 2;
    let text = value.toFixed(digits);
    if (digits > 0 && text.includes(".")) text = text.replace(/\.?0+$/, "");
    if (size >= 10000 && size < 1e21) text = text.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return text === "-0" ? "0" : text;
  }

  // The index axis shows the label of a point (its time, when times could not be an axis).
  function labelAt(index) {
    const last = view && view.last;
    const names = last && (last.labels || (view.seconds ? null : last.times));
    if (!names) return String(index + 1);
    const name = names[index];
    if (name === undefined || name === null) return "";
    if (typeof name === "number" && names !== last.labels) return Number.isFinite(name) ? dateText(name, name % 86400 !== 0) : "";
    const text = DeetingFace.clean(String(name));
    return text.length > MAX_LABEL ? `${text.slice(0, MAX_LABEL - 1)}…` : text;
  }

  function dateText(seconds, withTime) {
    const iso = new Date(seconds * 1000).toISOString();
    return withTime ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : iso.slice(0, 10);
  }

  // On a time axis the crosshair shows the point's label too, when the payload names points.
  function timeLabel(time, withTime) {
    const date = dateText(time, withTime);
    const seconds = view && view.seconds;
    if (!seconds || !view.last || !view.last.labels) return date;
    let low = 0;
    let high = seconds.length - 1;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (seconds[middle] < time) low = middle + 1;
      else high = middle;
    }
    const label = seconds[low] === time ? labelAt(low) : "";
    return label ? `${label} · ${date}` : date;
  }

  function axisOptions(spec, seconds) {
    const spark = spec.kind === "sparkline";
    const unit = spec.unit ? ` ${spec.unit}` : "";
    const withTime = Boolean(seconds && seconds.some((t) => t % 86400 !== 0));
    const timeText = seconds ? (t) => timeLabel(t, withTime) : (t) => labelAt(t);
    return {
      localization: { priceFormatter: (p) => number(p) + unit, timeFormatter: timeText },
      rightPriceScale: { visible: !spark },
      timeScale: {
        visible: !spark,
        timeVisible: withTime,
        secondsVisible: false,
        // On a time axis the library's own marks (days, months, hours) read best.
        tickMarkFormatter: seconds ? () => null : (t) => labelAt(t),
      },
      handleScroll: !spark,
      handleScale: !spark,
      // Said both ways: the chart is reused when the kind changes, and options merge.
      crosshair: { vertLine: { visible: !spark, labelVisible: !spark }, horzLine: { visible: !spark, labelVisible: !spark } },
    };
  }

  // ---- drawing ------------------------------------------------------------------------------

  const SERIES_TYPE = {
    line: "LineSeries",
    sparkline: "LineSeries",
    area: "AreaSeries",
    bar: "HistogramSeries",
    histogram: "HistogramSeries",
    candlestick: "CandlestickSeries",
  };

  // Lightweight Charts joins a line across whitespace (its issue #699), but a point's own
  // colour paints the segment that starts at it: so the last point before a gap draws its
  // segment onward in no colour, and the gap stays a gap. Bars and candles just leave a hole.
  const HIDDEN = {
    line: { color: "transparent" },
    sparkline: { color: "transparent" },
    area: { lineColor: "transparent", topColor: "transparent", bottomColor: "transparent" },
  };

  // A line is drawn between points only: a value between two gaps (or a series' only value)
  // would not show at all. Each such point gets a dot in its series' colour (a series marker).
  // Bars and candles draw every point on its own already.
  const DOTTED = { line: true, sparkline: true, area: true };

  function alone(values, i) {
    return values[i] != null && (i === 0 || values[i - 1] == null) &&
      (i === values.length - 1 || values[i + 1] == null);
  }

  // The dots of series `index` for points `from` onwards (earlier dots stay: a frame that only
  // appends changes nothing before the point it continues, so this costs what it adds).
  function dots(spec, seconds, index, from) {
    const one = view.dots[index];
    if (!one) return;
    const values = spec.series[index].values;
    let changed = false;
    while (one.at.length && one.at[one.at.length - 1] >= from) {
      one.at.pop();
      changed = true;
    }
    for (let i = from; i < values.length; i++) {
      if (alone(values, i)) {
        one.at.push(i);
        changed = true;
      }
    }
    if (changed) showDots(one, seconds, themed(), index);
  }

  // The markers plugin is attached only while a series has dots: attached, it copies the
  // series' whole data on every change (Lightweight Charts 5.3), which would make each
  // appended frame cost as much as the chart's points, and a big chart's first draw slower.
  function showDots(one, seconds, colours, index) {
    if (!one.at.length) {
      if (one.plugin) one.plugin.detach();
      one.plugin = null;
      return;
    }
    const color = colours.series[index % colours.series.length];
    const markers = one.at.map((i) => ({
      time: seconds ? seconds[i] : i, position: "inBar", shape: "circle", color, size: 0.5,
    }));
    if (one.plugin) one.plugin.setMarkers(markers);
    else one.plugin = LWC.createSeriesMarkers(one.series, markers);
  }

  function point(kind, time, value, gapNext) {
    if (value === null || value === undefined) return { time }; // whitespace: a gap
    if (kind === "candlestick") return { time, open: value.open, high: value.high, low: value.low, close: value.close };
    return gapNext && HIDDEN[kind] ? { time, value, ...HIDDEN[kind] } : { time, value };
  }

  // The chart's frame, made as soon as the face loads (hidden until the first payload): the
  // library's first paint, with its canvases, font metrics and cold code, then happens while
  // the card is still being set up instead of on a payload's clock.
  function shell() {
    const root = document.createElement("div");
    root.className = "chart waiting";
    const head = document.createElement("div");
    head.className = "chart-head";
    const plot = document.createElement("div");
    plot.className = "chart-plot";
    const note = document.createElement("div");
    note.className = "chart-note";
    note.hidden = true;
    const legend = document.createElement("ul");
    legend.className = "chart-legend";
    const credit = document.createElement("a");
    credit.className = "chart-credit";
    credit.href = "https://www.tradingview.com/";
    credit.target = "_blank";
    credit.rel = "noopener noreferrer";
    credit.textContent = "Charts by TradingView Lightweight Charts";
    const foot = document.createElement("div");
    foot.className = "chart-foot";
    foot.append(legend, credit);
    root.append(head, plot, note, foot);
    document.body.replaceChildren(root);
    const chart = LWC.createChart(plot, {
      autoSize: true,
      ...chartColours(themed(), false),
      // A long series fits the width (fitContent), points merged below half a pixel.
      timeScale: { minBarSpacing: 0.001, enableConflation: true },
    });
    view = {
      root, head, note, legend, chart,
      series: [],
      dots: [],
      swatches: [],
      kind: null,
      names: [],
      seconds: null,
      last: null,
      unit: null,
      title: null,
    };
  }

  // The series (and legend) for a payload of a new shape: another kind or other series.
  function build(spec) {
    if (!view) shell();
    for (const api of view.series) view.chart.removeSeries(api);
    const colours = themed();
    const spark = spec.kind === "sparkline";
    view.root.className = spark ? "chart sparkline" : "chart";
    view.chart.applyOptions(chartColours(colours, spark));
    const type = LWC[SERIES_TYPE[spec.kind]];
    view.series = spec.series.map((one, index) =>
      view.chart.addSeries(type, {
        ...seriesColours(spec.kind, colours, index),
        priceLineVisible: false,
        lastValueVisible: !spark,
        lineWidth: spark ? 1.5 : 2,
        title: "",
      }),
    );
    view.dots = view.series.map((api) =>
      DOTTED[spec.kind] ? { series: api, plugin: null, at: [] } : null);
    view.legend.replaceChildren();
    view.swatches = spec.series.map((one, index) => {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "chart-swatch";
      swatch.style.backgroundColor = swatchColour(spec.kind, colours, index); // CSSOM: allowed
      const name = document.createElement("span");
      name.textContent = one.name;
      item.append(swatch, name);
      view.legend.append(item);
      return swatch;
    });
    if (spec.more > 0) {
      const item = document.createElement("li");
      item.className = "chart-more";
      item.textContent = `+${spec.more} more series`;
      view.legend.append(item);
    }
    view.kind = spec.kind;
    view.names = spec.series.map((one) => one.name);
    view.last = null;
  }

  function dispose() {
    if (!view) return;
    view.chart.remove();
    view.root.remove();
    view = null;
  }

  function heading(spec) {
    if (view.title === spec.title && view.unit === spec.unit) return;
    const parts = [];
    if (spec.title) {
      const title = document.createElement("span");
      title.className = "chart-title";
      title.textContent = DeetingFace.clean(spec.title);
      parts.push(title);
    }
    if (spec.unit) {
      const unit = document.createElement("span");
      unit.className = "chart-unit";
      unit.textContent = `(${spec.unit})`;
      parts.push(unit);
    }
    view.head.replaceChildren(...parts);
    view.title = spec.title;
    view.unit = spec.unit;
  }

  function setAll(spec, seconds) {
    let any = false;
    spec.series.forEach((one, index) => {
      const values = one.values;
      const data = new Array(values.length);
      for (let i = 0; i < values.length; i++) {
        const value = values[i];
        if (value !== null) any = true;
        data[i] = point(spec.kind, seconds ? seconds[i] : i, value, values[i + 1] === null);
      }
      view.series[index].setData(data);
      dots(spec, seconds, index, 0);
    });
    view.chart.timeScale().fitContent();
    view.note.textContent = any ? "" : "(no values)";
    view.note.hidden = any;
  }

  // How many points of each series the previous frame had, when `spec` only adds points after
  // them; null when it changes anything that was drawn.
  function extension(spec) {
    const last = view.last;
    if (!last || !sameSeries(spec) || spec.unit !== view.unit) return null;
    if (!prefix(last.labels, spec.labels) || !prefix(last.times, spec.times)) return null;
    const candles = spec.kind === "candlestick";
    const start = [];
    for (let s = 0; s < spec.series.length; s++) {
      const before = last.values[s];
      const now = spec.series[s].values;
      if (now.length < before.length) return null;
      for (let i = 0; i < before.length; i++) {
        const a = before[i];
        const b = now[i];
        if (a === b) continue;
        if (!candles || a === null || b === null || typeof b !== "object") return null;
        if (a.open !== b.open || a.high !== b.high || a.low !== b.low || a.close !== b.close) return null;
      }
      start.push(before.length);
    }
    return start;
  }

  function sameSeries(spec) {
    return spec.kind === view.kind && spec.series.length === view.names.length &&
      spec.series.every((one, i) => one.name === view.names[i]);
  }

  // The axis keeps the shape the run's first full draw gave it: on a time axis the new points'
  // times must continue it (else the frame is drawn in full, which decides afresh); on an index
  // axis the times, if any, are labels.
  function moreSeconds(spec) {
    const seconds = view.seconds;
    if (!seconds) return true;
    if (!spec.times || spec.times.length < spec.length) return false;
    for (let i = seconds.length; i < spec.length; i++) {
      const t = toSeconds(spec.times[i]);
      if (t === null || (i > 0 && !(t > seconds[i - 1]))) {
        seconds.length = view.last.length; // drop the part of a run that did not fit
        return false;
      }
      seconds.push(t);
    }
    return true;
  }

  function prefix(before, now) {
    if (!before) return true;
    if (!now || now.length < before.length) return false;
    for (let i = 0; i < before.length; i++) if (before[i] !== now[i]) return false;
    return true;
  }

  function append(spec, seconds, start) {
    // A chart showing all its points keeps showing all of them as points arrive (a stream
    // that starts with two points would otherwise stay zoomed in on the newest two); one the
    // reader has zoomed or scrolled stays where it is.
    const time = view.chart.timeScale();
    const range = time.getVisibleLogicalRange();
    const whole = !range || (range.from <= 0.5 && range.to >= view.last.length - 1.5);
    let any = false;
    spec.series.forEach((one, index) => {
      const values = one.values;
      const api = view.series[index];
      const from = start[index];
      if (from > 0 && from < values.length && values[from] === null && values[from - 1] !== null) {
        // A gap opens after the last point drawn: that point (still the series' last) changes.
        api.update(point(spec.kind, seconds ? seconds[from - 1] : from - 1, values[from - 1], true));
      }
      for (let i = from; i < values.length; i++) {
        if (values[i] !== null) any = true;
        api.update(point(spec.kind, seconds ? seconds[i] : i, values[i], values[i + 1] === null));
      }
      dots(spec, seconds, index, Math.max(0, from - 1)); // the old last point may have a neighbour now
    });
    if (any && !view.note.hidden) {
      view.note.textContent = "";
      view.note.hidden = true;
    }
    if (whole) time.fitContent();
  }

  function remember(spec) {
    view.last = {
      length: spec.length,
      labels: spec.labels,
      times: spec.times,
      values: spec.series.map((one) => one.values),
    };
  }

  shell();
  DeetingFace.register({
    draw(payload) {
      const spec = read(payload);
      // A failure shown by guest.js replaces the page: the chart that was there is gone.
      if (view && !view.root.isConnected) dispose();
      if (!view) shell();
      let start = extension(spec);
      if (start) check(spec, start); // before anything on screen changes
      if (start && !moreSeconds(spec)) start = null;
      if (start) {
        append(spec, view.seconds, start);
        appended += 1;
        document.body.dataset.appended = String(appended);
      } else {
        check(spec, []);
        const seconds = secondsOf(spec.times, spec.length);
        if (!sameSeries(spec)) build(spec);
        view.seconds = seconds;
        remember(spec); // the axis's labels are read from here
        view.chart.applyOptions(axisOptions(spec, seconds));
        setAll(spec, seconds);
      }
      remember(spec);
      heading(spec);
    },
    theme() {
      if (view && view.root.isConnected) applyTheme();
    },
    teardown() {
      dispose();
    },
  });
})();
