// The error face: what failed (title, message) and what to do about it (hint), in a red frame,
// like the terminal's. A stream may resend it, so the frame is built once and refilled.
(function () {
  "use strict";

  const { el, kind } = DeetingFace;

  const root = el("section", "error-card");
  const head = el("header", "error-head");
  const icon = el("span", "error-icon");
  const title = el("h1", "error-title");
  const message = el("p", "error-message");
  const hint = el("p", "error-hint");
  const arrow = el("span", "error-arrow");
  const hintText = el("span", "error-hint-text");
  root.setAttribute("role", "alert");
  icon.setAttribute("aria-hidden", "true");
  icon.textContent = "✗";
  arrow.setAttribute("aria-hidden", "true");
  arrow.textContent = "→";
  head.append(icon, title);
  hint.append(arrow, hintText);
  root.append(head, message, hint);

  // An optional string: "" when absent or null, an error naming the key when of another type.
  function text(payload, key) {
    return DeetingFace.field(payload, key, "string") ?? "";
  }

  DeetingFace.register({
    draw(payload) {
      if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
        throw new Error(`the 'error' renderer expects an object, not ${kind(payload)}`);
      }
      const said = text(payload, "message");
      if (!said) throw new Error("message: missing");
      const advice = text(payload, "hint");
      title.textContent = DeetingFace.clean(text(payload, "title") || "Error");
      message.textContent = DeetingFace.clean(said);
      hintText.textContent = DeetingFace.clean(advice);
      hint.hidden = !advice;
      if (!root.isConnected) document.body.replaceChildren(root);
    },
  });
})();
