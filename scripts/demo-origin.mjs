// Demo origin for scripts/dev.sh: answers every request with JSON {method, path, query, headers, body},
// so you can see what keyward forwards (X-Keyward-* added, Authorization gone).
// Usage: node scripts/demo-origin.mjs [port]   (default 8788, listens on 127.0.0.1 only)
import http from "node:http";

const port = Number(process.argv[2] ?? process.env.ORIGIN_PORT ?? 8788);

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const q = req.url.indexOf("?");
    const answer = {
      method: req.method,
      path: q < 0 ? req.url : req.url.slice(0, q),
      query: q < 0 ? "" : req.url.slice(q + 1),
      headers: req.headers, // node lowercases names
      body: Buffer.concat(chunks).toString("utf8"),
    };
    const body = JSON.stringify(answer, null, 2) + "\n";
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
});

server.on("error", (err) => {
  console.error(`demo origin: ${err.message}`);
  process.exit(1);
});
server.listen(port, "127.0.0.1", () => console.log(`demo origin: listening on http://127.0.0.1:${port}`));
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)));
