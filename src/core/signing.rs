//! Signed identity for the origin: `X-Keyward-Signature: t=<unix seconds>,v1=<64 lowercase hex>`,
//! an HMAC-SHA-256 under `ORIGIN_SIGNING_SECRET` of
//!
//! ```text
//! v1\n<t>\n<METHOD>\n<path-and-query>\n<identity>
//! ```
//!
//! where `identity` is `KeyEntry::identity` (`key_id\nworkspace\nscopes\nenvironment\ngroups`, the
//! values of the five X-Keyward-* identity headers) or "" on a public route. No field can hold a newline
//! (methods are tokens, URL parsing drops raw newlines, key ids, workspaces and scopes are
//! validated), so the string splits back into its fields one way only, and a public request
//! (5 lines) can never pass for a keyed one (9 lines). docs/origin-signing.md is the specification for origins; the shared
//! vectors are examples/origin-verify/vectors.json.
//!
//! Pure: the caller passes the clock. `Signer` is built once per isolate; a request clones the
//! precomputed HMAC key state, hashes the fields in place and allocates only the header value.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Header name (lower case, as `Headers` stores it).
pub const HEADER: &str = "x-keyward-signature";

/// The replay window docs/origin-signing.md recommends to origins.
pub const DEFAULT_TOLERANCE_S: i64 = 300;

/// `t` in a header is 1 to 15 ASCII digits (enough until the year 30 million, and exact as a
/// JavaScript number).
const MAX_T_DIGITS: usize = 15;

const HEX: &[u8; 16] = b"0123456789abcdef";

#[derive(Clone)]
pub struct Signer {
    /// HMAC with the key already absorbed (the inner and outer padded blocks are hashed once).
    mac: HmacSha256,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// No header, no `t`, two `t`, a `t` that is not 1-15 digits, or no `v1`.
    Malformed,
    /// `|now - t|` is more than the tolerance: stale (possibly replayed) or from the future.
    OutsideWindow,
    /// No `v1` entry is the HMAC of this request under this secret.
    Mismatch,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// `secret`: the bytes of ORIGIN_SIGNING_SECRET as given (its UTF-8 text, not decoded).
    pub fn new(secret: &[u8]) -> Signer {
        // HMAC takes keys of any length (longer ones are hashed first): this cannot fail.
        let mac = <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
        Signer { mac }
    }

    /// The `X-Keyward-Signature` value for a forwarded request: `t=<unix_seconds>,v1=<hex>`.
    /// `path_and_query` is the request target exactly as forwarded (`/projects/42?x=1`);
    /// `identity` is `KeyEntry::identity`, or "" on a public route.
    pub fn signature(&self, unix_seconds: i64, method: &str, path_and_query: &str, identity: &str) -> String {
        let mut digits = [0u8; 20];
        let t = decimal(unix_seconds, &mut digits);
        let tag = self.keyed(t, method, path_and_query, identity).finalize().into_bytes();
        let mut out = String::with_capacity(2 + t.len() + 4 + 64);
        out.push_str("t=");
        out.push_str(t);
        out.push_str(",v1=");
        for b in tag {
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
        out
    }

    /// What an origin does (docs/origin-signing.md), for tests and reference: parse `header`,
    /// refuse it if `|unix_now - t| > tolerance_s`, then accept it if any `v1` entry (several are
    /// allowed) is the HMAC of this request under this secret, compared in constant time.
    /// Entries other than `t` and `v1` are ignored; `t` is signed as written.
    pub fn verify(
        &self,
        header: &str,
        unix_now: i64,
        tolerance_s: i64,
        method: &str,
        path_and_query: &str,
        identity: &str,
    ) -> Result<(), VerifyError> {
        let mut t = None;
        let mut has_v1 = false;
        for item in header.split(',') {
            let (k, v) = item.split_once('=').unwrap_or((item, ""));
            match k {
                "t" => {
                    let ok = !v.is_empty() && v.len() <= MAX_T_DIGITS && v.bytes().all(|c| c.is_ascii_digit());
                    if t.is_some() || !ok {
                        return Err(VerifyError::Malformed);
                    }
                    t = Some(v);
                }
                "v1" => has_v1 = true,
                _ => {}
            }
        }
        let t = t.ok_or(VerifyError::Malformed)?;
        if !has_v1 {
            return Err(VerifyError::Malformed);
        }
        // At most 15 digits: always fits.
        let t_num: i64 = t.parse().map_err(|_| VerifyError::Malformed)?;
        if unix_now.abs_diff(t_num) > tolerance_s.max(0).unsigned_abs() {
            return Err(VerifyError::OutsideWindow);
        }
        let mac = self.keyed(t, method, path_and_query, identity);
        let mut given = [0u8; 32];
        for item in header.split(',') {
            if let Some(hex) = item.strip_prefix("v1=") {
                if from_hex(hex, &mut given) && mac.clone().verify_slice(&given).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(VerifyError::Mismatch)
    }

    /// The HMAC state after absorbing the signed string, fed piece by piece (no concatenation).
    fn keyed(&self, t: &str, method: &str, path_and_query: &str, identity: &str) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(b"v1\n");
        mac.update(t.as_bytes());
        mac.update(b"\n");
        mac.update(method.as_bytes());
        mac.update(b"\n");
        mac.update(path_and_query.as_bytes());
        mac.update(b"\n");
        mac.update(identity.as_bytes());
        mac
    }
}

/// The exact string that is signed, built out for docs, logs and tests. Not used by `signature`,
/// which hashes the same bytes without building the string.
pub fn signed_string(unix_seconds: i64, method: &str, path_and_query: &str, identity: &str) -> String {
    format!("v1\n{unix_seconds}\n{method}\n{path_and_query}\n{identity}")
}

/// `n` in decimal into the end of `buf` (20 bytes hold `i64::MIN`), without allocating.
fn decimal(n: i64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    let mut u = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    // Only ASCII digits and '-' were written.
    std::str::from_utf8(&buf[i..]).unwrap_or("")
}

/// 64 lowercase hex digits into 32 bytes; anything else (upper case included) is false.
fn from_hex(s: &str, out: &mut [u8; 32]) -> bool {
    let b = s.as_bytes();
    if b.len() != 64 {
        return false;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    for (i, o) in out.iter_mut().enumerate() {
        match (nib(b[2 * i]), nib(b[2 * i + 1])) {
            (Some(hi), Some(lo)) => *o = (hi << 4) | lo,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::record::{sample_record, KeyEntry};
    use serde_json::Value;

    /// Shared with the JavaScript and Python verifiers' tests (and quoted by
    /// docs/origin-signing.md). The HMACs in it were computed with Python's hmac and hashlib (and
    /// two were cross-checked with `openssl dgst -sha256 -hmac`), independently of this code.
    const VECTORS: &str = include_str!("../../examples/origin-verify/vectors.json");

    fn vectors() -> Value {
        serde_json::from_str(VECTORS).unwrap()
    }

    fn s<'a>(v: &'a Value, k: &str) -> &'a str {
        v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}"))
    }

    fn secret() -> Signer {
        Signer::new(s(&vectors(), "secret").as_bytes())
    }

    /// What an origin rebuilds from the headers it received: "" when X-Keyward-Key-Id is absent.
    fn identity_from_headers(h: &Value) -> String {
        match h.get("x-keyward-key-id") {
            None => String::new(),
            Some(id) => {
                let get = |k: &str| h.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                format!(
                    "{}\n{}\n{}\n{}\n{}",
                    id.as_str().unwrap(),
                    get("x-keyward-workspace"),
                    get("x-keyward-scopes"),
                    get("x-keyward-environment"),
                    get("x-keyward-groups")
                )
            }
        }
    }

    const GET_IDENTITY: &str = "key_0123456789abcdef01234567\nacme\nevents:write projects:viewer\nlive\n";
    const T: i64 = 1_800_000_000;

    #[test]
    fn signs_the_documented_vectors() {
        let v = vectors();
        let signer = secret();
        let vecs = v["vectors"].as_array().unwrap();
        assert_eq!(vecs.len(), 5);
        for vec in vecs {
            let t = vec["t"].as_i64().unwrap();
            let (m, pq, id) = (s(vec, "method"), s(vec, "path_and_query"), s(vec, "identity"));
            assert_eq!(signed_string(t, m, pq, id), s(vec, "signed"), "{vec}");
            // The streamed HMAC is the HMAC of the documented string.
            let mut plain = HmacSha256::new_from_slice(b"whsec_test_secret").unwrap();
            plain.update(s(vec, "signed").as_bytes());
            let plain: [u8; 32] = plain.finalize().into_bytes().into();
            let plain_hex: String = plain.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(plain_hex, s(vec, "hmac_hex"));
            let header = signer.signature(t, m, pq, id);
            assert_eq!(header, s(vec, "header"));
            assert_eq!(header.capacity(), header.len(), "allocated once, exactly");
            assert_eq!(signer.verify(&header, t, DEFAULT_TOLERANCE_S, m, pq, id), Ok(()));
        }
        // Pasted here too so a change to the JSON file alone cannot go unnoticed.
        assert_eq!(
            signer.signature(T, "GET", "/projects/42?x=1", GET_IDENTITY),
            "t=1800000000,v1=bafb7df335dc3a54207248a15752ee5d13cce85a6e9bf8626508394cdd366bed"
        );
        assert_eq!(
            signer.signature(T, "GET", "/health", ""),
            "t=1800000000,v1=438919826c545617be525f70d4e35b029c18c76d95d1930ecec23ad53d4aa026"
        );
        assert_eq!(
            signer.signature(
                T,
                "POST",
                "/deploy",
                "key_0123456789abcdef01234567\nacme\ndeploy:trigger deployments:editor projects:viewer\nlive\n"
            ),
            "t=1800000000,v1=770b9f7879e7ed96be6c9282bd7a4b73c3b7d5b43d5b723bb83bd6734bd93ba1"
        );
    }

    #[test]
    fn vector_identities_are_what_key_entry_builds() {
        // The identity in the vectors is KeyEntry::identity for such a key (scopes canonical:
        // sorted, whatever order the record lists them in).
        let mut rec = sample_record(&["projects:viewer", "events:write"], None);
        rec.id = "key_0123456789abcdef01234567".into();
        assert_eq!(
            &*KeyEntry::new(rec.clone(), &Default::default()).unwrap().identity,
            GET_IDENTITY
        );
        rec.scopes = vec![
            "projects:viewer".into(),
            "deployments:editor".into(),
            "deploy:trigger".into(),
        ];
        assert_eq!(
            &*KeyEntry::new(rec, &Default::default()).unwrap().identity,
            s(&vectors()["vectors"][2], "identity")
        );
    }

    #[test]
    fn shared_request_table_matches_what_origins_must_decide() {
        let v = vectors();
        let tol = v["tolerance_seconds"].as_i64().unwrap();
        assert_eq!(tol, DEFAULT_TOLERANCE_S);
        let reqs = v["requests"].as_array().unwrap();
        assert!(reqs.len() >= 30);
        for r in reqs {
            let secrets: Vec<Signer> = match r.get("secrets") {
                Some(list) => list
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| Signer::new(x.as_str().unwrap().as_bytes()))
                    .collect(),
                None => vec![secret()],
            };
            let h = &r["headers"];
            let header = h.get(HEADER).and_then(Value::as_str).unwrap_or("");
            let identity = identity_from_headers(h);
            let now = r["now"].as_i64().unwrap();
            let ok = secrets.iter().any(|sg| {
                sg.verify(header, now, tol, s(r, "method"), s(r, "path_and_query"), &identity)
                    .is_ok()
            });
            assert_eq!(ok, r["valid"].as_bool().unwrap(), "{}", s(r, "name"));
        }
    }

    #[test]
    fn any_change_to_any_signed_field_fails() {
        let signer = secret();
        let (m, pq) = ("GET", "/projects/42?x=1");
        let header = signer.signature(T, m, pq, GET_IDENTITY);
        let check = |m: &str, pq: &str, id: &str| signer.verify(&header, T, 300, m, pq, id);
        assert_eq!(check(m, pq, GET_IDENTITY), Ok(()));
        // Every one-byte change of method, target and each identity line.
        let fields = [m, pq, GET_IDENTITY];
        for f in 0..3 {
            for i in 0..fields[f].len() {
                let mut bytes = fields[f].as_bytes().to_vec();
                bytes[i] = if bytes[i] == b'z' { b'y' } else { b'z' };
                let changed = String::from_utf8(bytes).unwrap();
                let mut args = fields;
                args[f] = &changed;
                assert_eq!(
                    check(args[0], args[1], args[2]),
                    Err(VerifyError::Mismatch),
                    "{changed:?}"
                );
            }
        }
        // Each identity line alone, and moving a byte across the line boundaries.
        for bad in [
            "key_0123456789abcdef01234568\nacme\nevents:write projects:viewer\nlive\n",
            "key_0123456789abcdef01234567\nacmf\nevents:write projects:viewer\nlive\n",
            "key_0123456789abcdef01234567\nacme\nevents:write projects:owner\nlive\n",
            "key_0123456789abcdef01234567\nacme\nevents:write\nlive\n",
            "key_0123456789abcdef01234567\nacme\n\nlive\n",
            "key_0123456789abcdef01234567\nacme\nevents:write projects:viewer\ntest\n",
            "key_0123456789abcdef01234567\nacme\nevents:write projects:viewer\n\n",
            "key_0123456789abcdef01234567\nacme\nevents:write projects:viewer\nlive\nops",
            "key_0123456789abcdef01234567\nacme\nevents:write projects:viewer\nlive",
            "key_0123456789abcdef01234567acme\n\nevents:write projects:viewer\nlive\n",
            "",
        ] {
            assert_eq!(check(m, pq, bad), Err(VerifyError::Mismatch), "{bad:?}");
        }
        // The target as a whole: path, query, query order, fragment-like suffix.
        for bad in [
            "/projects/42",
            "/projects/42?x=1&y=2",
            "/projects/42?x=1#",
            "/projects/42/?x=1",
            "/Projects/42?x=1",
        ] {
            assert_eq!(check(m, bad, GET_IDENTITY), Err(VerifyError::Mismatch), "{bad:?}");
        }
        // The encoding is unambiguous only because no field can hold a newline: a target that
        // held one could take over an identity line. URLs cannot (parsing drops raw newlines),
        // nor can methods, key ids, workspaces or scopes; this pins down why that matters.
        assert_eq!(
            check(
                m,
                "/projects/42?x=1\nkey_0123456789abcdef01234567",
                "acme\nevents:write projects:viewer\nlive\n"
            ),
            Ok(())
        );
        // t is signed: another t with the same v1 fails even inside the window.
        let v1 = header.split_once(",v1=").unwrap().1;
        for t in [T - 1, T + 1, T * 10] {
            let forged = format!("t={t},v1={v1}");
            assert_eq!(
                signer.verify(&forged, t, 300, m, pq, GET_IDENTITY),
                Err(VerifyError::Mismatch)
            );
        }
    }

    #[test]
    fn window_is_inclusive_and_symmetric() {
        let signer = secret();
        let h = signer.signature(T, "GET", "/health", "");
        let at = |now, tol| signer.verify(&h, now, tol, "GET", "/health", "");
        assert_eq!(at(T + 300, 300), Ok(()));
        assert_eq!(at(T - 300, 300), Ok(()));
        assert_eq!(at(T + 301, 300), Err(VerifyError::OutsideWindow));
        assert_eq!(at(T - 301, 300), Err(VerifyError::OutsideWindow));
        assert_eq!(at(T, 0), Ok(()));
        assert_eq!(at(T + 1, 0), Err(VerifyError::OutsideWindow));
        assert_eq!(at(T, -5), Ok(()), "a negative tolerance reads as 0");
        assert_eq!(at(i64::MIN, i64::MAX), Err(VerifyError::OutsideWindow), "no overflow");
        assert_eq!(at(i64::MAX, 300), Err(VerifyError::OutsideWindow));
    }

    #[test]
    fn rotation_and_multiple_v1_entries() {
        let new = secret();
        let old = Signer::new(b"whsec_old_secret");
        let args = ("GET", "/projects/42?x=1", GET_IDENTITY);
        let hn = new.signature(T, args.0, args.1, args.2);
        let ho = old.signature(T, args.0, args.1, args.2);
        let vn = hn.split_once(",v1=").unwrap().1;
        let vo = ho.split_once(",v1=").unwrap().1;
        let both = format!("t={T},v1={vo},v1={vn}");
        assert_eq!(new.verify(&both, T, 300, args.0, args.1, args.2), Ok(()));
        assert_eq!(old.verify(&both, T, 300, args.0, args.1, args.2), Ok(()));
        let with_junk = format!("t={T},v0=zz,v1=nothex,v1={vn},x");
        assert_eq!(new.verify(&with_junk, T, 300, args.0, args.1, args.2), Ok(()));
        // An origin holding both secrets accepts either signature.
        for h in [&hn, &ho] {
            assert!([&new, &old]
                .iter()
                .any(|sg| sg.verify(h, T, 300, args.0, args.1, args.2).is_ok()));
        }
        assert_eq!(
            new.verify(&ho, T, 300, args.0, args.1, args.2),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn malformed_headers() {
        let signer = secret();
        let h = signer.signature(T, "GET", "/health", "");
        let v1 = h.split_once(",v1=").unwrap().1;
        let check = |hdr: &str| signer.verify(hdr, T, 300, "GET", "/health", "");
        for bad in [
            String::new(),
            format!("v1={v1}"),
            format!("t={T}"),
            format!("t={T},t={T},v1={v1}"),
            format!("t=,v1={v1}"),
            format!("t=-{T},v1={v1}"),
            format!("t=+{T},v1={v1}"),
            format!("t=18e8,v1={v1}"),
            format!("t=1234567890123456,v1={v1}"),
            format!("t={T}, v1={v1}"),
            format!("t,v1={v1}"),
        ] {
            assert_eq!(check(&bad), Err(VerifyError::Malformed), "{bad:?}");
        }
        for bad in [
            format!("t={T},v1={}", v1.to_uppercase()),
            format!("t={T},v1={}", &v1[..63]),
            format!("t={T},v1={v1}0"),
            format!("t={T},v1="),
            format!("t=0{T},v1={v1}"),
            format!("t={T},v1= {v1}"),
        ] {
            assert_eq!(check(&bad), Err(VerifyError::Mismatch), "{bad:?}");
        }
    }

    #[test]
    fn timestamp_digits_and_secret_hygiene() {
        let signer = secret();
        for (t, want) in [
            (0, "0"),
            (7, "7"),
            (-1, "-1"),
            (1_800_000_000, "1800000000"),
            (i64::MAX, "9223372036854775807"),
            (i64::MIN, "-9223372036854775808"),
        ] {
            let mut buf = [0u8; 20];
            assert_eq!(decimal(t, &mut buf), want);
            let sig = signer.signature(t, "GET", "/", "");
            assert_eq!(sig.len(), 2 + want.len() + 4 + 64);
            assert!(sig.starts_with(&format!("t={want},v1=")));
            assert_eq!(sig.capacity(), sig.len());
        }
        assert_eq!(format!("{signer:?}"), "Signer(..)");
        // Any key length is accepted; keys longer than a block are hashed first (RFC 2104).
        let long = Signer::new(&[b'k'; 200]);
        assert_ne!(long.signature(T, "GET", "/", ""), signer.signature(T, "GET", "/", ""));
        let _ = Signer::new(b"");
    }

    #[test]
    fn docs_quote_the_verifiers_and_the_vectors_verbatim() {
        let doc = include_str!("../../docs/origin-signing.md");
        let js = include_str!("../../examples/origin-verify/verify.mjs");
        let py = include_str!("../../examples/origin-verify/verify.py");
        assert!(
            doc.contains(&format!("```js\n{js}```")),
            "docs/origin-signing.md must quote verify.mjs as it is"
        );
        assert!(
            doc.contains(&format!("```python\n{py}```")),
            "docs/origin-signing.md must quote verify.py as it is"
        );
        for vec in vectors()["vectors"].as_array().unwrap() {
            assert!(doc.contains(s(vec, "header")), "{}", s(vec, "name"));
            assert!(
                doc.contains(&s(vec, "signed").replace('\n', "\\n")),
                "{}",
                s(vec, "name")
            );
        }
        assert!(
            doc.contains(&signed_string(T, "GET", "/projects/42?x=1", GET_IDENTITY)),
            "worked example"
        );
    }

    /// `cargo test --release --lib signing::tests::cost -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn cost() {
        let signer = secret();
        let n = 100_000;
        let start = std::time::Instant::now();
        let mut total = 0usize;
        for i in 0..n {
            let s = signer.signature(T + i, "GET", "/projects/42?x=1", std::hint::black_box(GET_IDENTITY));
            total += s.len();
        }
        let el = start.elapsed();
        std::hint::black_box(total);
        println!(
            "signature(): {:.0} ns per call over {n} calls",
            el.as_nanos() as f64 / n as f64
        );
    }
}
