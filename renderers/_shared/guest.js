// The guest side of a browser face: every renderer's document loads this after
// ../../vendor/mcp-app.js and before its own main.js, which calls DeetingFace.register(face).
//
// It speaks the MCP Apps protocol to the host page (ui/initialize, tool-input, tool-result,
// tool-cancelled, size-changed, resource-teardown) through the official App class, so a face
// is an MCP App. A face only draws: draw(payload, info) for each result or stream frame. This
// file counts what was drawn (document.body.dataset.updates, the page contract), follows the
// host's theme, and shows a face's own failure as escaped text instead of a blank card.
(function () {
  "use strict";

  // C0 (but tab and newline), DEL, C1, and the bidi embeddings, overrides and isolates.
  const CONTROLS = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;

  let face = null;
  let app = null;
  let updates = 0;
  const state = { theme: "light", input: null };

  function setTheme(theme) {
    state.theme = theme === "dark" ? "dark" : "light";
    document.documentElement.dataset.theme = state.theme;
    if (face && typeof face.theme === "function") face.theme(state.theme);
  }

  // A face that throws leaves its message here, as text: never markup.
  function showFailure(message) {
    const box = document.createElement("pre");
    box.className = "face-failure";
    box.textContent = message;
    document.body.replaceChildren(box);
  }

  function textOf(result) {
    const parts = [];
    for (const block of result.content || []) {
      if (block && block.type === "text" && typeof block.text === "string") parts.push(block.text);
    }
    return parts.join("\n");
  }

  // The host wraps a payload that is not a JSON object (MCP's structuredContent must be one).
  function payloadOf(result) {
    const meta = result._meta || {};
    const data = result.structuredContent;
    return meta["deeting/wrapped"] && data ? data.value : data;
  }

  function draw(result) {
    const meta = result._meta || {};
    const info = {
      card: meta["deeting/card"] || null,
      renderer: meta["deeting/renderer"] || document.body.dataset.renderer || null,
      frame: typeof meta["deeting/frame"] === "number" ? meta["deeting/frame"] : updates + 1,
      stream: meta["deeting/stream"] || null,
      isError: Boolean(result.isError),
      text: textOf(result),
      input: state.input,
      theme: state.theme,
    };
    try {
      face.draw(payloadOf(result), info);
    } catch (err) {
      showFailure(`This card could not be drawn: ${err && err.message ? err.message : err}`);
    }
    updates += 1;
    document.body.dataset.updates = String(updates);
  }

  function connect() {
    const { App, PostMessageTransport } = window.McpApp;
    const name = `deeting-${document.body.dataset.renderer || "face"}`;
    app = new App({ name, version: "1.0.0" }, {}, { autoResize: true });
    app.ontoolinput = (params) => {
      state.input = params && params.arguments ? params.arguments : null;
    };
    app.ontoolresult = (params) => draw(params || {});
    app.ontoolcancelled = (params) => {
      if (typeof face.cancelled === "function") face.cancelled(params || {});
      document.body.dataset.cancelled = "true";
    };
    app.onhostcontextchanged = (context) => {
      if (context && context.theme) setTheme(context.theme);
    };
    app.onteardown = async () => {
      if (typeof face.teardown === "function") face.teardown();
      return {};
    };
    // A sandboxed card may not open windows itself (no allow-popups): a link the reader
    // follows is asked of the host (MCP Apps ui/open-link), which opens http(s) and mailto
    // only, in a new tab with no opener. Faces still draw real <a href> for copy and hover.
    const follow = (event) => {
      const link = event.target instanceof Element ? event.target.closest("a[href]") : null;
      if (!link) return;
      event.preventDefault();
      if (event.type === "auxclick" && event.button !== 1) return;
      app.openLink({ url: link.href }).catch(() => {});
    };
    document.addEventListener("click", follow);
    document.addEventListener("auxclick", follow);
    const transport = new PostMessageTransport(window.parent, window.parent);
    app.connect(transport).then(() => {
      const context = app.getHostContext();
      if (context && context.theme) setTheme(context.theme);
    });
  }

  function kind(value) {
    if (value === null || value === undefined) return "null";
    if (Array.isArray(value)) return "a list";
    if (typeof value === "object") return "an object";
    if (typeof value === "number") return "a number";
    if (typeof value === "boolean") return "a boolean";
    return `a ${typeof value}`;
  }

  // The types DeetingFace.field checks: [test, the words an error uses for it].
  const FIELD_TYPES = {
    string: [(v) => typeof v === "string", "a string"],
    number: [(v) => typeof v === "number" && Number.isFinite(v), "a number"],
    integer: [(v) => Number.isInteger(v), "an integer"],
    object: [(v) => typeof v === "object" && !Array.isArray(v), "an object"],
    list: [Array.isArray, "a list"],
    numberOrString: [(v) => typeof v === "string" || (typeof v === "number" && Number.isFinite(v)), "a number or a string"],
  };

  window.DeetingFace = {
    // face: { draw(payload, info), theme?(name), cancelled?(params), teardown?() }
    register(candidate) {
      if (face) throw new Error("DeetingFace.register: a face is already registered");
      face = candidate;
      document.body.dataset.updates = "0";
      setTheme(window.matchMedia && matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
      if (window.parent !== window) {
        connect();
      } else {
        // Opened on its own (a face's own tests): drawn by hand, no tunnel.
        window.DeetingFace.drawForTest = (payload, theme) => {
          if (theme) setTheme(theme);
          const wrapped = payload === null || typeof payload !== "object" || Array.isArray(payload);
          draw({
            structuredContent: wrapped ? { value: payload } : payload,
            _meta: { "deeting/wrapped": wrapped },
          });
        };
      }
    },
    get theme() {
      return state.theme;
    },
    // Plugin text as a face shows it: control and bidi-override characters become U+FFFD, as
    // in the terminal, so a string can't reorder or hide what is around it. Newlines and tabs
    // stay. Always put the result in textContent, never in markup.
    clean(text) {
      return String(text).replace(CONTROLS, "\uFFFD");
    },
    // A new element with a class and, when given, text (textContent: never markup), the
    // helper every face builds its DOM with.
    el(tag, className, text) {
      const node = document.createElement(tag);
      if (className) node.className = className;
      if (text !== undefined) node.textContent = text;
      return node;
    },
    // A value's JSON type in words, for the sentence that fails a card on a plugin's mistake
    // ("title: expected a string, not a list"); an absent value reads as null.
    kind,
    // data[key] checked against one of FIELD_TYPES: null when absent or null (or the error
    // "WHEREKEY: missing" when required), the value when it fits, else the error "WHEREKEY:
    // expected TYPE, not KIND". where is the path to data, e.g. "daily/0/", so a plugin
    // author reads which value was wrong (as the terminal face says it).
    field(data, key, type, where = "", required = false) {
      const value = data[key];
      if (value === null || value === undefined) {
        if (required) throw new Error(`${where}${key}: missing`);
        return null;
      }
      const [check, expected] = FIELD_TYPES[type];
      if (!check(value)) throw new Error(`${where}${key}: expected ${expected}, not ${kind(value)}`);
      return value;
    },
  };
})();
