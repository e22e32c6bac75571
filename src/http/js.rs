//! The few places where one JavaScript call beats many wasm<->JS crossings. Measured on local
//! workerd (../shared notes, hot-path.md): building Headers and calling fetch field by field from
//! Rust costs ~50 us more per request than doing it in one JS call.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
let ORIGIN = '';
let BAD_GATEWAY = '';
export function kw_init(origin, badGateway) {
  ORIGIN = origin;
  BAD_GATEWAY = badGateway;
}

export function kw_forward(req, identity) {
  const u = req.url;
  const start = u.indexOf('/', u.indexOf('//') + 2);
  const target = ORIGIN + (start < 0 ? '/' : u.slice(start));
  const a = identity.indexOf('\n');
  const b = identity.indexOf('\n', a + 1);
  const h = new Headers(req.headers);
  h.delete('authorization');
  h.delete('host');
  let drop;
  for (const k of h.keys()) if (k.startsWith('x-keyward-')) (drop ??= []).push(k);
  if (drop) for (const k of drop) h.delete(k);
  h.set('x-keyward-key-id', identity.slice(0, a));
  h.set('x-keyward-workspace', identity.slice(a + 1, b));
  h.set('x-keyward-scopes', identity.slice(b + 1));
  return fetch(target, { method: req.method, headers: h, body: req.body, redirect: 'manual' }).catch((e) => {
    console.error('origin fetch failed: ' + e);
    return new Response(BAD_GATEWAY, { status: 502, headers: { 'content-type': 'application/problem+json' } });
  });
}


export function kw_respond(status, body, contentType, www, noStore) {
  const h = { 'content-type': contentType };
  if (www !== '') h['www-authenticate'] = www;
  if (noStore) h['cache-control'] = 'no-store';
  return new Response(status === 204 ? null : body, { status, headers: h });
}

export function kw_request_head(req) {
  const a = req.headers.get('authorization');
  return a === null ? req.method + '\n' + req.url : req.method + '\n' + req.url + '\n' + a;
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn kw_forward(req: &web_sys::Request, identity: &str) -> Result<JsValue, JsValue>;

    fn kw_init(origin: &str, bad_gateway_body: &str);

    fn kw_respond(status: u16, body: &str, content_type: &str, www: &str, no_store: bool) -> web_sys::Response;

    fn kw_request_head(req: &web_sys::Request) -> String;
}

/// `METHOD\nURL[\nAUTHORIZATION]` in one crossing and one string copy. None of the three can
/// contain a newline (methods are tokens, URLs are parsed, header values forbid it).
pub fn request_head(req: &web_sys::Request) -> String {
    kw_request_head(req)
}

/// Starts the origin fetch and returns its Promise<Response> unawaited: the runtime awaits it.
/// A failed fetch resolves to the 502 problem set by `init`, not a rejection.
/// `identity` is KeyEntry::identity (`id\nworkspace\nscopes`).
pub fn forward(req: &web_sys::Request, identity: &str) -> Result<JsValue, JsValue> {
    kw_forward(req, identity)
}

/// Once per isolate: the origin, and the body JS answers with on its own when the origin fails.
pub fn init(origin: &str, bad_gateway_body: &str) {
    kw_init(origin, bad_gateway_body);
}

/// `www` empty = no WWW-Authenticate header; status 204 sends no body.
pub fn respond(status: u16, body: &str, content_type: &str, www: &str, no_store: bool) -> web_sys::Response {
    kw_respond(status, body, content_type, www, no_store)
}
