//! The request line and credentials, as read from JS in one crossing.

/// The request as the gateway sees it, read in one JS crossing: one buffer, sliced.
/// Layout: `METHOD\nURL\nCLIENT[\nAUTHORIZATION]`, where CLIENT is `CF-Connecting-IP` (empty when
/// absent). None of them can contain a newline (methods are tokens, URLs are parsed, header
/// values forbid it).
pub struct Head {
    buf: String,
    method_end: usize,
    url_end: usize,
    client_end: usize,
}

impl Head {
    pub fn new(buf: String) -> Head {
        let next = |from: usize| {
            buf.get(from..)
                .and_then(|rest| rest.find('\n'))
                .map_or(buf.len(), |i| from + i)
        };
        let method_end = next(0);
        let url_end = next(method_end + 1);
        let client_end = next(url_end + 1);
        Head {
            method_end,
            url_end,
            client_end,
            buf,
        }
    }
    pub fn method(&self) -> &str {
        &self.buf[..self.method_end]
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
}
