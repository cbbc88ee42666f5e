// The search-cards face: search results, best first. Each is a numbered card: the title (a link
// only for an http or https address, opened in a new tab with no opener and no referrer), the
// address in short (host + path), where it came from and when, and the snippet. No favicon or
// thumbnail is ever fetched: the policy refuses remote images, and a result must not phone home.
(function () {
  "use strict";

  const MAX_RESULTS = 50;
  const MAX_SNIPPET = 400;
  const clean = (text) => DeetingFace.clean(text);

  const { kind } = DeetingFace;

  // A string field, "" when absent.
  function text(data, key, where, required) {
    return DeetingFace.field(data, key, "string", where, required) ?? "";
  }

  function cut(value, limit) {
    return value.length > limit ? value.slice(0, limit - 1) + "…" : value;
  }

  const element = DeetingFace.el;

  // The URL as a link target, only for web addresses: javascript:, data:, file: and the rest
  // are shown as text. The parsed form is used, so what is opened is what was checked.
  function linkOf(url) {
    if (!url) return null;
    let parsed;
    try {
      parsed = new URL(url.slice(0, 4000));
    } catch (err) {
      return null;
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return null;
    if (parsed.username || parsed.password) return null; // "https://bank.com@evil.example" tricks
    return parsed;
  }

  // host + path, as the terminal shows it: no scheme, no "www.", no trailing slash. The host is
  // the parsed (punycode) one, so a look-alike name can't pass for another.
  function shortUrl(url, parsed) {
    if (!parsed) return cut(clean(url), 200);
    let path = parsed.pathname + parsed.search;
    try {
      path = decodeURI(path);
    } catch (err) {
      // keep the encoded form
    }
    const host = parsed.host.replace(/^www\./, "");
    return cut(clean((host + path).replace(/\/$/, "")), 200);
  }

  function card(result, index) {
    const where = `results/${index}/`;
    if (result === null || typeof result !== "object" || Array.isArray(result)) {
      throw new Error(`results/${index}: expected an object, not ${kind(result)}`);
    }
    const title = cut(clean(text(result, "title", where, true)), 300) || "(untitled)";
    const url = text(result, "url", where, false);
    const snippet = text(result, "snippet", where, false);
    const source = text(result, "source", where, false);
    const date = text(result, "date", where, false);

    const item = element("li", "result");
    const number = element("span", "rank", `${index + 1}`);
    number.setAttribute("aria-hidden", "true");
    const body = element("div", "result-body");
    const parsed = linkOf(url);
    const heading = element("h2", "result-title");
    if (parsed) {
      const link = element("a", "", title);
      link.href = parsed.href;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.referrerPolicy = "no-referrer";
      heading.append(link);
    } else {
      heading.textContent = title;
    }
    body.append(heading);
    const meta = element("div", "result-meta");
    if (url) {
      const address = element("span", parsed ? "result-url" : "result-url not-link", shortUrl(url, parsed));
      address.title = cut(clean(url), 2000);
      meta.append(address);
    }
    for (const extra of [source, date]) {
      if (!extra) continue;
      if (meta.childNodes.length) meta.append(element("span", "dot", "·"));
      meta.append(element("span", "result-extra", cut(clean(extra), 80)));
    }
    if (meta.childNodes.length) body.append(meta);
    if (snippet) {
      const words = cut(clean(snippet.slice(0, MAX_SNIPPET * 4).replace(/\s+/g, " ").trim()), MAX_SNIPPET);
      body.append(element("p", "result-snippet", words));
    }
    item.append(number, body);
    return item;
  }

  DeetingFace.register({
    draw(payload) {
      if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
        throw new Error(`the 'search-cards' renderer expects an object, not ${kind(payload)}`);
      }
      const results = payload.results;
      if (results === null || results === undefined) throw new Error("results: missing");
      if (!Array.isArray(results)) throw new Error(`results: expected a list, not ${kind(results)}`);
      const query = text(payload, "query", "", false);
      const root = element("section", "search");
      if (query) {
        const heading = element("h1", "search-query");
        heading.append(element("span", "muted", "Results for "), element("strong", "", cut(clean(query), 200)));
        const count = element("span", "search-count", `${results.length} ${results.length === 1 ? "result" : "results"}`);
        const head = element("header", "search-head");
        head.append(heading, count);
        root.append(head);
      }
      if (!results.length) {
        root.append(element("p", "search-empty", "No results."));
      } else {
        const list = element("ol", "results");
        results.slice(0, MAX_RESULTS).forEach((result, index) => list.append(card(result, index)));
        root.append(list);
        if (results.length > MAX_RESULTS) {
          const left = results.length - MAX_RESULTS;
          root.append(element("p", "search-more", `… ${left} more ${left === 1 ? "result" : "results"}`));
        }
      }
      document.body.replaceChildren(root);
    },
  });
})();
