//! The admin web page: three static files (web/admin/) compiled into the worker, so serving them
//! needs no asset binding, no build step and no storage. They are public (the page is useless
//! without a token, and every call it makes goes to the admin API, which checks the token), and
//! exactly these three paths are served: everything else under /admin/ stays the admin API's.
//!
//! Every answer carries a strict Content-Security-Policy: scripts, styles and connections only
//! from this origin, no inline code, nothing framed, no base or form target elsewhere. The page
//! keeps the admin token in sessionStorage, so what the policy buys is that nothing injected can
//! run and read it.

use crate::http::plain::Response;
use crate::http::problem::ApiError;

const INDEX_HTML: &str = include_str!("../../web/admin/index.html");
const ADMIN_JS: &str = include_str!("../../web/admin/admin.js");
const ADMIN_CSS: &str = include_str!("../../web/admin/admin.css");

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; \
require-trusted-types-for 'script'";

/// The page's files by path: (content type, body).
fn file(path: &str) -> Option<(&'static str, &'static str)> {
    match path {
        "/admin/" => Some(("text/html; charset=utf-8", INDEX_HTML)),
        "/admin/admin.js" => Some(("text/javascript; charset=utf-8", ADMIN_JS)),
        "/admin/admin.css" => Some(("text/css; charset=utf-8", ADMIN_CSS)),
        _ => None,
    }
}

pub fn is_page(path: &str) -> bool {
    file(path).is_some()
}

/// The answer for one of the page's paths (`is_page(path)` holds).
pub fn serve(method: &str, path: &str, realm: &str, request_id: &str) -> Response {
    let Some((content_type, body)) = file(path) else {
        return Response::problem_for(&ApiError::NotFound("admin route"), realm, request_id);
    };
    let body = match method {
        "GET" => body.to_owned(),
        "HEAD" => String::new(),
        _ => {
            // Response::problem sets Allow from the error.
            return Response::problem_for(&ApiError::MethodNotAllowed("GET, HEAD".into()), realm, request_id);
        }
    };
    Response {
        status: 200,
        headers: vec![
            ("content-type", content_type.into()),
            ("content-security-policy", CSP.into()),
            ("x-content-type-options", "nosniff".into()),
            ("referrer-policy", "no-referrer".into()),
            ("x-frame-options", "DENY".into()),
            ("cross-origin-opener-policy", "same-origin".into()),
            ("cross-origin-resource-policy", "same-origin".into()),
            // Revalidate each time: a deploy changes the files, and they are small.
            ("cache-control", "no-cache".into()),
        ],
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_exactly_three_files_with_their_types_and_the_policy() {
        for (path, ty) in [
            ("/admin/", "text/html"),
            ("/admin/admin.js", "text/javascript"),
            ("/admin/admin.css", "text/css"),
        ] {
            let r = serve("GET", path, "keyward", "");
            assert_eq!(r.status, 200, "{path}");
            assert!(r.header("content-type").unwrap().starts_with(ty), "{path}");
            assert_eq!(r.header("content-security-policy"), Some(CSP));
            assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
            assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
            assert!(!r.body.is_empty());
            let head = serve("HEAD", path, "keyward", "");
            assert_eq!((head.status, head.body.as_str()), (200, ""));
            assert_eq!(head.header("content-type"), r.header("content-type"));
        }
        for path in [
            "/admin",
            "/admin/index.html",
            "/admin/v1/keys",
            "/admin/admin.js/",
            "/admin//",
        ] {
            assert!(!is_page(path), "{path}");
        }
        let post = serve("POST", "/admin/", "keyward", "");
        assert_eq!((post.status, post.header("allow")), (405, Some("GET, HEAD")));
    }

    #[test]
    fn the_html_has_no_inline_script_or_style_and_no_other_origin() {
        let html = INDEX_HTML.to_ascii_lowercase();
        // Every <script> has a src; no style element or attribute; no event-handler attribute.
        assert_eq!(
            html.matches("<script").count(),
            html.matches("<script src=\"/admin/").count()
        );
        assert!(!html.contains("<style") && !html.contains(" style="));
        assert!(!html.contains(" onclick=") && !html.contains(" onload=") && !html.contains(" onsubmit="));
        for text in [INDEX_HTML, ADMIN_JS, ADMIN_CSS] {
            assert!(!text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"));
        }
        // The script never writes HTML from strings (require-trusted-types-for would refuse it).
        assert!(!ADMIN_JS.contains("innerHTML") && !ADMIN_JS.contains("outerHTML"));
        assert!(!ADMIN_JS.contains("localStorage"));
    }
}
