//! The request line and credentials, as read from JS in one crossing.

/// The request as the gateway sees it, read in one JS crossing: one buffer, sliced.
pub struct Head {
    buf: String,
    method_end: usize,
    url_end: usize,
}

impl Head {
    pub fn new(buf: String) -> Head {
        let method_end = buf.find('\n').unwrap_or(buf.len());
        let url_end = buf[(method_end + 1).min(buf.len())..]
            .find('\n')
            .map_or(buf.len(), |i| method_end + 1 + i);
        Head {
            buf,
            method_end,
            url_end,
        }
    }
    pub fn method(&self) -> &str {
        &self.buf[..self.method_end]
    }
    pub fn url(&self) -> &str {
        self.buf.get(self.method_end + 1..self.url_end).unwrap_or("")
    }
    pub fn auth(&self) -> Option<&str> {
        self.buf.get(self.url_end + 1..)
    }
    pub fn path(&self) -> &str {
        crate::http::body::path_of(self.url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_method_url_and_optional_auth() {
        let h = Head::new("GET\nhttps://h/projects/1?x=1\nBearer abc".into());
        assert_eq!(
            (h.method(), h.url(), h.auth(), h.path()),
            ("GET", "https://h/projects/1?x=1", Some("Bearer abc"), "/projects/1")
        );
        let h = Head::new("POST\nhttps://h/deploy".into());
        assert_eq!((h.method(), h.url(), h.auth()), ("POST", "https://h/deploy", None));
        let h = Head::new("GET\nhttps://h/\n".into());
        assert_eq!(
            h.auth(),
            Some(""),
            "an empty Authorization header is present, not absent"
        );
        let h = Head::new(String::new());
        assert_eq!((h.method(), h.url(), h.auth()), ("", "", None));
    }
}
