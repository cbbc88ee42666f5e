// The table face: rows under sortable column headings, virtualised so that 10,000 rows scroll
// and sort without jank. Only the rows in view (plus a margin) exist in the DOM, each of one
// fixed height; two spacer rows stand in for the rest, so the scrollbar is true to the data.
// A stream frame replaces the data in place: the sort and the scroll position stay.
(function () {
  "use strict";

  const MAX_COLUMNS = 100; // past this a table is not readable; the note says what was left out
  const MAX_ROWS = 500000; // the scroll height stays below what browsers can lay out
  const MARGIN = 12; // rows drawn above and below the visible ones, so a fling shows no gap
  const CELL_TEXT = 500; // characters drawn in a cell (CSS ellipsises what does not fit)
  const CELL_TITLE = 4000; // characters of the full text in the cell's tooltip
  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  const clean = (text) => DeetingFace.clean(text);

  // Everything the face keeps between frames.
  const state = {
    root: null, title: null, count: null, scroller: null, table: null, colgroup: null,
    headRow: null, body: null, top: null, bottom: null, caption: null, note: null,
    columns: [], numeric: [], rows: [], order: [], shown: [],
    sort: null, // {position, name, dir: "ascending" | "descending"}
    pool: [], rowHeight: 0, first: -1, last: -1, version: 0, frame: 0,
  };

  const { field, kind } = DeetingFace;

  function own(row, key) {
    return Object.prototype.hasOwnProperty.call(row, key) ? row[key] : undefined;
  }

  // Column names: the given ones, then any key or position the rows have beyond them, so no
  // cell is silently dropped.
  function columnsOf(given, rows) {
    const names = (given || []).map((name) =>
      name === null || name === undefined ? "" : typeof name === "string" ? name : JSON.stringify(name));
    const seen = new Set(names);
    for (const row of rows) {
      if (names.length >= MAX_COLUMNS + 1) break;
      if (Array.isArray(row)) {
        while (names.length < row.length && names.length <= MAX_COLUMNS) names.push("");
      } else {
        for (const key of Object.keys(row)) {
          if (!seen.has(key)) { seen.add(key); names.push(key); }
        }
      }
    }
    return names;
  }

  function rawCell(row, position, name) {
    if (Array.isArray(row)) return position < row.length ? row[position] : undefined;
    return own(row, name);
  }

  function formatNumber(value) {
    if (!Number.isFinite(value)) return String(value);
    if (Number.isInteger(value)) return Math.abs(value) < 1e21 ? String(value) : value.toExponential(3);
    return String(Number(value.toPrecision(10)));
  }

  // Nested values on one line, stopping once `limit` characters are written (a huge object in a
  // cell costs no more than what can be shown).
  function compact(value, limit) {
    let out = "";
    function walk(item, depth) {
      if (out.length > limit) return;
      if (item === null || typeof item !== "object") {
        out += typeof item === "string" ? JSON.stringify(item.slice(0, limit)) : String(item);
      } else if (depth > 8) {
        out += Array.isArray(item) ? "[…]" : "{…}";
      } else if (Array.isArray(item)) {
        out += "[";
        item.forEach((each, i) => { if (out.length <= limit) { out += i ? ", " : ""; walk(each, depth + 1); } });
        out += "]";
      } else {
        out += "{";
        Object.keys(item).forEach((key, i) => {
          if (out.length <= limit) { out += `${i ? ", " : ""}${JSON.stringify(key)}: `; walk(item[key], depth + 1); }
        });
        out += "}";
      }
    }
    walk(value, 0);
    return out.length > limit ? out.slice(0, limit - 1) + "…" : out;
  }

  // A cell as drawn: [text, tooltip, class]. Computed when a row first comes into view.
  function display(value) {
    if (value === undefined) return ["", "", ""];
    if (value === null) return ["—", "null", "is-null"];
    if (value === true) return ["✓", "true", "is-true"];
    if (value === false) return ["✗", "false", "is-false"];
    if (typeof value === "number") { const text = formatNumber(value); return [text, text, ""]; }
    if (typeof value === "string") {
      const text = clean(value.length > CELL_TEXT ? value.slice(0, CELL_TEXT - 1) + "…" : value);
      const title = clean(value.length > CELL_TITLE ? value.slice(0, CELL_TITLE - 1) + "…" : value);
      return [text.replace(/[\n\t]+/g, " "), title, ""];
    }
    const json = clean(compact(value, CELL_TITLE));
    return [json.length > CELL_TEXT ? json.slice(0, CELL_TEXT - 1) + "…" : json, json, "is-json"];
  }

  // Sort keys: numbers, then strings, then booleans, then nested values; empty cells always last.
  function rank(value) {
    if (value === null || value === undefined) return 4;
    if (typeof value === "number") return 0;
    if (typeof value === "string") return 1;
    if (typeof value === "boolean") return 2;
    return 3;
  }

  function applySort() {
    const n = state.rows.length;
    const order = new Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    // The sorted column by position (names may repeat, e.g. unnamed ones), or by name when a new
    // frame moved it.
    let position = -1;
    if (state.sort) {
      position = state.columns[state.sort.position] === state.sort.name
        ? state.sort.position : state.columns.indexOf(state.sort.name);
      if (position >= 0) state.sort.position = position;
    }
    if (position >= 0) {
      const name = state.columns[position];
      const ranks = new Uint8Array(n);
      const keys = new Array(n);
      for (let i = 0; i < n; i++) {
        const value = rawCell(state.rows[i], position, name);
        ranks[i] = rank(value);
        keys[i] = ranks[i] === 3 ? compact(value, 200) : value;
      }
      const sign = state.sort.dir === "descending" ? -1 : 1;
      order.sort((a, b) => {
        const ra = ranks[a], rb = ranks[b];
        if (ra === 4 || rb === 4) return ra === rb ? a - b : ra === 4 ? 1 : -1; // empties last
        let c = ra - rb;
        if (c === 0) {
          const ka = keys[a], kb = keys[b];
          if (ra === 0 || ra === 2) c = ka < kb ? -1 : ka > kb ? 1 : 0;
          else c = collator.compare(ka, kb);
        }
        return c !== 0 ? c * sign : a - b; // stable: equal rows keep their order
      });
    } else {
      state.sort = null;
    }
    state.order = order;
    state.version += 1;
    state.first = state.last = -1;
  }

  function headerCells() {
    const cells = [];
    state.columns.forEach((name, position) => {
      const th = document.createElement("th");
      th.scope = "col";
      if (state.numeric[position]) th.className = "num";
      const button = document.createElement("button");
      button.type = "button";
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = clean(name.slice(0, 200));
      button.title = label.textContent;
      if (!name) button.setAttribute("aria-label", `column ${position + 1}`);
      const arrow = document.createElement("span");
      arrow.className = "arrow";
      arrow.setAttribute("aria-hidden", "true");
      button.append(label, arrow);
      button.addEventListener("click", () => sortBy(position));
      th.append(button);
      cells.push(th);
    });
    return cells;
  }

  function markSort() {
    const ths = state.headRow.children;
    state.columns.forEach((name, position) => {
      const on = state.sort && state.sort.position === position;
      ths[position].setAttribute("aria-sort", on ? state.sort.dir : "none");
      ths[position].querySelector(".arrow").textContent = on ? (state.sort.dir === "ascending" ? "▲" : "▼") : "";
    });
  }

  // Click once: ascending; twice: descending; a third time: the plugin's own order.
  function sortBy(position) {
    const name = state.columns[position];
    const current = state.sort && state.sort.position === position ? state.sort.dir : null;
    const dir = current === null ? "ascending" : current === "ascending" ? "descending" : null;
    state.sort = dir ? { position, name, dir } : null;
    applySort();
    markSort();
    renderWindow();
  }

  // Column widths from the header and a sample of cells, so the layout never shifts as rows
  // scroll in and out (the table's layout is fixed). No column is wider than most of the view, so
  // on a phone the next column still peeks in and says "scroll sideways".
  function sizeColumns() {
    const sample = Math.min(state.rows.length, 300);
    const widths = state.columns.map((name, position) => {
      let chars = Math.min(name.length, 24) + 4; // bold text and the sort arrow
      for (let i = 0; i < sample; i++) {
        const value = rawCell(state.rows[i], position, name);
        const size = typeof value === "string" ? value.length : value === null || value === undefined ? 1
          : typeof value === "object" ? 24 : String(value).length;
        if (size > chars) chars = size;
      }
      return `min(calc(${Math.max(4, Math.min(chars, 40))}ch + 24px), 62vw)`;
    });
    state.colgroup.replaceChildren(...widths.map((width) => {
      const col = document.createElement("col");
      col.style.width = width;
      return col;
    }));
    state.table.style.width = widths.length ? `max(100%, calc(${widths.join(" + ")}))` : "100%";
  }

  function makeRow() {
    const tr = document.createElement("tr");
    for (let i = 0; i < state.columns.length; i++) {
      const td = document.createElement("td");
      if (state.numeric[i]) td.className = "num";
      tr.append(td);
    }
    return tr;
  }

  function fill(tr, index) {
    const key = `${state.version}:${index}`;
    if (tr.dataset.key === key) return;
    tr.dataset.key = key;
    const rowIndex = state.order[index];
    let cells = state.shown[rowIndex];
    if (!cells) {
      const row = state.rows[rowIndex];
      cells = state.shown[rowIndex] = state.columns.map((name, position) => display(rawCell(row, position, name)));
    }
    tr.setAttribute("aria-rowindex", String(index + 2));
    tr.classList.toggle("odd", index % 2 === 1);
    const tds = tr.children;
    for (let i = 0; i < cells.length; i++) {
      const [text, title, cls] = cells[i];
      const td = tds[i];
      td.textContent = text;
      if (title) td.title = title; else td.removeAttribute("title");
      td.className = state.numeric[i] ? (cls ? `num ${cls}` : "num") : cls;
    }
  }

  // Draw the rows in view. Cheap when nothing changed; reuses its <tr> elements otherwise.
  function renderWindow() {
    const n = state.order.length;
    const height = state.rowHeight || 33;
    const view = state.scroller.clientHeight || 480;
    const top = state.scroller.scrollTop;
    const first = Math.max(0, Math.floor(top / height) - MARGIN);
    const last = Math.min(n, Math.ceil((top + view) / height) + MARGIN);
    if (first === state.first && last === state.last) return;
    state.first = first;
    state.last = last;
    const count = last - first;
    while (state.pool.length < count) state.pool.push(makeRow());
    const rows = state.pool.slice(0, count);
    rows.forEach((tr, k) => fill(tr, first + k));
    state.top.style.height = `${first * height}px`;
    state.bottom.style.height = `${(n - last) * height}px`;
    // The same <tr>s stay in place while the window only moves (the common case when scrolling):
    // re-inserting them would cost a style and layout pass over every row.
    const body = state.body;
    if (body.childElementCount !== count + 2 || body.firstChild !== state.top || body.children[count] !== rows[count - 1]) {
      body.replaceChildren(state.top, ...rows, state.bottom);
    }
    if (!state.rowHeight && rows.length) {
      // The real height of a row (font, zoom): measured once, then the spacers follow it.
      const measured = rows[0].getBoundingClientRect().height;
      if (measured > 0) { state.rowHeight = measured; state.first = state.last = -1; renderWindow(); }
    }
  }

  let pending = false;
  function onScroll() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; renderWindow(); });
  }

  function build() {
    const root = document.createElement("section");
    root.className = "tbl";
    const head = document.createElement("header");
    head.className = "tbl-head";
    state.title = document.createElement("h1");
    state.title.className = "tbl-title";
    state.count = document.createElement("span");
    state.count.className = "tbl-count";
    head.append(state.title, state.count);
    state.scroller = document.createElement("div");
    state.scroller.className = "tbl-scroll";
    state.scroller.tabIndex = 0;
    state.scroller.addEventListener("scroll", onScroll, { passive: true });
    state.table = document.createElement("table");
    state.table.className = "tbl-grid";
    state.colgroup = document.createElement("colgroup");
    const thead = document.createElement("thead");
    state.headRow = document.createElement("tr");
    state.headRow.setAttribute("aria-rowindex", "1");
    thead.append(state.headRow);
    state.body = document.createElement("tbody");
    state.top = document.createElement("tr");
    state.bottom = document.createElement("tr");
    for (const spacer of [state.top, state.bottom]) {
      spacer.className = "spacer";
      spacer.setAttribute("aria-hidden", "true");
    }
    state.table.append(state.colgroup, thead, state.body);
    state.scroller.append(state.table);
    state.caption = document.createElement("p");
    state.caption.className = "tbl-caption";
    state.note = document.createElement("p");
    state.note.className = "tbl-note";
    root.append(head, state.scroller, state.caption, state.note);
    state.root = root;
    // A new skeleton (first frame, or after a failure replaced the page): nothing is drawn yet.
    state.columns = [];
    state.pool = [];
    state.first = state.last = -1;
    document.body.replaceChildren(root);
  }

  function setText(element, text) {
    element.textContent = text;
    element.hidden = !text;
  }

  DeetingFace.register({
    draw(payload) {
      if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
        throw new Error(`the 'table' renderer expects an object, not ${kind(payload)}`);
      }
      const rows = payload.rows;
      if (!Array.isArray(rows)) throw new Error(rows === undefined || rows === null ? "rows: missing" : `rows: expected a list, not ${kind(rows)}`);
      const title = field(payload, "title", "string");
      const caption = field(payload, "caption", "string");
      const given = field(payload, "columns", "list");
      const kept = rows.length > MAX_ROWS ? rows.slice(0, MAX_ROWS) : rows;
      kept.forEach((row, index) => {
        if (row === null || typeof row !== "object") {
          throw new Error(`rows/${index}: expected a list or an object, not ${kind(row)}`);
        }
      });
      const found = columnsOf(given, kept);
      const all = found.length ? found : [""]; // rows of nothing: still one (empty) column
      const columns = all.slice(0, MAX_COLUMNS);

      if (!state.root || !state.root.isConnected) build();
      const sameColumns = columns.length === state.columns.length && columns.every((c, i) => c === state.columns[i]);
      state.columns = columns;
      state.rows = kept;
      state.shown = new Array(kept.length);
      state.numeric = columns.map((name, position) => {
        let any = false;
        for (const row of kept) {
          const value = rawCell(row, position, name);
          if (typeof value === "number") any = true;
          else if (value !== null && value !== undefined) return false;
        }
        return any;
      });
      setText(state.title, title ? clean(title.slice(0, 300)) : "");
      state.title.title = state.title.textContent; // the whole title, when the line cuts it
      setText(state.count, `${kept.length.toLocaleString("en-US")} ${kept.length === 1 ? "row" : "rows"}`);
      setText(state.caption, caption ? clean(caption.slice(0, 1000)) : "");
      const left = [];
      if (rows.length > kept.length) left.push(`${(rows.length - kept.length).toLocaleString("en-US")} more rows not shown`);
      if (all.length > columns.length) left.push(`${all.length - columns.length}+ more columns not shown`);
      setText(state.note, left.length ? `… ${left.join(" · ")}` : "");
      state.table.setAttribute("aria-rowcount", String(kept.length + 1));
      state.table.setAttribute("aria-colcount", String(columns.length));
      state.table.classList.toggle("empty", kept.length === 0);

      if (!sameColumns) {
        state.headRow.replaceChildren(...headerCells());
        state.pool = [];
        const span = String(Math.max(1, columns.length));
        for (const spacer of [state.top, state.bottom]) {
          const td = document.createElement("td");
          td.colSpan = Number(span);
          spacer.replaceChildren(td);
        }
      }
      sizeColumns();
      applySort();
      markSort();
      // Numeric alignment may change with the data even when the names did not.
      state.headRow.childNodes.forEach((th, i) => th.classList.toggle("num", state.numeric[i]));
      state.pool.forEach((tr) => tr.childNodes.forEach((td, i) => td.classList.toggle("num", state.numeric[i])));
      state.body.hidden = false;
      if (!kept.length) {
        state.body.replaceChildren();
        const tr = document.createElement("tr");
        const td = document.createElement("td");
        td.className = "tbl-empty";
        td.colSpan = Math.max(1, columns.length);
        td.textContent = "No rows";
        tr.append(td);
        state.body.append(tr);
        state.first = state.last = -1;
        return;
      }
      renderWindow(); // the scroller is the same element: its scroll position is kept
    },
  });
})();
