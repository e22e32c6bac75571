// Passthrough with the gateway's forward: the passthrough (worker.js) plus what any API-key gateway
// must do to a request it lets through, and nothing else (no key check, no storage, no wasm). Like
// keyward's forward (src/wasm/js.rs, kw_forward) it copies the request's headers, drops the secret
// and every header the origin must not take from the client (found by one pass over the names),
// sets X-Forwarded-For from CF-Connecting-IP, five identity headers and X-Request-Id, and fetches
// ORIGIN_URL + path + query with redirect 'manual', turning a failed fetch into a 502. The identity
// is one fixed key's, of the size keyward forwards for a bench key. Its ratio to the passthrough is
// what the forward costs by itself: the floor of the valid-key row. bench/bench.py starts it with a
// generated config whose main is this file.
const IDENTITY = {
  "x-keyward-key-id": "key_00000000000000000000",
  "x-keyward-workspace": "bench",
  "x-keyward-scopes": "events:write projects:viewer",
  "x-keyward-environment": "live",
  "x-keyward-groups": "",
};
const DROP = new Set(["authorization", "host", "forwarded", "x-real-ip", "x-client-ip", "true-client-ip",
  "x-original-url", "x-rewrite-url", "x-original-uri", "x-http-method-override", "x-http-method",
  "x-method-override", "x-original-method", "x-request-id"]);
function dropped(k) {
  const n = k.indexOf("_") < 0 ? k : k.replaceAll("_", "-");
  return DROP.has(n) || n.startsWith("x-keyward-") || n.startsWith("x-forwarded-");
}
let n = 0;

export default {
  fetch(request, env) {
    const url = request.url;
    const target = env.ORIGIN_URL + url.slice(url.indexOf("/", url.indexOf("//") + 2));
    const h = new Headers(request.headers);
    let drop;
    for (const k of h.keys()) if (dropped(k)) (drop ??= []).push(k);
    if (drop) for (const k of drop) h.delete(k);
    const ip = request.headers.get("cf-connecting-ip");
    if (ip !== null) h.set("x-forwarded-for", ip);
    for (const k in IDENTITY) h.set(k, IDENTITY[k]);
    const rid = "00000000" + (n++ >>> 0).toString(16).padStart(8, "0");
    h.set("x-request-id", rid);
    return fetch(target, { method: request.method, headers: h, body: request.body, redirect: "manual" })
      .catch(() => new Response("origin unreachable\n", { status: 502, headers: { "x-request-id": rid } }));
  },
};
