-- wrk script: rotate through a file of API keys, one `Authorization: Bearer <key>` per request.
--   wrk ... -s bench/wrk/rotate.lua URL -- KEYS_FILE METHOD PATH [CLIENTS]
-- Each request also carries its own CF-Connecting-IP from 198.18.0.0/15 (the benchmarking range;
-- a header value only): real traffic comes from many clients, and keyward throttles a client that
-- sends many invalid keys (local wrangler keeps a client-sent CF-Connecting-IP). CLIENTS (default
-- 64) variants of every key are formatted, each with another address, so one address is seen
-- about once in keys * CLIENTS requests: far below keyward's failed-attempt budget.
-- Every request is formatted once in init(); request() only picks the next one. Each thread starts
-- at a different offset. done() prints one JSON line (prefixed "BENCH_JSON ") with throughput,
-- latency percentiles (us), socket errors and the count of every HTTP status seen.

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

local reqs, n, i = {}, 0, 0
statuses = {}

local function address(j)
  return string.format("198.%d.%d.%d", 18 + math.floor(j / 65536) % 2, math.floor(j / 256) % 256, j % 256)
end

function init(args)
  local file, method, path = args[1], args[2] or "GET", args[3] or "/"
  local clients = tonumber(args[4] or "64")
  local body = nil
  if method ~= "GET" and method ~= "HEAD" then body = "" end
  local keys = {}
  for line in io.lines(file) do
    if #line > 0 then table.insert(keys, line) end
  end
  for c = 1, clients do
    for _, key in ipairs(keys) do
      n = n + 1
      reqs[n] = wrk.format(method, path, { ["Authorization"] = "Bearer " .. key, ["CF-Connecting-IP"] = address(n) }, body)
    end
  end
  if n == 0 then error("no keys in " .. file) end
  local id = wrk.thread:get("id") or 1
  i = ((id - 1) * 7919) % n
end

function request()
  i = i % n + 1
  return reqs[i]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then
      for k, v in pairs(s) do merged[k] = (merged[k] or 0) + v end
    end
  end
  local parts = {}
  for k, v in pairs(merged) do table.insert(parts, string.format('"%d":%d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"min":%d,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d},' ..
    '"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.min, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    table.concat(parts, ",")))
end
