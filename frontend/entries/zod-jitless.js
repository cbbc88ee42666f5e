// Imported first by the bundles that carry zod: it must never probe `new Function("")`, which
// the pages' CSP (no 'unsafe-eval') refuses and reports. ES modules run their imports in order,
// so this runs before the MCP SDK's modules build their schemas.
import { config } from "zod/v4/core";

config({ jitless: true });
