// Builds the pinned front-end libraries into deeting_tui/web/vendor as classic scripts.
//
// Renderers run in <iframe sandbox="allow-scripts">, an opaque origin: a module script would be
// fetched with CORS, which the loopback server never grants. So every library becomes one
// classic script with a global, and its licence goes beside it. Run by `./dev.sh` and by the
// wheel's build hook (hatch_build.py) after `npm ci`; a user's machine needs no node.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "deeting_tui", "web", "vendor");
const modules = join(here, "node_modules");

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "licenses"), { recursive: true });

const bundles = [
  { entry: "entries/mcp-host.js", file: "mcp-host.js", global: "McpHost" },
  { entry: "entries/mcp-app.js", file: "mcp-app.js", global: "McpApp" },
  { entry: "entries/markdown-it.js", file: "markdown-it.js", global: "markdownit", default: true },
];
for (const b of bundles) {
  await build({
    entryPoints: [join(here, b.entry)],
    outfile: join(out, b.file),
    bundle: true,
    format: "iife",
    globalName: b.global,
    footer: b.default ? { js: `${b.global}=${b.global}.default;` } : undefined,
    minify: true,
    legalComments: "eof",
    // The MCP SDK logs every message it sends and parses with console.debug: at a live
    // stream's rate that is work (and, with DevTools attached, memory) for nothing.
    pure: ["console.debug"],
    target: "es2020",
    logLevel: "warning",
  });
}

const copies = [
  ["lightweight-charts/dist/lightweight-charts.standalone.production.js", "lightweight-charts.js"],
  ["dompurify/dist/purify.min.js", "purify.js"],
];
for (const [from, to] of copies) copyFileSync(join(modules, from), join(out, to));

// Every package that ends up in a bundle or a copy, with its licence text.
const shipped = [
  "@modelcontextprotocol/ext-apps", "@modelcontextprotocol/client", "@modelcontextprotocol/core",
  "@standard-schema/spec", "zod", "markdown-it", "dompurify", "lightweight-charts",
  "entities", "linkify-it", "mdurl", "punycode.js", "uc.micro",
];
const lines = [];
for (const name of shipped) {
  let pkg;
  try {
    pkg = JSON.parse(readFileSync(join(modules, name, "package.json"), "utf8"));
  } catch {
    continue; // not in this build's tree (a bundle's optional dependency)
  }
  const licence = ["LICENSE", "LICENSE.md", "LICENSE.txt", "LICENSE-MIT.txt", "LICENCE", "license"]
    .map((f) => join(modules, name, f))
    .find((f) => { try { readFileSync(f); return true; } catch { return false; } });
  const target = `${name.replace("/", "__")}.txt`;
  if (licence) copyFileSync(licence, join(out, "licenses", target));
  lines.push(`${name}@${pkg.version}  ${pkg.license}  licenses/${target}`);
}
writeFileSync(
  join(out, "NOTICE.txt"),
  [
    "Front-end libraries served by Deeting's loopback server, built from npm (frontend/package-lock.json).",
    "",
    ...lines,
    "",
    "Charts are drawn with TradingView Lightweight Charts(TM) (https://www.tradingview.com/),",
    "Copyright (c) 2025 TradingView, Inc., licensed under the Apache License 2.0.",
    "",
  ].join("\n"),
);
console.log(`built ${bundles.length} bundles and ${copies.length} copies into ${out}`);
