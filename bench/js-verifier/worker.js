// keyward's gateway job, hand-written in JavaScript: the competitor in bench/run.sh.
//
// Per request: parse `Authorization: Bearer`, check the key's prefix, length, charset and CRC-32
// checksum, SHA-256 it (crypto.subtle), look the hash up in a per-isolate cache (positive TTL 30 s,
// negative TTL 5 s, bounded) and on a miss in KV (cacheTtl 30, JSON), check status and expiry, match
// the route policy (config/policy.json, compiled once per isolate), check scopes, then forward to
// ORIGIN_URL + path + query without Authorization and client X-Keyward-* headers, adding
// X-Keyward-Key-Id / -Workspace / -Scopes. Errors are application/problem+json as in docs/api.md.
//
// Written to be fast the ordinary JavaScript way: tables built once, no URL object on the hot path,
// records and their compiled grants cached together, concurrent misses for one key share one KV read.

import policy from "../../config/policy.json";

const REALM = policy.realm || "keyward";
const PREFIX = "kw_live_";
const KEY_LEN = 58; // "kw_live_" (8) + 43 + "_" + 6
const BODY_END = 51; // index of the "_" before the checksum
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

const CACHE_TTL_MS = 30_000;
const NEGATIVE_TTL_MS = 5_000;
const CACHE_MAX = 10_000;
const KV_CACHE_TTL_S = 30;

// ---- tables, built once per isolate -------------------------------------------------------------

const B62 = new Uint8Array(128).fill(255);
for (let i = 0; i < ALPHABET.length; i++) B62[ALPHABET.charCodeAt(i)] = i;

const CRC_TABLE = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  CRC_TABLE[n] = c;
}

const HEX = [];
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, "0"));

const ENCODER = new TextEncoder();

// Role ladder: a higher role implies the lower ones. `executor` is a legacy alias of `viewer`.
const ROLES = { discoverer: 0, viewer: 1, executor: 1, editor: 2, owner: 3, admin: 4 };

// ---- key format ---------------------------------------------------------------------------------

// True when `key` has the shape kw_live_<43 base62>_<6 base62> and its checksum matches.
function wellFormed(key) {
  if (key.length !== KEY_LEN || !key.startsWith(PREFIX) || key.charCodeAt(BODY_END) !== 95 /* _ */) {
    return false;
  }
  let crc = -1;
  for (let i = 0; i < BODY_END; i++) {
    const ch = key.charCodeAt(i);
    if (i >= PREFIX.length && (ch > 127 || B62[ch] === 255)) return false;
    crc = CRC_TABLE[(crc ^ ch) & 0xff] ^ (crc >>> 8);
  }
  crc = (crc ^ -1) >>> 0;
  let sum = 0;
  for (let i = BODY_END + 1; i < KEY_LEN; i++) {
    const ch = key.charCodeAt(i);
    const d = ch > 127 ? 255 : B62[ch];
    if (d === 255) return false;
    sum = sum * 62 + d; // at most 62^6 < 2^53: exact
  }
  return sum === crc;
}

async function sha256Hex(text) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", ENCODER.encode(text)));
  let out = "";
  for (let i = 0; i < digest.length; i++) out += HEX[digest[i]];
  return out;
}

// ---- scopes -------------------------------------------------------------------------------------

function parseScope(s) {
  const i = s.indexOf(":");
  if (i <= 0) return null;
  const resource = s.slice(0, i);
  const permission = s.slice(i + 1);
  const role = ROLES[permission];
  return { resource, permission: role === 1 ? "viewer" : permission, role: role === undefined ? -1 : role };
}

// A key's scopes compiled for checking: `*`, per resource a wildcard flag, the highest role and the
// exact permissions held.
function compileGrants(scopes) {
  const g = { all: false, byResource: new Map() };
  for (const s of scopes) {
    if (s === "*") {
      g.all = true;
      continue;
    }
    const p = parseScope(s);
    if (!p) continue;
    let r = g.byResource.get(p.resource);
    if (!r) g.byResource.set(p.resource, (r = { wild: false, role: -1, perms: new Set() }));
    if (p.permission === "*") r.wild = true;
    else if (p.role >= 0) r.role = Math.max(r.role, p.role);
    else r.perms.add(p.permission);
  }
  return g;
}

function holds(grants, need) {
  if (grants.all) return true;
  const r = grants.byResource.get(need.resource);
  if (!r) return false;
  if (r.wild) return true;
  return need.role >= 0 ? r.role >= need.role : r.perms.has(need.permission);
}

// ---- route policy, compiled once ----------------------------------------------------------------

// Path patterns: literal segments, `*` = exactly one non-empty segment, a trailing `**` = any number
// of segments, zero included (as in keyward, docs/scopes.md).
const ROUTES = policy.routes.map((r) => {
  const segs = r.path.split("/").slice(1);
  const rest = segs[segs.length - 1] === "**";
  if (rest) segs.pop();
  const scopes = [...r.scopes];
  return {
    method: r.method.toUpperCase(),
    segs,
    rest,
    needs: scopes.map(parseScope),
    scopes,
    scopeAttr: scopes.join(" "),
  };
});

function matchRoute(method, path) {
  const segs = path.split("/").slice(1);
  outer: for (const r of ROUTES) {
    if (r.method !== "*" && r.method !== method) continue;
    if (r.rest ? segs.length < r.segs.length : segs.length !== r.segs.length) continue;
    for (let i = 0; i < r.segs.length; i++) {
      const p = r.segs[i];
      if (p === "*" ? segs[i] === "" : p !== segs[i]) continue outer;
    }
    return r;
  }
  return null;
}

// ---- problems -----------------------------------------------------------------------------------

const INVALID_TOKEN_BODY = JSON.stringify({
  type: "urn:keyward:problem:invalid-token",
  title: "Invalid token",
  status: 401,
  detail: "The access token is invalid",
});
const INVALID_TOKEN_AUTH = `Bearer realm="${REALM}", error="invalid_token", error_description="The access token is invalid"`;

function problem(status, slug, title, detail, extra, wwwAuth) {
  const headers = { "content-type": "application/problem+json" };
  if (wwwAuth) headers["www-authenticate"] = wwwAuth;
  return new Response(JSON.stringify({ type: `urn:keyward:problem:${slug}`, title, status, detail, ...extra }), {
    status,
    headers,
  });
}

function invalidToken() {
  return new Response(INVALID_TOKEN_BODY, {
    status: 401,
    headers: { "content-type": "application/problem+json", "www-authenticate": INVALID_TOKEN_AUTH },
  });
}

function invalidRequest(detail) {
  return problem(
    400,
    "invalid-request",
    "Invalid request",
    detail,
    null,
    `Bearer realm="${REALM}", error="invalid_request", error_description="${detail}"`,
  );
}

// ---- per-isolate key cache ----------------------------------------------------------------------

// hash -> { entry, exp }; entry is null for "not found". Map keeps insertion order: the oldest entry
// is evicted first when the bound is reached.
const cache = new Map();
// hash -> Promise<entry>: concurrent misses for one key share one KV read.
const inflight = new Map();

function remember(hash, entry, ttl) {
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value);
  cache.set(hash, { entry, exp: Date.now() + ttl });
}

async function loadEntry(env, hash) {
  const text = await env.KV.get(hash, { cacheTtl: KV_CACHE_TTL_S });
  let entry = null;
  if (text !== null) {
    const rec = JSON.parse(text);
    if (rec && rec.v === 1 && Array.isArray(rec.scopes)) {
      entry = {
        id: rec.id,
        workspace: rec.workspace,
        status: rec.status,
        expiresAt: rec.expires_at,
        grants: compileGrants(rec.scopes),
        scopesHeader: rec.scopes.join(" "),
        environment: rec.env ?? "live",
        groups: (rec.groups ?? []).join(" "),
      };
    }
  }
  remember(hash, entry, entry ? CACHE_TTL_MS : NEGATIVE_TTL_MS);
  return entry;
}

async function lookup(env, hash) {
  const hit = cache.get(hash);
  if (hit !== undefined) {
    if (hit.exp > Date.now()) return hit.entry;
    cache.delete(hash);
  }
  let p = inflight.get(hash);
  if (!p) {
    p = loadEntry(env, hash).finally(() => inflight.delete(hash));
    inflight.set(hash, p);
  }
  return p;
}

// ---- the gateway --------------------------------------------------------------------------------

async function gateway(request, env, url, pathStart) {
  const auth = request.headers.get("authorization");
  const sp = auth === null ? -1 : auth.indexOf(" ");
  const scheme = auth === null ? "" : sp < 0 ? auth : auth.slice(0, sp);
  if (scheme.length !== 6 || scheme.toLowerCase() !== "bearer") {
    return problem(401, "missing-credentials", "Missing credentials", "Send Authorization: Bearer <key>", null, `Bearer realm="${REALM}"`);
  }
  const token = sp < 0 ? "" : auth.slice(sp + 1).trim();
  if (token === "") return invalidRequest("The access token is empty");
  if (token.includes(",")) return invalidRequest("More than one Authorization value");
  const q = url.indexOf("?", pathStart);
  if (q >= 0 && url.includes("access_token=", q)) return invalidRequest("Tokens are not accepted in the query");

  if (!wellFormed(token)) return invalidToken();
  const entry = await lookup(env, await sha256Hex(token));
  if (entry === null || entry.status !== "active" || (entry.expiresAt !== null && entry.expiresAt <= Date.now())) {
    return invalidToken();
  }

  const path = q >= 0 ? url.slice(pathStart, q) : url.slice(pathStart);
  const route = matchRoute(request.method, path);
  if (route === null) return problem(404, "no-route", "No route", `No route for ${request.method} ${path}`);
  for (const need of route.needs) {
    if (!holds(entry.grants, need)) {
      return problem(
        403,
        "insufficient-scope",
        "Insufficient scope",
        "The key lacks a scope this route requires",
        { scopes: route.scopes },
        `Bearer realm="${REALM}", error="insufficient_scope", scope="${route.scopeAttr}"`,
      );
    }
  }

  const headers = new Headers(request.headers);
  headers.delete("authorization");
  for (const name of [...headers.keys()]) if (name.startsWith("x-keyward-")) headers.delete(name);
  headers.set("x-keyward-key-id", entry.id);
  headers.set("x-keyward-workspace", entry.workspace);
  headers.set("x-keyward-scopes", entry.scopesHeader);
  headers.set("x-keyward-environment", entry.environment);
  headers.set("x-keyward-groups", entry.groups);
  try {
    return await fetch(env.ORIGIN_URL + url.slice(pathStart), {
      method: request.method,
      headers,
      body: request.body,
      redirect: "manual",
    });
  } catch {
    return problem(502, "bad-gateway", "Bad gateway", "The origin could not be reached");
  }
}

export default {
  fetch(request, env) {
    const url = request.url;
    const pathStart = url.indexOf("/", url.indexOf("//") + 2);
    return gateway(request, env, url, pathStart);
  },
};
