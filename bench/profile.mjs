// A V8 CPU profile of a worker under load, summed by function (self time), for finding where the
// hot path's time goes. Not part of any run; start load first (the inspector only answers while
// the isolate has work), e.g.:
//
//   KEYWARD_KEEP_NAMES=1 ./scripts/dev.sh           # wasm function names kept in the build
//   # find the user worker's workerd (the one started with --inspector-addr) and its ports:
//   ss -ltnp | grep workerd                          # the port whose /json lists core:user:<name>
//   wrk -t2 -c32 -d20s -H "authorization: Bearer $KEY" http://127.0.0.1:<entry port>/projects/1 &
//   node bench/profile.mjs <inspector port> [seconds=8] [rows=40]
//
// Connect to workerd's own inspector socket, not wrangler's --inspector-port proxy (it refused a
// plain client). Needs a global WebSocket: Node 22 (node_modules/.bin/node after scripts/setup.sh).
// Percentages are of all samples, idle included; native calls such as fetch() may be counted in
// the JS function that made them.
const [port, seconds = '8', rows = '40'] = process.argv.slice(2);
if (!port) {
  console.error('usage: node bench/profile.mjs <inspector port> [seconds] [rows]');
  process.exit(2);
}
const targets = await fetch(`http://127.0.0.1:${port}/json`).then((r) => r.json()).catch((e) => {
  console.error(`no inspector at 127.0.0.1:${port}: ${e.cause?.code || e.message}`);
  process.exit(1);
});
const target = targets.find((t) => (t.webSocketDebuggerUrl || '').includes('/core:user:'));
if (!target) {
  console.error(`no user worker on the inspector at port ${port}: ${JSON.stringify(targets)}`);
  process.exit(1);
}
console.error(`profiling ${target.webSocketDebuggerUrl} for ${seconds} s`);

const ws = new WebSocket(target.webSocketDebuggerUrl);
const pending = new Map();
let lastId = 0;
ws.onmessage = (m) => {
  const msg = JSON.parse(m.data);
  if (msg.id && pending.has(msg.id)) {
    pending.get(msg.id)(msg);
    pending.delete(msg.id);
  }
};
const call = (method, params = {}) => new Promise((resolve) => {
  const id = ++lastId;
  pending.set(id, resolve);
  ws.send(JSON.stringify({ id, method, params }));
});
await new Promise((resolve, reject) => {
  ws.onopen = resolve;
  ws.onerror = reject;
});
await call('Profiler.enable');
await call('Profiler.setSamplingInterval', { interval: 100 });
await call('Profiler.start');
await new Promise((r) => setTimeout(r, Number(seconds) * 1000));
const { result, error } = await call('Profiler.stop');
if (error) {
  console.error(`Profiler.stop: ${JSON.stringify(error)}`);
  process.exit(1);
}

const nodes = new Map(result.profile.nodes.map((n) => [n.id, n]));
const self = new Map();
for (const sample of result.profile.samples) {
  const f = nodes.get(sample).callFrame;
  const name = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}:${f.lineNumber}`;
  self.set(name, (self.get(name) || 0) + 1);
}
const total = result.profile.samples.length;
for (const [name, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(rows))) {
  console.log(`${((100 * n) / total).toFixed(1).padStart(5)} %  ${name}`);
}
console.log(`${total} samples`);
process.exit(0);
