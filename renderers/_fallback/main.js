// The view of last resort: any payload, for a renderer with no browser face of its own, as a
// collapsible JSON tree (native <details>, so folding needs no script). It must work for
// anything, so it draws within a budget: so many levels, items per container, values in all
// and characters per string; what it leaves out is said in place ("… 950 more items").
(function () {
  "use strict";

  const MAX_DEPTH = 12; // levels drawn; deeper containers show their size only
  const MAX_ITEMS = 100; // entries per object or list
  const MAX_NODES = 2000; // values in all
  const MAX_STRING = 2000; // characters per string
  const OPEN_LEVELS = 2; // levels unfolded at first

  const { el } = DeetingFace;

  function count(n, noun) {
    return `${n.toLocaleString("en")} ${noun}${n === 1 ? "" : "s"}`;
  }

  function quoted(text) {
    const shown = text.length > MAX_STRING ? `${text.slice(0, MAX_STRING - 1)}…` : text;
    return JSON.stringify(DeetingFace.clean(shown));
  }

  // The renderer this face stands in for: the host says so; opened on its own, the folder
  // it was served from does (the server serves these files for a renderer without a face).
  function rendererName(info) {
    const named = info && info.renderer;
    if (named && named !== "_fallback") return named;
    const parts = location.pathname.split("/");
    const folder = parts.length >= 2 ? decodeURIComponent(parts[parts.length - 2]) : "";
    return folder && folder !== "_fallback" ? folder : "";
  }

  function scalar(value) {
    if (value === null) return el("span", "j-null", "null");
    switch (typeof value) {
      case "string":
        return el("span", "j-string", quoted(value));
      case "number":
        return el("span", "j-number", String(value));
      case "boolean":
        return el("span", "j-bool", String(value));
      default:
        return el("span", "j-null", DeetingFace.clean(String(value)));
    }
  }

  function more(n, noun) {
    return el("li", "j-more", `… ${count(n, noun)}`);
  }

  // One value as a node; containers fold. budget.nodes counts down across the whole tree.
  function tree(value, depth, budget) {
    budget.nodes -= 1;
    if (value === null || typeof value !== "object") return scalar(value);
    const list = Array.isArray(value);
    const keys = list ? null : Object.keys(value);
    const size = list ? value.length : keys.length;
    const [open, close] = list ? ["[", "]"] : ["{", "}"];
    const sizeText = count(size, list ? "item" : "key");
    if (size === 0) return el("span", "j-punct", open + close);
    if (depth >= MAX_DEPTH || budget.nodes <= 0) {
      return el("span", "j-more", `${open}… ${sizeText}${close}`);
    }
    const box = el("details", "j-node");
    box.open = depth < OPEN_LEVELS;
    const summary = el("summary", "j-summary");
    // Folded, the summary reads "{ 3 keys }"; unfolded, the closing bracket ends the body.
    summary.append(el("span", "j-punct", open), el("span", "j-size", sizeText), el("span", "j-punct j-fold", close));
    const body = el("ul", "j-body");
    if (list && value.every((item) => item === null || typeof item !== "object")) {
      // Scalars flow along lines, "1, 2, 3", as the terminal packs them: not one per line.
      const line = el("li", "j-entry j-flow");
      const shown = Math.min(size, MAX_ITEMS, Math.max(1, budget.nodes));
      for (let i = 0; i < shown; i += 1) {
        budget.nodes -= 1;
        if (i > 0) line.append(el("span", "j-punct", ", "));
        line.append(scalar(value[i]));
      }
      body.append(line);
      if (shown < size) body.append(more(size - shown, "more item"));
      box.append(summary, body, el("span", "j-punct j-close", close));
      return box;
    }
    for (let i = 0; i < size; i += 1) {
      if (i >= MAX_ITEMS || budget.nodes <= 0) {
        body.append(more(size - i, list ? "more item" : "more key"));
        break;
      }
      const item = el("li", "j-entry");
      if (list) {
        item.append(tree(value[i], depth + 1, budget));
      } else {
        item.append(el("span", "j-key", quoted(keys[i])), el("span", "j-punct", ": "));
        item.append(tree(value[keys[i]], depth + 1, budget));
      }
      body.append(item);
    }
    box.append(summary, body, el("span", "j-punct j-close", close));
    return box;
  }

  DeetingFace.register({
    draw(payload, info) {
      const root = el("section", "fallback");
      const name = rendererName(info);
      const note = el("p", "fallback-note");
      note.textContent = name
        ? `No browser face for '${DeetingFace.clean(name.slice(0, 64))}' here; the raw data:`
        : "The raw data:";
      root.append(note);
      const view = el("div", "fallback-json");
      if (typeof payload === "string") {
        view.classList.add("is-text");
        const shown = payload.length > 20000 ? `${payload.slice(0, 19999)}…` : payload;
        view.textContent = payload.trim() ? DeetingFace.clean(shown) : "(empty)";
      } else {
        view.append(tree(payload === undefined ? null : payload, 0, { nodes: MAX_NODES }));
      }
      root.append(view);
      document.body.replaceChildren(root);
    },
  });
})();
