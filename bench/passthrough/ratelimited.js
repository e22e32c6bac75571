// Passthrough with a rate limit: the passthrough (worker.js) plus one call per request to a Rate
// Limiting binding with the same tier as the keys of the valid-ratelimited scenario, keyed by the
// Authorization value (one counter per key, as keyward's is per key id). Its ratio to the passthrough
// is what the binding costs by itself; locally that is miniflare's emulation of it. bench/bench.py
// starts it with a generated config that adds the binding (RL).
export default {
  async fetch(request, env) {
    const url = request.url;
    const target = env.ORIGIN_URL + url.slice(url.indexOf("/", url.indexOf("//") + 2));
    const { success } = await env.RL.limit({ key: request.headers.get("authorization") ?? "" });
    // Never expected in a run (the bench stays under the limit and aborts on any 429).
    if (!success) return new Response("rate limited\n", { status: 429, headers: { "retry-after": "60" } });
    return fetch(target, request);
  },
};
