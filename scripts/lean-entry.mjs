// Post-build step (scripts/build.sh): give the bundle a plain-object default export.
//
// worker-build's module shim exports `new Proxy(Entrypoint, classProxyHooks)`: per request the
// runtime constructs a WorkerEntrypoint through a Proxy construct trap, which spreads a dozen trap
// handlers into a fresh object, builds a Proxy around the instance, and another around `fetch`.
// keyward's `fetch` export is synchronous, and for such functions those Proxies do exactly this:
// checkReinitialize(); try { call } catch (e) { handleMaybeCritical(e); throw e; }. This keeps that
// (so a wasm trap still resets the instance for the next request) without the per-request objects.
//
// It works on the unminified bundle (NO_MINIFY=1) where the shim's names are stable, checks every
// piece it relies on and fails the build if worker-build's output ever changes shape.
import { readFileSync, writeFileSync } from "node:fs";

const path = process.argv[2];
if (!path) {
  console.error("usage: node scripts/lean-entry.mjs build/index.js");
  process.exit(2);
}
const src = readFileSync(path, "utf8");

function need(re, what) {
  const m = src.match(re);
  if (!m) {
    console.error(`lean-entry: ${what} not found in ${path}; worker-build's shim changed shape. ` +
      "Update scripts/lean-entry.mjs or set KEYWARD_PROXY_ENTRY=1 to keep worker-build's entry.");
    process.exit(1);
  }
  return m;
}

need(/function checkReinitialize\(\)/, "checkReinitialize()");
need(/function handleMaybeCritical\(e\)/, "handleMaybeCritical(e)");
need(/Entrypoint\.prototype\.fetch = function \w*\s*\(arg\)/, "Entrypoint.prototype.fetch");
const exp = need(/export\s*\{([^}]*)\};?\s*$/, "the final export statement");
const def = exp[1].split(",").map((s) => s.trim()).find((s) => / as default$/.test(s));
if (!def) need(/$^/, "a default export");
const defName = def.replace(/ as default$/, "");
need(new RegExp(`var ${defName} = new Proxy\\(Entrypoint, classProxyHooks\\);`), `${defName} = new Proxy(Entrypoint, ...)`);

const lean = `
var keyward_entry = {
  fetch(request, env, ctx) {
    checkReinitialize();
    try {
      return Entrypoint.prototype.fetch.call({ env, ctx }, request);
    } catch (e) {
      handleMaybeCritical(e);
      throw e;
    }
  }
};
`;
const exportStmt = exp[0];
const patched = src.slice(0, exp.index) + lean +
  exportStmt.replace(new RegExp(`\\b${defName} as default\\b`), "keyward_entry as default");
writeFileSync(path, patched);
console.log(`lean-entry: ${path}: default export is a plain { fetch } object (was ${defName})`);
