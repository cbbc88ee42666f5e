// The fallback face: any payload as indented JSON text (a renderer without a face of its own).
// textContent only: plugin strings are never markup.
DeetingFace.register({
  draw(payload) {
    const box = document.createElement("pre");
    box.className = "json";
    box.textContent = DeetingFace.clean(JSON.stringify(payload, null, 2) ?? "null");
    document.body.replaceChildren(box);
  },
});
