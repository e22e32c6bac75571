// The one local origin behind every benchmarked system: a plain Node `http` server that answers
// 200 with a short body. `?echo=1` anywhere in the URL answers with the request line and headers
// as JSON instead (used by the sanity checks to see what the worker forwarded).
import http from "node:http";

const port = Number(process.argv[2] || process.env.PORT || 8788);
const body = Buffer.from("origin ok\n");

const server = http.createServer((req, res) => {
  if (req.url.includes("echo=1")) {
    const out = Buffer.from(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
    res.writeHead(200, { "content-type": "application/json", "content-length": out.length });
    res.end(out);
    return;
  }
  // Drain any request body, then answer.
  req.resume();
  res.writeHead(200, { "content-type": "text/plain", "content-length": body.length });
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.listen(port, "127.0.0.1", () => {
  console.log(`origin listening on http://127.0.0.1:${port}`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => server.close(() => process.exit(0)) && setTimeout(() => process.exit(0), 500).unref());
