//! The key format: `kw_live_<43 base62 chars: 256 random bits>_<6 base62 chars: CRC-32>`.
//!
//! The checksum lets the edge refuse mistyped or made-up keys before any hashing or storage read,
//! and lets secret scanners recognise a leaked key by its shape. See docs/key-format.md.

use std::borrow::Cow;
use std::fmt;

pub const PREFIX: &str = "kw_live_";
pub const BODY_LEN: usize = 43;
pub const CHECK_LEN: usize = 6;
pub const KEY_LEN: usize = PREFIX.len() + BODY_LEN + 1 + CHECK_LEN;
/// Bytes of CSPRNG output a key is made from.
pub const RANDOM_BYTES: usize = 32;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a string is not a keyward key. Callers at the edge collapse all of these into one
/// `invalid_token` answer; the variants exist for tests and docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormatError {
    Length,
    Prefix,
    Charset,
    Checksum,
}

/// A syntactically valid key (prefix, length, charset and checksum verified).
/// Borrowed when parsed from a request, owned when freshly generated.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey<'a>(Cow<'a, str>);

impl<'a> ApiKey<'a> {
    /// Builds a key from CSPRNG bytes supplied by the caller (the core does no I/O).
    pub fn generate(random: &[u8; RANDOM_BYTES]) -> ApiKey<'static> {
        let mut s = String::with_capacity(KEY_LEN);
        s.push_str(PREFIX);
        s.push_str(&base62_fixed(random, BODY_LEN));
        let crc = crc32(s.as_bytes());
        s.push('_');
        s.push_str(&base62_fixed(&crc.to_be_bytes(), CHECK_LEN));
        ApiKey(Cow::Owned(s))
    }

    pub fn parse(s: &'a str) -> Result<ApiKey<'a>, KeyFormatError> {
        let b = s.as_bytes();
        if b.len() != KEY_LEN {
            return Err(KeyFormatError::Length);
        }
        if !s.starts_with(PREFIX) || b[KEY_LEN - CHECK_LEN - 1] != b'_' {
            return Err(KeyFormatError::Prefix);
        }
        let body = &b[PREFIX.len()..KEY_LEN - CHECK_LEN - 1];
        let check = &b[KEY_LEN - CHECK_LEN..];
        if !body.iter().chain(check).all(u8::is_ascii_alphanumeric) {
            return Err(KeyFormatError::Charset);
        }
        let want = crc32(&b[..KEY_LEN - CHECK_LEN - 1]);
        if decode_base62_u64(check) != Some(u64::from(want)) {
            return Err(KeyFormatError::Checksum);
        }
        Ok(ApiKey(Cow::Borrowed(s)))
    }

    /// The full secret. Only the create/rotate response and the hash function may read it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Display form kept in storage: prefix plus the last 4 characters.
    pub fn preview(&self) -> String {
        format!("{PREFIX}...{}", &self.0[KEY_LEN - 4..])
    }

    pub fn into_owned(self) -> ApiKey<'static> {
        ApiKey(Cow::Owned(self.0.into_owned()))
    }
}

impl fmt::Debug for ApiKey<'_> {
    // Redacted so a stray `{:?}` in a log line can never leak a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({})", self.preview())
    }
}

/// Big-endian base62 of `bytes`, left-padded with '0' to exactly `width` digits.
fn base62_fixed(bytes: &[u8], width: usize) -> String {
    let mut num: Vec<u8> = bytes.to_vec();
    let mut digits = vec![b'0'; width];
    for slot in digits.iter_mut().rev() {
        // One long division of the big-endian number by 62; the remainder is the next digit.
        let mut rem: u32 = 0;
        for byte in num.iter_mut() {
            let cur = (rem << 8) | u32::from(*byte);
            *byte = (cur / 62) as u8;
            rem = cur % 62;
        }
        *slot = ALPHABET[rem as usize];
    }
    debug_assert!(num.iter().all(|&b| b == 0), "width too small for the value");
    // Only ALPHABET bytes were written.
    String::from_utf8(digits).unwrap_or_default()
}

fn digit_value(c: u8) -> Option<u64> {
    match c {
        b'0'..=b'9' => Some(u64::from(c - b'0')),
        b'A'..=b'Z' => Some(u64::from(c - b'A') + 10),
        b'a'..=b'z' => Some(u64::from(c - b'a') + 36),
        _ => None,
    }
}

fn decode_base62_u64(s: &[u8]) -> Option<u64> {
    s.iter().try_fold(0u64, |acc, &c| Some(acc * 62 + digit_value(c)?))
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 (IEEE 802.3, as in zlib and PNG).
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn generated_keys_have_the_documented_shape_and_parse() {
        for seed in [0u8, 1, 0x7f, 0xff] {
            let key = ApiKey::generate(&[seed; RANDOM_BYTES]);
            let s = key.expose_secret();
            assert_eq!(s.len(), KEY_LEN);
            assert!(s.starts_with(PREFIX));
            assert!(s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'));
            assert_eq!(ApiKey::parse(s).map(|k| k.expose_secret().to_owned()), Ok(s.to_owned()));
        }
    }

    #[test]
    fn golden_vectors_from_docs() {
        // Same vectors as docs/key-format.md.
        let zero = ApiKey::generate(&[0u8; 32]);
        assert_eq!(
            zero.expose_secret(),
            "kw_live_0000000000000000000000000000000000000000000_0AwA6B"
        );
        let mut counting = [0u8; 32];
        counting.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        assert_eq!(
            ApiKey::generate(&counting).expose_secret(),
            "kw_live_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf_0fcTwN"
        );
        let ff = ApiKey::generate(&[0xffu8; 32]);
        assert_eq!(
            ff.expose_secret(),
            "kw_live_yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp1_2y8VWB"
        );
    }

    #[test]
    fn max_value_fits_in_43_digits() {
        // 62^43 > 2^256, so every 32-byte value has a 43-digit encoding.
        let key = ApiKey::generate(&[0xff; 32]);
        assert!(!key.expose_secret()[PREFIX.len()..].starts_with("0"));
    }

    #[test]
    fn parse_rejects_every_kind_of_garbage() {
        let good = ApiKey::generate(&[42; 32]).expose_secret().to_owned();
        let cases: Vec<(String, KeyFormatError)> = vec![
            (String::new(), KeyFormatError::Length),
            (good[..KEY_LEN - 1].to_owned(), KeyFormatError::Length),
            (format!("{good}x"), KeyFormatError::Length),
            (good.replacen("kw_live_", "kw_test_", 1), KeyFormatError::Prefix),
            (good.replacen("kw_live_", "KW_LIVE_", 1), KeyFormatError::Prefix),
            (
                {
                    let mut s = good.clone();
                    s.replace_range(KEY_LEN - 7..KEY_LEN - 6, "x");
                    s
                },
                KeyFormatError::Prefix,
            ),
            (
                {
                    let mut s = good.clone();
                    s.replace_range(10..11, "-");
                    s
                },
                KeyFormatError::Charset,
            ),
            (
                {
                    let mut s = good.clone();
                    s.replace_range(10..12, "é");
                    s
                },
                KeyFormatError::Charset,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(ApiKey::parse(&input).err(), Some(want), "input {input:?}");
        }
    }

    #[test]
    fn any_single_character_change_fails_the_checksum() {
        let good = ApiKey::generate(&[9; 32]).expose_secret().to_owned();
        for i in PREFIX.len()..KEY_LEN {
            if i == KEY_LEN - CHECK_LEN - 1 {
                continue;
            }
            let orig = good.as_bytes()[i];
            let repl = if orig == b'a' { 'b' } else { 'a' };
            let mut s = good.clone();
            s.replace_range(i..i + 1, &repl.to_string());
            assert_eq!(ApiKey::parse(&s).err(), Some(KeyFormatError::Checksum), "position {i}");
        }
    }

    #[test]
    fn checksum_overflowing_u32_is_rejected() {
        // "zzzzzz" = 62^6-1 > u32::MAX: must not wrap around into a match.
        let good = ApiKey::generate(&[5; 32]).expose_secret().to_owned();
        let s = format!("{}zzzzzz", &good[..KEY_LEN - CHECK_LEN]);
        assert_eq!(ApiKey::parse(&s).err(), Some(KeyFormatError::Checksum));
    }

    #[test]
    fn debug_and_preview_never_show_the_secret() {
        let key = ApiKey::generate(&[3; 32]);
        let secret = key.expose_secret();
        let dbg = format!("{key:?}");
        assert!(!dbg.contains(&secret[PREFIX.len()..KEY_LEN - 4]));
        assert_eq!(key.preview(), format!("kw_live_...{}", &secret[KEY_LEN - 4..]));
        assert!(dbg.contains(&key.preview()));
    }
}
