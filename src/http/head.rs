//! The request line and credentials, as read from JS in one crossing.

/// The request as the gateway sees it, read in one JS crossing: one buffer, sliced.
/// Layout: `METHOD\nURL\nCLIENT[\nAUTHORIZATION]`, where CLIENT is `CF-Connecting-IP` (empty when
/// absent). None of them can contain a newline (methods are tokens, URLs are parsed, header
/// values forbid it). The runtime's buffer starts with one more line, the request id
/// (`Head::with_request_id`).
pub struct Head {
    buf: String,
    /// End of the request id line (0 when there is none), and where the method starts.
    id_end: usize,
    method_start: usize,
    method_end: usize,
    url_end: usize,
    client_end: usize,
}

impl Head {
    pub fn new(buf: String) -> Head {
        Head::parse(buf, false)
    }

    /// `REQUEST_ID\nMETHOD\nURL\nCLIENT[\nAUTHORIZATION]`, as js::request_head reads it.
    pub fn with_request_id(buf: String) -> Head {
        Head::parse(buf, true)
    }

    fn parse(buf: String, with_id: bool) -> Head {
        let next = |from: usize| {
            buf.get(from..)
                .and_then(|rest| rest.find('\n'))
                .map_or(buf.len(), |i| from + i)
        };
        let id_end = if with_id { next(0) } else { 0 };
        let method_start = if with_id { id_end + 1 } else { 0 };
        let method_end = next(method_start);
        let url_end = next(method_end + 1);
        let client_end = next(url_end + 1);
        Head {
            id_end,
            method_start,
            method_end,
            url_end,
            client_end,
            buf,
        }
    }
    /// keyward's id for this request (see js::request_head); empty for `Head::new`.
    pub fn request_id(&self) -> &str {
        &self.buf[..self.id_end]
    }
    pub fn method(&self) -> &str {
        self.buf.get(self.method_start..self.method_end).unwrap_or("")
    }
    pub fn url(&self) -> &str {
        self.buf.get(self.method_end + 1..self.url_end).unwrap_or("")
    }
    /// The client address the platform saw (`CF-Connecting-IP`), never a client-chosen header.
    pub fn client(&self) -> &str {
        self.buf.get(self.url_end + 1..self.client_end).unwrap_or("")
    }
    pub fn auth(&self) -> Option<&str> {
        self.buf.get(self.client_end + 1..)
    }
    pub fn path(&self) -> &str {
        crate::http::body::path_of(self.url())
    }
    /// Path and query, exactly as forwarded to the origin (what kw_forward appends to ORIGIN_URL).
    pub fn target(&self) -> &str {
        let u = self.url();
        let host_start = u.find("//").map_or(0, |i| i + 2);
        u[host_start..].find('/').map_or("/", |i| &u[host_start + i..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_method_url_and_optional_auth() {
        let h = Head::new("GET\nhttps://h/projects/1?x=1\n203.0.113.7\nBearer abc".into());
        assert_eq!(
            (h.method(), h.url(), h.auth(), h.path(), h.client()),
            (
                "GET",
                "https://h/projects/1?x=1",
                Some("Bearer abc"),
                "/projects/1",
                "203.0.113.7"
            )
        );
        assert_eq!(h.target(), "/projects/1?x=1");
        assert_eq!(Head::new("GET\nhttps://h\n".into()).target(), "/");
        let h = Head::new("POST\nhttps://h/deploy\n".into());
        assert_eq!(
            (h.method(), h.url(), h.auth(), h.client()),
            ("POST", "https://h/deploy", None, "")
        );
        let h = Head::new("GET\nhttps://h/\n\n".into());
        assert_eq!(
            h.auth(),
            Some(""),
            "an empty Authorization header is present, not absent"
        );
        let h = Head::new(String::new());
        assert_eq!((h.method(), h.url(), h.auth()), ("", "", None));
    }

    #[test]
    fn the_runtime_head_starts_with_the_request_id() {
        let h = Head::with_request_id("8c1f0e2d3a4b5c6d\nGET\nhttps://h/p?x=1\n203.0.113.7\nBearer abc".into());
        assert_eq!(
            (h.request_id(), h.method(), h.url(), h.client(), h.auth(), h.target()),
            (
                "8c1f0e2d3a4b5c6d",
                "GET",
                "https://h/p?x=1",
                "203.0.113.7",
                Some("Bearer abc"),
                "/p?x=1"
            )
        );
        let h = Head::with_request_id("id\nPOST\nhttps://h/deploy\n".into());
        assert_eq!(
            (h.request_id(), h.method(), h.client(), h.auth()),
            ("id", "POST", "", None)
        );
        assert_eq!(Head::new("GET\nhttps://h/\n".into()).request_id(), "");
        let h = Head::with_request_id("\nGET\nhttps://h/\n".into());
        assert_eq!((h.request_id(), h.method(), h.url()), ("", "GET", "https://h/"));
        let h = Head::with_request_id(String::new());
        assert_eq!((h.request_id(), h.method(), h.url(), h.auth()), ("", "", "", None));
    }
}
