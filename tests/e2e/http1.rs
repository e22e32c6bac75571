//! Minimal HTTP/1.1 message reading, shared by the echo origin (requests) and the raw client
//! (responses): a head, then a body framed by Content-Length, chunked encoding, or the end of stream.

use std::io::{self, BufRead, Read};

const MAX_LINE: usize = 64 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A start line and its header fields (names lowercased, order and duplicates kept).
#[derive(Debug, Clone)]
pub struct Head {
    pub start_line: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn is_chunked(&self) -> bool {
        self.get("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// One CRLF- (or LF-) terminated line without its terminator; None at end of stream.
fn read_line(r: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r.by_ref().take(MAX_LINE as u64).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(invalid("line too long or truncated".into()));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|e| invalid(format!("non-UTF-8 line: {e}")))
}

/// Reads a message head. Ok(None) when the stream ends before a new message starts.
pub fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    let start_line = loop {
        match read_line(r)? {
            None => return Ok(None),
            Some(line) if line.is_empty() => continue, // tolerated between messages
            Some(line) => break line,
        }
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?.ok_or_else(|| invalid("stream ended inside a head".into()))?;
        if line.is_empty() {
            return Ok(Some(Head { start_line, headers }));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
}

/// Reads the body that follows `head`. Without Content-Length or chunked encoding the body is empty,
/// unless `until_eof` (a response on a closing connection), then it is the rest of the stream.
pub fn read_body(r: &mut impl BufRead, head: &Head, until_eof: bool) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if head.is_chunked() {
        loop {
            let line = read_line(r)?.ok_or_else(|| invalid("stream ended inside a chunk".into()))?;
            let size_hex = line.split(';').next().unwrap_or_default().trim();
            let size =
                usize::from_str_radix(size_hex, 16).map_err(|_| invalid(format!("bad chunk size line {line:?}")))?;
            if size == 0 {
                // Trailer fields, then the empty line.
                while read_line(r)?.is_some_and(|l| !l.is_empty()) {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY {
                return Err(invalid("body too large".into()));
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            read_line(r)?; // the CRLF closing the chunk
        }
    } else if let Some(len) = head.get("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| invalid(format!("bad content-length {len:?}")))?;
        if len > MAX_BODY {
            return Err(invalid("body too large".into()));
        }
        body.resize(len, 0);
        r.read_exact(&mut body)?;
        Ok(body)
    } else if until_eof {
        r.take(MAX_BODY as u64).read_to_end(&mut body)?;
        Ok(body)
    } else {
        Ok(body)
    }
}
