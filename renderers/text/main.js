// The text face: plain text as is, newlines kept, no markup ever interpreted.
DeetingFace.register({
  draw(payload) {
    const text = typeof payload === "string" ? payload : payload && payload.text;
    if (typeof text !== "string") throw new Error("a text payload is a string or has 'text'");
    const box = document.createElement("div");
    box.className = "text";
    box.textContent = DeetingFace.clean(text);
    document.body.replaceChildren(box);
  },
});
