// The key-value face: one row per pair, the key bold on the left, the value wrapping on the
// right (stacked under the key on a narrow card). It takes the forms the terminal takes:
// {items: [{key, value}] | {key: value}, title?}, or any object whose keys are the pairs.
// Values: null a dash, booleans a mark, numbers as read, nested data as compact, clipped JSON.
(function () {
  "use strict";

  const MAX_ROWS = 200; // pairs drawn before "… N more items"
  const MAX_VALUE = 2000; // characters of one value
  const MAX_KEY = 200;

  const { el, field, kind } = DeetingFace;

  function cut(text, limit) {
    return text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
  }

  function count(n, noun) {
    return `${n.toLocaleString("en")} ${noun}${n === 1 ? "" : "s"}`;
  }

  // A JSON-able copy small enough for one cell: what is left out is said in place.
  function clip(value, depth, budget) {
    budget.nodes -= 1;
    if (value === null || typeof value !== "object") {
      return typeof value === "string" ? cut(value, 200) : value;
    }
    const list = Array.isArray(value);
    const keys = list ? null : Object.keys(value);
    const size = list ? value.length : keys.length;
    if (depth >= 4 || budget.nodes <= 0) return list ? `[… ${count(size, "item")}]` : `{… ${count(size, "key")}}`;
    // No prototype: a key named "__proto__" is data here, not a way to reparent the copy.
    const out = list ? [] : Object.create(null);
    for (let i = 0; i < size; i += 1) {
      if (i >= 20 || budget.nodes <= 0) {
        if (list) out.push(`… ${size - i} more`);
        else out["…"] = `${size - i} more`;
        break;
      }
      if (list) out.push(clip(value[i], depth + 1, budget));
      else out[keys[i]] = clip(value[keys[i]], depth + 1, budget);
    }
    return out;
  }

  function number(value) {
    if (Number.isNaN(value)) return "NaN";
    if (!Number.isFinite(value)) return value > 0 ? "∞" : "-∞";
    if (Number.isInteger(value)) return String(value);
    return String(Number(value.toPrecision(10))); // no float noise: 0.1 + 0.2 reads 0.3
  }

  function valueNode(value) {
    const node = el("dd", "kv-value");
    if (value === null || value === undefined) {
      node.classList.add("is-null");
      node.textContent = "—";
    } else if (typeof value === "boolean") {
      node.classList.add(value ? "is-true" : "is-false");
      node.textContent = value ? "✓ yes" : "✗ no";
    } else if (typeof value === "number") {
      node.classList.add("is-number");
      node.textContent = number(value);
    } else if (typeof value === "string") {
      node.textContent = DeetingFace.clean(cut(value, MAX_VALUE));
    } else {
      node.classList.add("is-nested");
      node.textContent = DeetingFace.clean(cut(JSON.stringify(clip(value, 0, { nodes: 200 })), MAX_VALUE));
    }
    return node;
  }

  function keyText(key) {
    const text = typeof key === "string" ? key : JSON.stringify(clip(key, 0, { nodes: 20 }));
    return DeetingFace.clean(cut(String(text), MAX_KEY));
  }

  function pairs(items) {
    if (Array.isArray(items)) {
      return items.map((item, index) => {
        if (item === null || typeof item !== "object" || Array.isArray(item) || !("key" in item)) {
          throw new Error(`items/${index}: expected an object with a key, not ${kind(item)}`);
        }
        return [item.key, item.value];
      });
    }
    if (items !== null && typeof items === "object") return Object.entries(items);
    throw new Error(`items: expected a list of {key, value} or an object, not ${kind(items)}`);
  }

  DeetingFace.register({
    draw(payload) {
      if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
        throw new Error(`the 'key-value' renderer expects an object, not ${kind(payload)}`);
      }
      let title = "";
      let list;
      if ("items" in payload) {
        const given = field(payload, "title", "string");
        title = given || "";
        list = pairs(payload.items);
      } else {
        list = Object.entries(payload);
      }
      const root = el("section", "kv");
      if (title) root.append(el("h1", "kv-title", DeetingFace.clean(cut(title, MAX_KEY))));
      if (list.length === 0) {
        root.append(el("p", "kv-empty", "(nothing to show)"));
      } else {
        const dl = el("dl", "kv-list");
        for (const [key, value] of list.slice(0, MAX_ROWS)) {
          const row = el("div", "kv-row");
          row.append(el("dt", "kv-key", keyText(key)), valueNode(value));
          dl.append(row);
        }
        root.append(dl);
      }
      if (list.length > MAX_ROWS) root.append(el("p", "kv-more", `… ${count(list.length - MAX_ROWS, "more item")}`));
      document.body.replaceChildren(root);
    },
  });
})();
