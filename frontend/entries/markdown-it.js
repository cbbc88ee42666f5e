// markdown-it has no browser build of its own: bundled here as a classic script (window.markdownit).
import markdownit from "markdown-it";
export default markdownit;
