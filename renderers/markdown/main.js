// The markdown face: CommonMark through markdown-it, then DOMPurify, then into the page as
// a DOM fragment. markdown-it runs with html:false, so raw HTML in the source is shown as text;
// DOMPurify is the second wall in case a rule ever emits something it shouldn't. Links keep
// only http, https and mailto and open in a new tab; images never load (the policy refuses
// remote ones anyway) and become a link named by their alt text instead.
(function () {
  "use strict";

  // Longest source drawn (2.5 times the terminal's 20,000): dense Markdown costs about 3 ms
  // per 1,000 characters to parse, sanitise and lay out; 1 MB would freeze the card for seconds.
  const MAX_SOURCE = 50000;
  const SAFE_LINK = /^(https?:|mailto:)/i;

  const md = window.markdownit({ html: false, linkify: true, typographer: false, breaks: false });
  const escape = md.utils.escapeHtml;

  // An image is a link to it (when its address is one we allow) named by its alt text.
  md.renderer.rules.image = (tokens, index, options, env, self) => {
    const token = tokens[index];
    const src = token.attrGet("src") || "";
    const alt = self.renderInlineAsText(token.children || [], options, env) || "image";
    const label = `<span class="md-image-mark" aria-hidden="true">▣</span> ${escape(alt)}`;
    if (SAFE_LINK.test(src.trim())) return `<a class="md-image" href="${escape(src)}">${label}</a>`;
    return `<span class="md-image">${label}</span>`;
  };

  // markdown-it aligns table columns with style="text-align:…", which the policy refuses (even
  // DOMPurify's parse of it is reported); a class from face.css does the same job.
  md.core.ruler.push("deeting_align", (state) => {
    for (const token of state.tokens) {
      if (token.type !== "th_open" && token.type !== "td_open") continue;
      const style = token.attrGet("style") || "";
      const align = /text-align:\s*(left|center|right)/.exec(style);
      token.attrs = (token.attrs || []).filter(([name]) => name !== "style");
      if (align) token.attrJoin("class", `md-align-${align[1]}`);
    }
  });

  const purifier = window.DOMPurify;
  purifier.addHook("afterSanitizeAttributes", (node) => {
    if (node.nodeName !== "A") return;
    const href = (node.getAttribute("href") || "").trim();
    if (SAFE_LINK.test(href)) {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer");
    } else {
      // A relative, javascript:, data: or any other address: the words stay, the link goes.
      node.removeAttribute("href");
      node.removeAttribute("target");
    }
  });
  const POLICY = {
    RETURN_DOM_FRAGMENT: true,
    FORBID_TAGS: ["img", "style", "form", "input", "button", "textarea", "select", "svg", "math",
      "video", "audio", "picture", "source", "iframe", "object", "embed"],
    FORBID_ATTR: ["style", "id", "name", "src", "srcset"],
    ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
  };

  const root = document.createElement("article");
  root.className = "markdown";
  const note = document.createElement("p");
  note.className = "md-cut";

  function source(payload) {
    if (typeof payload === "string") return payload;
    if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
      throw new Error(`the 'markdown' renderer expects an object or a string, not ${kind(payload)}`);
    }
    if (!("markdown" in payload) || payload.markdown === null) throw new Error("markdown: missing");
    if (typeof payload.markdown !== "string") {
      throw new Error(`markdown: expected a string, not ${kind(payload.markdown)}`);
    }
    return payload.markdown;
  }

  const { kind } = DeetingFace;

  DeetingFace.register({
    draw(payload) {
      const text = source(payload);
      const cut = text.length > MAX_SOURCE;
      const body = DeetingFace.clean(cut ? text.slice(0, MAX_SOURCE) : text);
      if (!body.trim()) {
        const empty = document.createElement("p");
        empty.className = "md-empty";
        empty.textContent = "(empty)";
        root.replaceChildren(empty);
      } else {
        root.replaceChildren(purifier.sanitize(md.render(body), POLICY));
      }
      if (cut) {
        note.textContent = `… ${(text.length - MAX_SOURCE).toLocaleString("en")} more characters not shown`;
        root.append(note);
      }
      if (!root.isConnected) document.body.replaceChildren(root);
    },
  });
})();
