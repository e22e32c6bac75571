//! The few places where one JavaScript call beats many wasm<->JS crossings. Measured on local
//! workerd: building Headers and calling fetch field by field from Rust costs ~50 us more per
//! request than doing it in one JS call.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
let ORIGIN = '';
let TEST_ORIGIN = '';
let BAD_GATEWAY = [''];
let BAD_GATEWAY_STATUS = 502;
let ROUTES = [];
let MARK = '';
export function kw_init(origin, testOrigin, badGatewayStatus, badGateway, routes, mark) {
  ORIGIN = origin;
  TEST_ORIGIN = testOrigin;
  MARK = mark;
  BAD_GATEWAY_STATUS = badGatewayStatus;
  BAD_GATEWAY = around(badGateway);
  ROUTES = routes.split('\n');
}

// A problem body split around the request-id mark: parts.join(id) is the body of one answer.
function around(body) {
  return MARK === '' ? [body] : body.split(MARK);
}

// One log line, the same JSON object src/log.rs writes.
function logLine(level, rid, route, identity, outcome, status, detail) {
  const o = { level, request_id: rid, route: ROUTES[route] ?? '', outcome };
  if (identity !== '') o.key_id = identity.slice(0, identity.indexOf('\n'));
  if (status !== 0) o.status = status;
  o.detail = String(detail).slice(0, 1000);
  (level === 'error' ? console.error : console.warn)(JSON.stringify(o));
}

// keyward's id for a request: Cloudflare's ray id (cf-ray, set by the edge: a client cannot
// choose it there), or, when there is none (wrangler dev) or it does not look like one, 16 hex
// digits: 8 drawn from the CSPRNG once per isolate (and again every 2^32 ids) and an 8-digit
// counter. Ids only need to be unique, not secret: drawing 8 random bytes per request cost the
// cheapest refusals several percent of their throughput.
const RAY = /^[0-9A-Za-z-]{1,64}$/;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
let RID_PREFIX = '';
let RID_N = 0;
function requestId(h) {
  const ray = h.get('cf-ray');
  if (ray !== null && RAY.test(ray)) return ray;
  if (RID_N === 0) {
    const b = crypto.getRandomValues(new Uint8Array(4));
    RID_PREFIX = HEX[b[0]] + HEX[b[1]] + HEX[b[2]] + HEX[b[3]];
  }
  const n = RID_N;
  RID_N = (RID_N + 1) >>> 0;
  return RID_PREFIX + HEX[n >>> 24] + HEX[(n >>> 16) & 255] + HEX[(n >>> 8) & 255] + HEX[n & 255];
}

// Request headers the origin never gets from the client. Identity, forwarding and request-id
// headers are keyward's to set; URL and method overrides would let an origin serve another route or method
// than the one keyward authorised. Names are compared with '_' read as '-', since CGI, WSGI, PHP
// and Rack origins read them so (X_Keyward_Scopes arrives as HTTP_X_KEYWARD_SCOPES).
const DROP = new Set(['authorization', 'host', 'forwarded', 'x-real-ip', 'x-client-ip', 'true-client-ip',
  'x-original-url', 'x-rewrite-url', 'x-original-uri', 'x-http-method-override', 'x-http-method',
  'x-method-override', 'x-original-method', 'x-request-id']);
function dropped(k) {
  const n = k.indexOf('_') < 0 ? k : k.replaceAll('_', '-');
  return DROP.has(n) || n.startsWith('x-keyward-') || n.startsWith('x-forwarded-');
}

export function kw_forward(req, identity, signature, rid, route) {
  const u = req.url;
  const start = u.indexOf('/', u.indexOf('//') + 2);
  // identity: key id, workspace, scopes, environment, groups, one per line ('' on a public route).
  const g = identity.lastIndexOf('\n');
  const c = identity.lastIndexOf('\n', g - 1);
  const test = TEST_ORIGIN !== '' && g - c === 5 && identity.startsWith('test', c + 1);
  const target = (test ? TEST_ORIGIN : ORIGIN) + (start < 0 ? '/' : u.slice(start));
  const h = new Headers(req.headers);
  let drop;
  for (const k of h.keys()) if (dropped(k)) (drop ??= []).push(k);
  if (drop) for (const k of drop) h.delete(k);
  const ip = req.headers.get('cf-connecting-ip');
  if (ip !== null) h.set('x-forwarded-for', ip);
  if (identity !== '') {
    const a = identity.indexOf('\n');
    const b = identity.indexOf('\n', a + 1);
    h.set('x-keyward-key-id', identity.slice(0, a));
    h.set('x-keyward-workspace', identity.slice(a + 1, b));
    h.set('x-keyward-scopes', identity.slice(b + 1, c));
    h.set('x-keyward-environment', identity.slice(c + 1, g));
    h.set('x-keyward-groups', identity.slice(g + 1));
  }
  if (signature !== '') h.set('x-keyward-signature', signature);
  h.set('x-request-id', rid);
  const failed = (e) => {
    logLine('error', rid, route, identity, 'origin-unreachable', BAD_GATEWAY_STATUS, e);
    return new Response(BAD_GATEWAY.join(rid), {
      status: BAD_GATEWAY_STATUS,
      headers: { 'content-type': 'application/problem+json', 'x-request-id': rid },
    });
  };
  // The origin's answer goes back as it is: adding X-Request-Id to it would mean copying every
  // Response, measured at 4-10 % of the valid-key throughput (README "Request ids and logs").
  return fetch(target, { method: req.method, headers: h, body: req.body, redirect: 'manual' }).catch(failed);
}

// A key with a rate limit: the tier's binding decides first. A limiter that fails lets the request
// through (rate limiting is not authentication; the failure is logged).
export function kw_forward_limited(req, identity, signature, rid, route, env, binding, key, refusal) {
  const pass = (e) => {
    logLine('warn', rid, route, identity, 'ratelimiter-failed', 0, binding + ': ' + e);
    return kw_forward(req, identity, signature, rid, route);
  };
  let verdict;
  try {
    verdict = env[binding].limit({ key });
  } catch (e) {
    return pass(e);
  }
  return verdict.then((r) => (r.success ? kw_forward(req, identity, signature, rid, route) : kw_canned(refusal, rid)), pass);
}

function headersObject(flat) {
  const h = {};
  if (flat !== '') {
    const p = flat.split('\n');
    for (let i = 0; i + 1 < p.length; i += 2) h[p[i]] = p[i + 1];
  }
  return h;
}

export function kw_respond(status, body, headers) {
  return new Response(status === 204 ? null : body, { status, headers: headersObject(headers) });
}

// Answers the hot path gives often (the invalid-token 401, a tier's 429), kept on the JS side once
// per isolate: answering one then crosses only the request id.
const CANNED = [];
export function kw_can(status, body, headers) {
  const pairs = [];
  const p = headers === '' ? [] : headers.split('\n');
  for (let i = 0; i + 1 < p.length; i += 2) pairs.push([p[i], p[i + 1]]);
  CANNED.push({ status, parts: around(body), pairs });
  return CANNED.length - 1;
}

export function kw_canned(id, rid) {
  const c = CANNED[id];
  const headers = c.pairs.slice();
  headers.push(['x-request-id', rid]);
  return new Response(c.parts.join(rid), { status: c.status, headers });
}

export function kw_request_head(req) {
  const h = req.headers;
  const a = h.get('authorization');
  const head = requestId(h) + '\n' + req.method + '\n' + req.url + '\n' + (h.get('cf-connecting-ip') ?? '');
  return a === null ? head : head + '\n' + a;
}

export function kw_headers(req) {
  let out = '';
  for (const [k, v] of req.headers) out += k + '\n' + v + '\n';
  return out;
}

// Reads at most `limit` bytes (plus the chunk that passes it): a declared Content-Length above it
// is refused unread, and a stream (chunked, or lying about its length) is no longer read once it
// passes the limit.
// null = too large.
export async function kw_read_body(req, limit) {
  const len = req.headers.get('content-length');
  if (len !== null && !(Number(len) <= limit)) return null;
  if (req.body === null) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      // Stop reading without cancelling: the runtime discards the rest of the upload once the
      // 413 is sent, and a cancelled request stream makes local wrangler's proxy drop the
      // connection instead of delivering the answer.
      reader.releaseLock();
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn kw_forward(
        req: &web_sys::Request,
        identity: &str,
        signature: &str,
        rid: &str,
        route: u32,
    ) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(catch)]
    fn kw_forward_limited(
        req: &web_sys::Request,
        identity: &str,
        signature: &str,
        rid: &str,
        route: u32,
        env: &worker::Env,
        binding: &str,
        key: &str,
        refusal: u32,
    ) -> Result<JsValue, JsValue>;

    fn kw_can(status: u16, body: &str, headers: &str) -> u32;

    fn kw_canned(id: u32, rid: &str) -> web_sys::Response;

    fn kw_init(
        origin: &str,
        test_origin: &str,
        bad_gateway_status: u16,
        bad_gateway_body: &str,
        routes: &str,
        mark: &str,
    );

    fn kw_respond(status: u16, body: &str, headers: &str) -> web_sys::Response;

    fn kw_request_head(req: &web_sys::Request) -> String;

    fn kw_headers(req: &web_sys::Request) -> String;

    fn kw_read_body(req: &web_sys::Request, limit: u32) -> js_sys::Promise;
}

/// `REQUEST_ID\nMETHOD\nURL\nCLIENT[\nAUTHORIZATION]` (see http::head::Head) in one crossing and
/// one copy. The request id is Cloudflare's `cf-ray` when it has a ray id's shape, else 16 random
/// hex digits (crypto.getRandomValues).
pub fn request_head(req: &web_sys::Request) -> String {
    kw_request_head(req)
}

/// Every header as (lower-case name, value).
pub fn headers(req: &web_sys::Request) -> Vec<(String, String)> {
    let flat = kw_headers(req);
    let mut parts = flat.split('\n');
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
        out.push((k.to_owned(), v.to_owned()));
    }
    out
}

/// The body, or None when it is larger than `limit` bytes (never reads more than that).
pub async fn read_body(req: &web_sys::Request, limit: usize) -> Result<Option<Vec<u8>>, JsValue> {
    let v = wasm_bindgen_futures::JsFuture::from(kw_read_body(req, limit as u32)).await?;
    if v.is_null() {
        return Ok(None);
    }
    Ok(Some(js_sys::Uint8Array::new(&v).to_vec()))
}

/// Where a per-request value goes in a body kept on the JS side (`init`, `can`): JS puts the
/// request id there.
pub const REQUEST_ID_MARK: &str = "{request_id}";

/// Starts the origin fetch and returns its Promise<Response> unawaited: the runtime awaits it.
/// A failed fetch resolves to the 502 problem set by `init` (and is logged), not a rejection.
/// `identity` is KeyEntry::identity (`id\nworkspace\nscopes\nenvironment\ngroups`), or "" for a
/// public route (a test key's request goes to the test origin when one is set); `signature` the
/// X-Keyward-Signature value, or "" when signing is off; `rid` the request id (sent to the origin
/// as X-Request-Id); `route` the index of the matched route in the policy (for log lines).
pub fn forward(
    req: &web_sys::Request,
    identity: &str,
    signature: &str,
    rid: &str,
    route: u32,
) -> Result<JsValue, JsValue> {
    kw_forward(req, identity, signature, rid, route)
}

/// Like `forward`, after the key's rate-limit tier (binding `binding`, counted per key id) lets the
/// request through; otherwise resolves to the refusal given (a Response built by ApiError).
#[allow(clippy::too_many_arguments)]
pub fn forward_limited(
    req: &web_sys::Request,
    identity: &str,
    signature: &str,
    rid: &str,
    route: u32,
    env: &worker::Env,
    binding: &str,
    key: &str,
    refusal: Canned,
) -> Result<JsValue, JsValue> {
    kw_forward_limited(req, identity, signature, rid, route, env, binding, key, refusal.0)
}

/// A response kept on the JS side (see `can`).
#[derive(Clone, Copy)]
pub struct Canned(u32);

/// Keeps `r` on the JS side once per isolate; `canned` answers it without crossing more than the
/// request id, which replaces REQUEST_ID_MARK in its body and is added as X-Request-Id.
pub fn can(r: &crate::http::plain::Response, flat_headers: &str) -> Canned {
    Canned(kw_can(r.status, &r.body, flat_headers))
}

pub fn canned(c: Canned, rid: &str) -> web_sys::Response {
    kw_canned(c.0, rid)
}

/// Once per isolate: the origin, the origin for test keys ("" = the same), the answer JS gives on
/// its own when the origin fails (status and body decided by ApiError::BadGateway, with
/// REQUEST_ID_MARK where the request id goes), and the routes' patterns (`\n`-separated, in
/// policy order) that its log lines name.
pub fn init(origin: &str, test_origin: &str, bad_gateway_status: u16, bad_gateway_body: &str, routes: &str) {
    kw_init(
        origin,
        test_origin,
        bad_gateway_status,
        bad_gateway_body,
        routes,
        REQUEST_ID_MARK,
    );
}

/// `headers`: `name\nvalue\n...` pairs; status 204 sends no body.
pub fn respond(status: u16, body: &str, headers: &str) -> web_sys::Response {
    kw_respond(status, body, headers)
}
