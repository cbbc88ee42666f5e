// The notice face: one line that something happened, with the level's icon and colour (info,
// success, warning, error; an unknown level reads as info, as in the terminal). Other keys of
// the payload are the plugin's own and are not drawn.
(function () {
  "use strict";

  const LEVELS = {
    info: ["ℹ", "Info"],
    success: ["✓", "Success"],
    warning: ["⚠", "Warning"],
    error: ["✗", "Error"],
  };

  const { el, field, kind } = DeetingFace;

  const root = el("section", "notice");
  const icon = el("span", "notice-icon");
  const line = el("p", "notice-text");
  root.setAttribute("role", "status");
  root.append(icon, line);

  DeetingFace.register({
    draw(payload) {
      if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
        throw new Error(`the 'notice' renderer expects an object, not ${kind(payload)}`);
      }
      const said = field(payload, "text", "string", "", true);
      let level = field(payload, "level", "string");
      level = Object.prototype.hasOwnProperty.call(LEVELS, level) ? level : "info";
      const [mark, name] = LEVELS[level];
      root.dataset.level = level;
      icon.textContent = mark;
      icon.setAttribute("aria-label", name);
      icon.title = name;
      line.textContent = DeetingFace.clean(said);
      if (!root.isConnected) document.body.replaceChildren(root);
    },
  });
})();
