//! The few places where one JavaScript call beats many wasm<->JS crossings. Measured on local
//! workerd (../shared notes, hot-path.md): building Headers and calling fetch field by field from
//! Rust costs ~50 us more per request than doing it in one JS call.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
export function kw_forward(req, origin, id, ws, scopes) {
  const u = req.url;
  const start = u.indexOf('/', u.indexOf('//') + 2);
  const target = origin + (start < 0 ? '/' : u.slice(start));
  const h = new Headers(req.headers);
  h.delete('authorization');
  h.delete('host');
  let drop;
  for (const k of h.keys()) if (k.startsWith('x-keyward-')) (drop ??= []).push(k);
  if (drop) for (const k of drop) h.delete(k);
  h.set('x-keyward-key-id', id);
  h.set('x-keyward-workspace', ws);
  h.set('x-keyward-scopes', scopes);
  return fetch(target, { method: req.method, headers: h, body: req.body, redirect: 'manual' });
}

export function kw_respond(status, body, contentType, www, noStore) {
  const h = { 'content-type': contentType };
  if (www !== undefined) h['www-authenticate'] = www;
  if (noStore) h['cache-control'] = 'no-store';
  return new Response(body, { status, headers: h });
}

export function kw_request_head(req) {
  return [req.method, req.url, req.headers.get('authorization')];
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn kw_forward(req: &web_sys::Request, origin: &str, id: &str, ws: &str, scopes: &str) -> Result<js_sys::Promise, JsValue>;

    fn kw_respond(status: u16, body: Option<String>, content_type: &str, www: Option<String>, no_store: bool) -> web_sys::Response;

    fn kw_request_head(req: &web_sys::Request) -> js_sys::Array;
}

/// Method, URL and Authorization header in one crossing.
pub fn request_head(req: &web_sys::Request) -> (String, String, Option<String>) {
    let a = kw_request_head(req);
    (
        a.get(0).as_string().unwrap_or_default(),
        a.get(1).as_string().unwrap_or_default(),
        a.get(2).as_string(),
    )
}

pub async fn forward(req: &web_sys::Request, origin: &str, id: &str, ws: &str, scopes: &str) -> Result<web_sys::Response, JsValue> {
    let promise = kw_forward(req, origin, id, ws, scopes)?;
    let res = wasm_bindgen_futures::JsFuture::from(promise).await?;
    Ok(res.unchecked_into())
}

pub fn respond(status: u16, body: Option<String>, content_type: &str, www: Option<String>, no_store: bool) -> web_sys::Response {
    kw_respond(status, body, content_type, www, no_store)
}
