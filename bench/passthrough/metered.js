// Passthrough with a credit counter: the passthrough (worker.js) plus, per request, the same kind of
// round trip keyward's metered routes make: one SQLite-backed Durable Object per workspace (here one,
// "bench", as every bench key is in that workspace), found by name, sent a small JSON op over
// stub.fetch, answering after it has taken the cost from the balance in its SQL storage. Its ratio to
// the passthrough is what that round trip costs by itself (locally the object runs in the worker's
// own workerd, so its CPU is counted in the row). bench/bench.py starts it with a generated config
// that adds the binding (COUNTER) and the class migration.
import { DurableObject } from "cloudflare:workers";

export class Counter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS ws (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL, spent INTEGER NOT NULL)");
    // Funded once, far beyond what a run spends (keyward's bench workspace is topped up the same way).
    this.sql.exec("INSERT OR IGNORE INTO ws (id, balance, spent) VALUES (1, 1000000000, 0)");
  }

  async fetch(request) {
    const { cost } = JSON.parse(await request.text());
    const rows = this.sql
      .exec("UPDATE ws SET balance = balance - ?1, spent = spent + ?1 WHERE id = 1 AND balance >= ?1 RETURNING balance", cost)
      .toArray();
    return new Response(JSON.stringify(rows.length ? { r: "granted", balance: rows[0].balance } : { r: "refused" }));
  }
}

export default {
  async fetch(request, env) {
    const url = request.url;
    const target = env.ORIGIN_URL + url.slice(url.indexOf("/", url.indexOf("//") + 2));
    const stub = env.COUNTER.get(env.COUNTER.idFromName("bench"));
    const answer = await stub.fetch("https://credits.internal/apply", { method: "POST", body: '{"op":"spend","cost":1}' });
    const v = await answer.json();
    // Never expected in a run (the balance is far beyond what it spends; the bench aborts on a 402).
    if (v.r !== "granted") return new Response("credits exhausted\n", { status: 402 });
    return fetch(target, request);
  },
};
