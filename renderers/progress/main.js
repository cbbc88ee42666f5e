// The progress face: a bar, the percentage beside it, the message under it. A stream sends a
// frame per step, so the elements are built once and each frame only changes their text and
// the bar's transform (a CSS transition makes the step smooth). A null fraction means "busy,
// amount unknown": the bar sweeps (still and dashed for a reader who asked for less motion).
(function () {
  "use strict";

  const { el, kind } = DeetingFace;

  const root = el("section", "progress");
  const row = el("div", "progress-row");
  const track = el("div", "progress-track");
  const fill = el("div", "progress-fill");
  const percent = el("span", "progress-percent");
  const message = el("p", "progress-message");
  track.setAttribute("role", "progressbar");
  track.setAttribute("aria-valuemin", "0");
  track.setAttribute("aria-valuemax", "100");
  track.append(fill);
  row.append(track, percent);
  root.append(row, message);

  function read(payload) {
    if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
      throw new Error(`the 'progress' renderer expects an object, not ${kind(payload)}`);
    }
    if (!("fraction" in payload)) throw new Error("fraction: missing (a number from 0 to 1, or null)");
    const fraction = payload.fraction;
    if (fraction !== null && typeof fraction !== "number") {
      throw new Error(`fraction: expected a number from 0 to 1 or null, not ${kind(fraction)}`);
    }
    const text = DeetingFace.field(payload, "message", "string");
    const known = fraction !== null && Number.isFinite(fraction);
    return { done: known ? Math.min(1, Math.max(0, fraction)) : null, text: text || "" };
  }

  DeetingFace.register({
    draw(payload) {
      const { done, text } = read(payload);
      if (done === null) {
        root.classList.add("is-unknown");
        root.classList.remove("is-done");
        fill.style.transform = "";
        percent.textContent = "…";
        track.removeAttribute("aria-valuenow");
        track.setAttribute("aria-valuetext", "in progress");
      } else {
        const whole = Math.floor(done * 100);
        root.classList.remove("is-unknown");
        root.classList.toggle("is-done", done >= 1);
        // CSSOM, not a style attribute: the policy refuses inline styles in markup.
        fill.style.transform = `scaleX(${done})`;
        percent.textContent = `${whole}%`;
        track.setAttribute("aria-valuenow", String(whole));
        track.removeAttribute("aria-valuetext");
      }
      message.textContent = DeetingFace.clean(text);
      track.setAttribute("aria-label", message.textContent || "Progress");
      message.hidden = !text;
      if (!root.isConnected) document.body.replaceChildren(root);
    },
  });
})();
