//! Server-side log lines, each one JSON object:
//! `{"level","request_id","route","outcome","key_id"?,"status"?,"detail"?}`.
//! `route` is a pattern (`GET /projects/*`, `POST /admin/v1/keys/{id}/revoke`), never a raw path;
//! `outcome` a fixed word (a problem slug such as `internal` or `store-unavailable`, or what failed,
//! such as `origin-unreachable`); `detail` the internal cause, which the caller's answer never
//! carries. Callers never pass a key secret or a request header (only ids, hash prefixes, storage
//! and runtime messages); the e2e suite greps wrangler's log for every secret it mints.
//!
//! Which request a line belongs to comes from the current [`Ctx`]: the glue enters one for each
//! request (`enter` around synchronous code, `scoped` around each future, since an isolate
//! interleaves requests at every await), so a store several calls deep logs with the request id,
//! route and key without having them passed down.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// Longest `detail` written (storage messages can quote long SQL).
const MAX_DETAIL: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// The request a log line is about.
#[derive(Debug, Default)]
pub struct Ctx {
    pub request_id: String,
    route: RefCell<String>,
    key_id: RefCell<Option<String>>,
}

impl Ctx {
    pub fn new(request_id: &str, route: String) -> Rc<Ctx> {
        Rc::new(Ctx {
            request_id: request_id.to_owned(),
            route: RefCell::new(route),
            key_id: RefCell::new(None),
        })
    }

    /// Once the request is matched to a more precise route than the one it started with.
    pub fn set_route(&self, route: &str) {
        route.clone_into(&mut self.route.borrow_mut());
    }

    /// Once the key the request is about is known (never its secret: the `key_...` id).
    pub fn set_key(&self, key_id: &str) {
        *self.key_id.borrow_mut() = Some(key_id.to_owned());
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Ctx>>> = const { RefCell::new(None) };
}

/// Makes `ctx` current until dropped (then the previous one is current again).
pub struct Entered(Option<Rc<Ctx>>);

pub fn enter(ctx: &Rc<Ctx>) -> Entered {
    Entered(CURRENT.with(|c| c.replace(Some(Rc::clone(ctx)))))
}

impl Drop for Entered {
    fn drop(&mut self) {
        let prev = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

/// `fut`, with `ctx` current during each of its polls (and only then).
pub fn scoped<F: Future>(ctx: &Rc<Ctx>, fut: F) -> Scoped<F> {
    Scoped {
        ctx: Rc::clone(ctx),
        fut: Box::pin(fut),
    }
}

pub struct Scoped<F> {
    ctx: Rc<Ctx>,
    fut: Pin<Box<F>>,
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _entered = enter(&self.ctx);
        self.fut.as_mut().poll(cx)
    }
}

/// The current request's context, if any.
pub fn current() -> Option<Rc<Ctx>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// One line about the current request.
pub struct Line<'a> {
    pub level: Level,
    pub outcome: &'a str,
    pub status: Option<u16>,
    pub detail: &'a str,
}

/// The JSON object of `line` in context `ctx` (no context: empty request id and route).
pub fn render(ctx: Option<&Ctx>, line: &Line<'_>) -> String {
    let s = |v: &str| serde_json::Value::from(v).to_string();
    let (rid, route) = match ctx {
        Some(c) => (s(&c.request_id), s(&c.route.borrow())),
        None => (s(""), s("")),
    };
    let mut out = format!(
        "{{\"level\":\"{}\",\"request_id\":{rid},\"route\":{route},\"outcome\":{}",
        line.level.as_str(),
        s(line.outcome)
    );
    if let Some(key) = ctx.and_then(|c| c.key_id.borrow().clone()) {
        out.push_str(&format!(",\"key_id\":{}", s(&key)));
    }
    if let Some(status) = line.status {
        out.push_str(&format!(",\"status\":{status}"));
    }
    if !line.detail.is_empty() {
        let detail: String = line.detail.chars().take(MAX_DETAIL).collect();
        out.push_str(&format!(",\"detail\":{}", s(&detail)));
    }
    out.push('}');
    out
}

pub fn write(line: &Line<'_>) {
    let text = render(current().as_deref(), line);
    #[cfg(target_arch = "wasm32")]
    match line.level {
        Level::Warn => worker::console_warn!("{}", text),
        Level::Error => worker::console_error!("{}", text),
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{text}");
}

/// Something failed that the caller may not see (a storage call, a binding, a background write).
pub fn error(outcome: &str, detail: &str) {
    write(&Line {
        level: Level::Error,
        outcome,
        status: None,
        detail,
    });
}

/// A degraded but still correct answer (e.g. a rate limiter that failed open).
pub fn warn(outcome: &str, detail: &str) {
    write(&Line {
        level: Level::Warn,
        outcome,
        status: None,
        detail,
    });
}

/// keyward answered a 5xx: the problem slug as outcome, and the internal detail when there is one.
pub fn answered(status: u16, slug: &str, detail: &str) {
    write(&Line {
        level: Level::Error,
        outcome: slug,
        status: Some(status),
        detail,
    });
}

/// The route of an admin or verify API request as a pattern: ids and names become `{id}` and
/// `{name}`, anything unknown `{other}`, so log lines never carry caller-chosen path text.
pub fn api_route(method: &str, path: &str) -> String {
    const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    let method = if METHODS.contains(&method) { method } else { "OTHER" };
    if path == "/v1/keys/verify" {
        return format!("{method} {path}");
    }
    let Some(rest) = path.strip_prefix("/admin/v1/") else {
        return format!("{method} /admin/{{other}}");
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let pattern = match segs.as_slice() {
        [r @ ("keys" | "presets" | "groups" | "audit" | "credits" | "reconcile" | "_conformance" | "_plans")] => {
            (*r).to_owned()
        }
        ["keys", _] => "keys/{id}".to_owned(),
        ["keys", _, a @ ("revoke" | "rotate" | "deactivate" | "reactivate")] => format!("keys/{{id}}/{a}"),
        ["presets", _] => "presets/{name}".to_owned(),
        ["groups", _] => "groups/{name}".to_owned(),
        _ => "{other}".to_owned(),
    };
    format!("{method} /admin/v1/{pattern}")
}

/// The key id in an admin path (`/admin/v1/keys/<id>[/...]`), when it has the shape of one.
pub fn key_in_path(path: &str) -> Option<&str> {
    let id = path.strip_prefix("/admin/v1/keys/")?.split('/').next()?;
    let ok = id.len() <= 64
        && id.starts_with("key_")
        && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    ok.then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> serde_json::Value {
        serde_json::from_str(s).expect("one JSON object")
    }

    #[test]
    fn a_line_is_one_json_object_with_the_context() {
        let ctx = Ctx::new("8c1f0e2d3a4b5c6d", "GET /projects/*".into());
        ctx.set_key("key_abc");
        let line = render(
            Some(&ctx),
            &Line {
                level: Level::Error,
                outcome: "internal",
                status: Some(500),
                detail: "stored data: \"quoted\"\nsecond line",
            },
        );
        assert!(!line.contains('\n'), "one line: {line}");
        let v = parse(&line);
        assert_eq!(v["level"], "error");
        assert_eq!(v["request_id"], "8c1f0e2d3a4b5c6d");
        assert_eq!(v["route"], "GET /projects/*");
        assert_eq!(v["outcome"], "internal");
        assert_eq!(v["key_id"], "key_abc");
        assert_eq!(v["status"], 500);
        assert_eq!(v["detail"], "stored data: \"quoted\"\nsecond line");

        let v = parse(&render(
            None,
            &Line {
                level: Level::Warn,
                outcome: "x",
                status: None,
                detail: &"d".repeat(5000),
            },
        ));
        assert_eq!(v["request_id"], "");
        assert!(v.get("key_id").is_none() && v.get("status").is_none());
        assert_eq!(v["detail"].as_str().unwrap().len(), MAX_DETAIL);
    }

    #[test]
    fn the_context_follows_each_future_across_awaits() {
        use std::task::{RawWaker, RawWakerVTable, Waker};
        // A future that is pending once, then reads the current context.
        struct Yield(bool);
        impl Future for Yield {
            type Output = Option<String>;
            fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
                if !self.0 {
                    self.0 = true;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Ready(current().map(|c| c.request_id.clone()))
            }
        }
        fn noop(_: *const ()) {}
        fn clone(p: *const ()) -> RawWaker {
            RawWaker::new(p, &VTABLE)
        }
        static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
        // SAFETY: the vtable's functions do nothing with the (null) data pointer.
        let waker = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) };
        let mut cx = Context::from_waker(&waker);

        let (a, b) = (Ctx::new("a", String::new()), Ctx::new("b", String::new()));
        let mut fa = scoped(&a, Yield(false));
        let mut fb = scoped(&b, Yield(false));
        assert!(Pin::new(&mut fa).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut fb).poll(&mut cx).is_pending());
        assert!(current().is_none(), "no context outside a poll");
        assert_eq!(Pin::new(&mut fa).poll(&mut cx), Poll::Ready(Some("a".into())));
        {
            let _e = enter(&b);
            assert_eq!(current().unwrap().request_id, "b");
        }
        assert!(current().is_none());
        assert_eq!(Pin::new(&mut fb).poll(&mut cx), Poll::Ready(Some("b".into())));
    }

    #[test]
    fn api_routes_are_patterns_without_caller_text() {
        let cases = [
            ("POST", "/admin/v1/keys", "POST /admin/v1/keys"),
            ("GET", "/admin/v1/keys/key_123", "GET /admin/v1/keys/{id}"),
            ("POST", "/admin/v1/keys/key_1/revoke", "POST /admin/v1/keys/{id}/revoke"),
            ("POST", "/admin/v1/keys/key_1/evil\"x", "POST /admin/v1/{other}"),
            (
                "DELETE",
                "/admin/v1/presets/my-preset",
                "DELETE /admin/v1/presets/{name}",
            ),
            ("GET", "/admin/v1/audit", "GET /admin/v1/audit"),
            ("POST", "/admin/v1/credits", "POST /admin/v1/credits"),
            ("DELETE", "/admin/v1/groups/team-a", "DELETE /admin/v1/groups/{name}"),
            ("BREW", "/admin/v1/whatever/1", "OTHER /admin/v1/{other}"),
            ("GET", "/admin/x", "GET /admin/{other}"),
            ("POST", "/v1/keys/verify", "POST /v1/keys/verify"),
        ];
        for (m, p, want) in cases {
            assert_eq!(api_route(m, p), want, "{m} {p}");
        }
        assert_eq!(key_in_path("/admin/v1/keys/key_ab12/rotate"), Some("key_ab12"));
        assert_eq!(key_in_path("/admin/v1/keys/key_a\"b"), None);
        assert_eq!(key_in_path("/admin/v1/keys"), None);
        assert_eq!(key_in_path("/admin/v1/presets/key_x"), None);
    }
}
