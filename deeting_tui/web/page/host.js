// The host page: a session's cards, newest first, live from the server's event stream.
//
// Each card is a renderer's face in <iframe sandbox="allow-scripts"> (an opaque origin: it
// can reach neither this page nor the server), spoken to with the MCP Apps protocol through
// the official AppBridge over a PostMessageTransport bound to that iframe's window, which
// ignores messages from any other window. This page only ever puts plugin strings into
// textContent; the faces draw the data.
//
// Event stream (GET events, one JSON op per message):
//   {op:"reset", session:{id,title}, theme, cards:[CARD…] (oldest first), older:N}
//   {op:"card", card:CARD}            a new card, or a replacement of the card with that id
//   {op:"result", id, result}         a further result (a stream's next frame)
//   {op:"cancelled", id, reason}      the call was cancelled
//   {op:"theme", theme}               "light" | "dark" | null (null: the system's)
// CARD = {id, kind, renderer, title, plugin, tool, ts, input, result (null: running), frames,
//         cancelled? (the reason), app? (an mcp-app card: the path of its app's document)}
//
// An mcp-app card is an MCP server's own app (docs/browser.md#mcp-app-cards): its iframe
// loads the app's document (/app/NONCE, under a CSP that lets it reach nothing), is sent the
// server's own CallToolResult, and has every request it makes toward the server refused:
// it is display-only. The app's document is not ours, so the host counts the results it
// delivered on the iframe (data-updates) where a core face counts on its own body.
(function () {
  "use strict";

  const { AppBridge, PostMessageTransport } = window.McpHost;
  const MAX_CARDS = 200;
  const MIN_HEIGHT = 32;
  const MAX_HEIGHT = 4000;
  const TEARDOWN_WAIT_MS = 500;
  // The newest cards get their iframe at once, wherever they are on the page (what a reader
  // or a test asks for first); older ones only as they scroll near (see nearby).
  const EAGER_CARDS = 24;
  const APP = "mcp-app";
  const DISPLAY_ONLY =
    "this app is display-only in Deeting: its requests to the server or the chat are not routed (yet)";

  const only = new URLSearchParams(location.search).get("card");
  const list = document.getElementById("cards");
  const olderLine = document.getElementById("older");
  const emptyLine = document.getElementById("empty");
  const status = document.getElementById("status");
  const titleLine = document.getElementById("title");
  const dark = window.matchMedia ? matchMedia("(prefers-color-scheme: dark)") : null;

  let serverTheme = null;
  let older = 0;
  const views = new Map(); // card id -> view

  function theme() {
    if (serverTheme === "light" || serverTheme === "dark") return serverTheme;
    return dark && dark.matches ? "dark" : "light";
  }

  function applyTheme() {
    const name = theme();
    document.documentElement.dataset.theme = name;
    for (const view of views.values()) {
      if (view.ready) view.bridge.setHostContext({ theme: name });
    }
  }

  // C0 (but tab and newline), DEL, C1, and the bidi embeddings, overrides and isolates: as
  // guest.js's DeetingFace.clean, so a plugin's title can't reorder or hide what is around it.
  const CONTROLS = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;

  function clean(value) {
    return value == null ? "" : String(value).replace(CONTROLS, "\uFFFD");
  }

  function text(tag, className, value) {
    const node = document.createElement(tag);
    node.className = className;
    node.textContent = clean(value);
    return node;
  }

  function timeOf(ts) {
    if (typeof ts !== "number" || !ts) return "";
    return new Date(ts * 1000).toLocaleTimeString();
  }

  function wanted(card) {
    return only === null || card.id === only;
  }

  // -- one card ------------------------------------------------------------------------------

  function makeView(card, eager) {
    const el = document.createElement("article");
    el.className = "card";
    el.dataset.card = card.id;
    const head = document.createElement("div");
    head.className = "card-head";
    head.append(
      text("span", "card-title", card.title || card.tool || card.id),
      text("span", "card-plugin", card.plugin || ""),
      text("time", "card-time", timeOf(card.ts)),
    );
    const state = text("div", "card-state", "");
    // The iframe's place, until the card comes near the viewport (see mount).
    const slot = document.createElement("div");
    slot.className = "card-slot";
    el.append(head, state, slot);
    const near = only !== null || eager;
    const view = { card, el, state, slot, iframe: null, near, bridge: null };
    Object.assign(view, { ready: false, sent: 0 });
    showState(view);
    if (!view.near) nearby.observe(el);
    return view;
  }

  // An iframe costs a browsing context (milliseconds each): a page of 200 cards makes one
  // for its newest cards and for the others near the viewport, as they scroll into reach.
  const nearby = new IntersectionObserver(
    (entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        nearby.unobserve(entry.target);
        const view = views.get(entry.target.dataset.card);
        if (!view || view.el !== entry.target) continue;
        view.near = true;
        mount(view);
      }
    },
    { rootMargin: "800px 0px" },
  );

  // Makes the iframe, connects its bridge and loads the face: once the card is near the
  // viewport and has something to draw (a running call costs no iframe).
  function mount(view) {
    if (view.bridge || !view.near || view.card.result === null) return;
    const { card } = view;
    const iframe = document.createElement("iframe");
    iframe.setAttribute("sandbox", "allow-scripts");
    iframe.setAttribute("referrerpolicy", "no-referrer");
    const app = isApp(card);
    iframe.dataset.renderer = card.renderer;
    iframe.dataset.card = card.id;
    iframe.title = clean(`${card.title || card.id} (${card.renderer})`);
    view.slot.replaceWith(iframe);
    view.iframe = iframe;
    const bridge = new AppBridge(
      null,
      { name: "deeting", version: "1.0.0" },
      { openLinks: {} },
      { hostContext: { theme: theme(), containerDimensions: { maxHeight: MAX_HEIGHT } } },
    );
    view.bridge = bridge;
    bridge.oninitialized = () => {
      view.ready = true;
      const input = view.card.input && view.card.input.arguments ? view.card.input.arguments : {};
      bridge.sendToolInput({ arguments: input });
      deliver(view);
      if (view.card.cancelled) bridge.sendToolCancelled({ reason: String(view.card.cancelled) });
    };
    bridge.onsizechange = (params) => {
      const height = Number(params && params.height);
      if (!Number.isFinite(height)) return;
      iframe.style.height = `${Math.round(Math.min(MAX_HEIGHT, Math.max(MIN_HEIGHT, height)))}px`;
    };
    if (app) refuseRequests(bridge);
    // Links a face asks to open (search results, Markdown): http(s) and mailto only, in a new
    // tab with no opener and no referrer (the token is in this page's path).
    if (!app) bridge.onopenlink = async (params) => {
      let url;
      try {
        url = new URL(String(params && params.url));
      } catch (err) {
        return { isError: true };
      }
      if (!["http:", "https:", "mailto:"].includes(url.protocol)) return { isError: true };
      window.open(url.href, "_blank", "noopener,noreferrer");
      return {};
    };
    // The transport only hears messages whose source is this iframe's window.
    const transport = new PostMessageTransport(iframe.contentWindow, iframe.contentWindow);
    bridge.connect(transport).catch(() => {});
    iframe.src = app
      ? card.app
      : `renderers/${encodeURIComponent(app === null ? "_fallback" : view.card.renderer)}/index.html`;
  }

  // true: an MCP server's app with its document; null: an mcp-app card without one (drawn
  // by the fallback face); false: any other card.
  function isApp(card) {
    if (card.renderer !== APP) return false;
    return typeof card.app === "string" && /^\/app\/[A-Za-z0-9_-]+$/.test(card.app) ? true : null;
  }

  // An app may ask the host for what MCP Apps offers (call a tool, read a resource, send the
  // chat a message, open a link, …): each is answered with a JSON-RPC error for now.
  function refuseRequests(bridge) {
    const refuse = async () => {
      throw new Error(DISPLAY_ONLY);
    };
    for (const name of [
      "oncalltool",
      "onreadresource",
      "onlistresources",
      "onlistresourcetemplates",
      "onlistprompts",
      "oncreatesamplingmessage",
      "onmessage",
      "onupdatemodelcontext",
      "onopenlink",
      "ondownloadfile",
      "onrequestdisplaymode",
    ]) {
      if (name in bridge) bridge[name] = refuse;
    }
  }

  // What a card's face is sent: the card's result, or, for an app, the server's own result.
  function resultFor(card) {
    if (isApp(card) !== true) return card.result;
    const payload = card.result.structuredContent || {};
    const own = payload.result && typeof payload.result === "object" ? payload.result : {};
    const content = Array.isArray(own.content) ? own.content : [];
    const result = { content, isError: false, _meta: Object.assign({}, card.result._meta) };
    if (own.structuredContent !== undefined) result.structuredContent = own.structuredContent;
    return result;
  }

  // Sends the card's latest result if the face has not drawn it yet.
  function deliver(view) {
    const { card } = view;
    if (!view.ready || card.result === null || view.sent === card.frames) return;
    view.sent = card.frames;
    const sent = view.bridge.sendToolResult(resultFor(card));
    if (isApp(card) === true) {
      Promise.resolve(sent)
        .then(() => {
          const iframe = view.iframe;
          if (iframe) iframe.dataset.updates = String(Number(iframe.dataset.updates || 0) + 1);
        })
        .catch(() => {});
    }
  }

  function showState(view) {
    const { card, state, iframe, slot } = view;
    let words = "";
    if (card.cancelled) words = clean(`cancelled: ${card.cancelled}`);
    else if (card.result === null) words = "running…";
    state.textContent = words;
    state.hidden = words === "";
    state.classList.toggle("cancelled", Boolean(card.cancelled));
    if (iframe) iframe.hidden = card.result === null;
    slot.hidden = card.result === null;
  }

  function update(view, card) {
    view.card = card;
    showState(view);
    mount(view);
    deliver(view);
  }

  // A removed card leaves the list at once (hidden, no longer a card), but its iframe stays
  // in the document until the face has answered resource-teardown (MCP Apps: teardown before
  // unmounting; a detached iframe could not hear it), or TEARDOWN_WAIT_MS has passed.
  function remove(view) {
    if (views.get(view.card.id) === view) views.delete(view.card.id);
    const { bridge, el, iframe } = view;
    nearby.unobserve(el);
    el.hidden = true;
    el.className = "card-leaving";
    delete el.dataset.card;
    if (iframe) delete iframe.dataset.card;
    if (!bridge || !view.ready) {
      el.remove();
      if (bridge) bridge.close().catch(() => {});
      return;
    }
    const answered = bridge.teardownResource({}).then(() => {
      document.body.dataset.teardowns = String(Number(document.body.dataset.teardowns || 0) + 1);
    });
    const timeout = new Promise((resolve) => setTimeout(resolve, TEARDOWN_WAIT_MS));
    Promise.race([answered, timeout])
      .catch(() => {})
      .then(() => {
        el.remove();
        return bridge.close();
      })
      .catch(() => {});
  }

  // Whether a card's new state can be drawn by its view's iframe (else a new one is made).
  function same(old, card) {
    return old.renderer === card.renderer && old.app === card.app;
  }

  // The list's cards, skipping ones on their way out.
  function live(el) {
    while (el && !el.dataset.card) el = el.nextElementSibling;
    return el;
  }

  // -- the board -----------------------------------------------------------------------------

  function put(card, before, eager = true) {
    if (!wanted(card)) return;
    const view = views.get(card.id);
    if (view && same(view.card, card)) {
      update(view, card);
      return;
    }
    const fresh = makeView(card, eager);
    if (view) {
      list.insertBefore(fresh.el, view.el); // a replacement keeps its place
      views.delete(card.id);
      remove(view);
    } else {
      list.insertBefore(fresh.el, before === undefined ? list.firstElementChild : before);
    }
    views.set(card.id, fresh);
    mount(fresh);
    trim();
  }

  // Keeps the newest MAX_CARDS; the rest are counted on the "older" line.
  function trim() {
    while (views.size > MAX_CARDS) {
      let last = list.lastElementChild;
      while (last && !last.dataset.card) last = last.previousElementSibling;
      const view = last && views.get(last.dataset.card);
      if (!view) break;
      remove(view);
      older += 1;
    }
    showCounts();
  }

  function showCounts() {
    olderLine.hidden = only !== null || older === 0;
    olderLine.textContent = older === 1 ? "1 older card" : `${older} older cards`;
    if (only !== null) {
      emptyLine.textContent = "This card is not on the board (it may be older than the newest 200).";
    }
    emptyLine.hidden = views.size !== 0;
  }

  function reset(op) {
    serverTheme = op.theme === undefined ? null : op.theme;
    const session = op.session || {};
    const name = clean(session.title || (session.id ? `Session ${session.id}` : "Deeting"));
    titleLine.textContent = name;
    document.title = `${name} — Deeting cards`;
    const cards = (op.cards || []).filter(wanted);
    const keep = new Set(cards.map((card) => card.id));
    for (const view of [...views.values()]) {
      if (!keep.has(view.card.id)) remove(view);
    }
    // Newest first, keeping the iframes already in place (moving one would reload it).
    let cursor = live(list.firstElementChild);
    for (let i = cards.length - 1; i >= 0; i -= 1) {
      const card = cards[i];
      const view = views.get(card.id);
      if (view && same(view.card, card) && view.el === cursor) {
        update(view, card);
        cursor = live(cursor.nextElementSibling);
        continue;
      }
      if (view) {
        if (view.el === cursor) cursor = live(cursor.nextElementSibling);
        views.delete(card.id);
        remove(view);
      }
      put(card, cursor, cards.length - 1 - i < EAGER_CARDS);
    }
    older = Number(op.older) || 0;
    applyTheme();
    trim();
  }

  function handle(op) {
    switch (op.op) {
      case "reset":
        reset(op);
        break;
      case "card":
        put(op.card);
        break;
      case "result": {
        const view = views.get(op.id);
        if (!view) break;
        const frames = op.result && op.result._meta ? op.result._meta["deeting/frame"] : undefined;
        const card = Object.assign({}, view.card, { result: op.result });
        card.frames = typeof frames === "number" ? frames : view.card.frames + 1;
        update(view, card);
        break;
      }
      case "cancelled": {
        const view = views.get(op.id);
        if (!view) break;
        const reason = String(op.reason || "cancelled");
        view.card = Object.assign({}, view.card, { cancelled: reason });
        showState(view);
        if (view.ready) view.bridge.sendToolCancelled({ reason });
        break;
      }
      case "theme":
        serverTheme = op.theme === undefined ? null : op.theme;
        applyTheme();
        break;
      default:
        break; // an op from a newer server: ignored
    }
  }

  function connect() {
    const source = new EventSource("events");
    source.onopen = () => {
      status.textContent = "live";
    };
    source.onmessage = (message) => {
      let op;
      try {
        op = JSON.parse(message.data);
      } catch (err) {
        return;
      }
      if (op && typeof op === "object") handle(op);
    };
    // EventSource reconnects by itself (the server sends retry: 1000); the first op after is a reset.
    source.onerror = () => {
      status.textContent = source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…";
    };
  }

  if (dark && dark.addEventListener) dark.addEventListener("change", applyTheme);
  applyTheme();
  showCounts();
  connect();
})();
