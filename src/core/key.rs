//! The key format: `<prefix>_<live|test>_<43 base62 chars: 256 random bits>_<6 base62 chars: CRC-32>`,
//! `kw_live_...` by default. The prefix is per deployment (KEY_PREFIX) so an operator's keys say
//! whose they are (`acme_live_...`); the environment tells production keys from test keys at a
//! glance, to people and to secret scanners.
//!
//! The checksum covers everything before it (prefix and environment included), so the edge refuses
//! mistyped, made-up or re-labelled keys before any hashing or storage read. See docs/key-format.md.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The default deployment prefix.
pub const DEFAULT_PREFIX: &str = "kw";
/// A prefix is 1 to 16 characters: a lowercase letter, then lowercase letters and digits.
pub const MAX_PREFIX_LEN: usize = 16;
pub const BODY_LEN: usize = 43;
pub const CHECK_LEN: usize = 6;
/// `_live_` / `_test_` between the prefix and the body.
const ENV_LEN: usize = 6;
/// Length of a key with a prefix of `prefix_len` characters (58 for `kw`).
pub const fn key_len(prefix_len: usize) -> usize {
    prefix_len + ENV_LEN + BODY_LEN + 1 + CHECK_LEN
}
const MIN_KEY_LEN: usize = key_len(1);
const MAX_KEY_LEN: usize = key_len(MAX_PREFIX_LEN);
/// Bytes of CSPRNG output a key is made from.
pub const RANDOM_BYTES: usize = 32;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Live keys are for production traffic, test keys for development and CI; the origin learns
/// which (X-Keyward-Environment) and a route can accept only one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    Live,
    Test,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Live => "live",
            Environment::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<Environment> {
        match s {
            "live" => Some(Environment::Live),
            "test" => Some(Environment::Test),
            _ => None,
        }
    }

    pub fn is_live(&self) -> bool {
        *self == Environment::Live
    }
}

/// Why a string is not a keyward key. Callers at the edge collapse all of these into one
/// `invalid_token` answer; the variants exist for tests and docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormatError {
    Length,
    Prefix,
    Charset,
    Checksum,
}

/// A deployment's key prefix (`kw`, `acme`): validated once, when the config is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPrefix(Box<str>);

impl KeyPrefix {
    pub fn new(s: &str) -> Result<KeyPrefix, String> {
        if valid_prefix(s.as_bytes()) {
            Ok(KeyPrefix(s.into()))
        } else {
            Err(format!(
                "a key prefix is 1 to {MAX_PREFIX_LEN} characters, a lowercase letter then lowercase letters or digits; got {:?}",
                s.chars().take(40).collect::<String>()
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for KeyPrefix {
    fn default() -> KeyPrefix {
        KeyPrefix(DEFAULT_PREFIX.into())
    }
}

fn valid_prefix(b: &[u8]) -> bool {
    (1..=MAX_PREFIX_LEN).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// A syntactically valid key (prefix, environment, length, charset and checksum verified).
/// Borrowed when parsed from a request, owned when freshly generated.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey<'a> {
    secret: Cow<'a, str>,
    /// Length of the deployment prefix (`kw` = 2).
    prefix_len: u8,
    environment: Environment,
}

impl<'a> ApiKey<'a> {
    /// Builds a key from CSPRNG bytes supplied by the caller (the core does no I/O).
    pub fn generate(prefix: &KeyPrefix, environment: Environment, random: &[u8; RANDOM_BYTES]) -> ApiKey<'static> {
        let p = prefix.as_str();
        let mut s = String::with_capacity(key_len(p.len()));
        s.push_str(p);
        s.push('_');
        s.push_str(environment.as_str());
        s.push('_');
        s.push_str(&base62_fixed(random, BODY_LEN));
        let crc = crc32(s.as_bytes());
        s.push('_');
        s.push_str(&base62_fixed(&crc.to_be_bytes(), CHECK_LEN));
        ApiKey {
            secret: Cow::Owned(s),
            prefix_len: p.len() as u8,
            environment,
        }
    }

    /// Parses any well-formed key, whatever its prefix; the caller decides which prefixes its
    /// deployment accepts (`KeyFormat::parse`).
    pub fn parse(s: &'a str) -> Result<ApiKey<'a>, KeyFormatError> {
        let b = s.as_bytes();
        let n = b.len();
        if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&n) {
            return Err(KeyFormatError::Length);
        }
        // Read from the end, where every part has a fixed length: `_<check>`, `<body>`, `_<env>_`.
        let check_at = n - CHECK_LEN;
        let body_at = check_at - 1 - BODY_LEN;
        let prefix_len = body_at - ENV_LEN;
        let environment = match &b[prefix_len..body_at] {
            b"_live_" => Environment::Live,
            b"_test_" => Environment::Test,
            _ => return Err(KeyFormatError::Prefix),
        };
        if !valid_prefix(&b[..prefix_len]) || b[check_at - 1] != b'_' {
            return Err(KeyFormatError::Prefix);
        }
        let body = &b[body_at..check_at - 1];
        let check = &b[check_at..];
        if !body.iter().chain(check).all(u8::is_ascii_alphanumeric) {
            return Err(KeyFormatError::Charset);
        }
        let want = crc32(&b[..check_at - 1]);
        if decode_base62_u64(check) != Some(u64::from(want)) {
            return Err(KeyFormatError::Checksum);
        }
        Ok(ApiKey {
            secret: Cow::Borrowed(s),
            prefix_len: prefix_len as u8,
            environment,
        })
    }

    /// The full secret. Only the create/rotate response and the hash function may read it.
    pub fn expose_secret(&self) -> &str {
        &self.secret
    }

    /// The deployment prefix (`kw`).
    pub fn prefix(&self) -> &str {
        &self.secret[..usize::from(self.prefix_len)]
    }

    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// Display form kept in storage: prefix and environment plus the last 4 characters.
    pub fn preview(&self) -> String {
        let p = usize::from(self.prefix_len) + ENV_LEN;
        format!("{}...{}", &self.secret[..p], &self.secret[self.secret.len() - 4..])
    }

    pub fn into_owned(self) -> ApiKey<'static> {
        ApiKey {
            secret: Cow::Owned(self.secret.into_owned()),
            prefix_len: self.prefix_len,
            environment: self.environment,
        }
    }
}

impl fmt::Debug for ApiKey<'_> {
    // Redacted so a stray `{:?}` in a log line can never leak a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({})", self.preview())
    }
}

/// Which keys a deployment mints and accepts: KEY_PREFIX, plus earlier prefixes still accepted
/// after a rename (KEY_PREFIXES_ACCEPTED), so renaming does not invalidate issued keys. A
/// well-formed key with another prefix is refused like garbage, before any hashing or storage read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyFormat {
    pub mint: KeyPrefix,
    pub also_accepted: Vec<KeyPrefix>,
}

impl KeyFormat {
    pub fn parse<'a>(&self, s: &'a str) -> Result<ApiKey<'a>, KeyFormatError> {
        let key = ApiKey::parse(s)?;
        let p = key.prefix();
        if p == self.mint.as_str() || self.also_accepted.iter().any(|a| a.as_str() == p) {
            Ok(key)
        } else {
            Err(KeyFormatError::Prefix)
        }
    }

    pub fn generate(&self, environment: Environment, random: &[u8; RANDOM_BYTES]) -> ApiKey<'static> {
        ApiKey::generate(&self.mint, environment, random)
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

    const LIVE: Environment = Environment::Live;
    const KEY_LEN: usize = key_len(2);

    fn kw(env: Environment, random: &[u8; RANDOM_BYTES]) -> ApiKey<'static> {
        ApiKey::generate(&KeyPrefix::default(), env, random)
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn generated_keys_have_the_documented_shape_and_parse() {
        for prefix in ["kw", "a", "acme", "x1234567890abcde"] {
            let p = KeyPrefix::new(prefix).unwrap();
            for env in [Environment::Live, Environment::Test] {
                for seed in [0u8, 1, 0x7f, 0xff] {
                    let key = ApiKey::generate(&p, env, &[seed; RANDOM_BYTES]);
                    let s = key.expose_secret();
                    assert_eq!(s.len(), key_len(prefix.len()));
                    assert!(s.starts_with(&format!("{prefix}_{}_", env.as_str())));
                    assert!(s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'));
                    let back = ApiKey::parse(s).unwrap();
                    assert_eq!(back.expose_secret(), s);
                    assert_eq!(back.prefix(), prefix);
                    assert_eq!(back.environment(), env);
                }
            }
        }
    }

    #[test]
    fn golden_vectors_from_docs() {
        // Same vectors as docs/key-format.md.
        let zero = kw(LIVE, &[0u8; 32]);
        assert_eq!(
            zero.expose_secret(),
            "kw_live_0000000000000000000000000000000000000000000_0AwA6B"
        );
        let mut counting = [0u8; 32];
        counting.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        assert_eq!(
            kw(LIVE, &counting).expose_secret(),
            "kw_live_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf_0fcTwN"
        );
        let ff = kw(LIVE, &[0xffu8; 32]);
        assert_eq!(
            ff.expose_secret(),
            "kw_live_yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp1_2y8VWB"
        );
        assert_eq!(
            kw(Environment::Test, &[0u8; 32]).expose_secret(),
            "kw_test_0000000000000000000000000000000000000000000_0J8hip"
        );
        assert_eq!(
            ApiKey::generate(&KeyPrefix::new("acme").unwrap(), LIVE, &counting).expose_secret(),
            "acme_live_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf_3MpRGw"
        );
    }

    #[test]
    fn max_value_fits_in_43_digits() {
        // 62^43 > 2^256, so every 32-byte value has a 43-digit encoding.
        let key = kw(LIVE, &[0xff; 32]);
        assert!(!key.expose_secret()[8..].starts_with("0"));
    }

    #[test]
    fn parse_rejects_every_kind_of_garbage() {
        let good = kw(LIVE, &[42; 32]).expose_secret().to_owned();
        let cases: Vec<(String, KeyFormatError)> = vec![
            (String::new(), KeyFormatError::Length),
            (good[1..].to_owned(), KeyFormatError::Checksum),
            (good[3..].to_owned(), KeyFormatError::Length),
            (format!("{}{good}", "a".repeat(15)), KeyFormatError::Length),
            (good.replacen("kw_live_", "kw_prod_", 1), KeyFormatError::Prefix),
            (good.replacen("kw_live_", "KW_LIVE_", 1), KeyFormatError::Prefix),
            (good.replacen("kw_live_", "Kw_live_", 1), KeyFormatError::Prefix),
            (good.replacen("kw_live_", "1w_live_", 1), KeyFormatError::Prefix),
            (good.replacen("kw_live_", "k-_live_", 1), KeyFormatError::Prefix),
            (good.replacen("kw_live_", "k__live_", 1), KeyFormatError::Prefix),
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
    fn relabelling_a_key_fails_the_checksum() {
        // The checksum covers prefix and environment: a live key turned into a test key (or
        // given another deployment's prefix of the same length) is refused before any lookup.
        let good = kw(LIVE, &[42; 32]).expose_secret().to_owned();
        for relabelled in [
            good.replacen("kw_live_", "kw_test_", 1),
            good.replacen("kw_live_", "ab_live_", 1),
        ] {
            assert_eq!(ApiKey::parse(&relabelled).err(), Some(KeyFormatError::Checksum));
        }
    }

    #[test]
    fn any_single_character_change_fails_the_checksum() {
        let good = kw(LIVE, &[9; 32]).expose_secret().to_owned();
        for i in 8..KEY_LEN {
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
        let good = kw(LIVE, &[5; 32]).expose_secret().to_owned();
        let s = format!("{}zzzzzz", &good[..KEY_LEN - CHECK_LEN]);
        assert_eq!(ApiKey::parse(&s).err(), Some(KeyFormatError::Checksum));
    }

    #[test]
    fn debug_and_preview_never_show_the_secret() {
        for env in [Environment::Live, Environment::Test] {
            let key = kw(env, &[3; 32]);
            let secret = key.expose_secret();
            let dbg = format!("{key:?}");
            assert!(!dbg.contains(&secret[8..KEY_LEN - 4]));
            assert_eq!(
                key.preview(),
                format!("kw_{}_...{}", env.as_str(), &secret[KEY_LEN - 4..])
            );
            assert!(dbg.contains(&key.preview()));
        }
    }

    #[test]
    fn a_deployment_accepts_its_own_prefix_and_the_ones_it_keeps() {
        let acme = KeyPrefix::new("acme").unwrap();
        let old = KeyPrefix::new("kw").unwrap();
        let other = ApiKey::generate(&KeyPrefix::new("zeta").unwrap(), LIVE, &[1; 32]);
        let old_key = ApiKey::generate(&old, LIVE, &[1; 32]);
        let new_key = ApiKey::generate(&acme, Environment::Test, &[1; 32]);
        let strict = KeyFormat {
            mint: acme.clone(),
            also_accepted: vec![],
        };
        let renamed = KeyFormat {
            mint: acme,
            also_accepted: vec![old],
        };
        assert!(strict.parse(new_key.expose_secret()).is_ok());
        assert_eq!(
            strict.parse(old_key.expose_secret()).err(),
            Some(KeyFormatError::Prefix)
        );
        assert!(renamed.parse(old_key.expose_secret()).is_ok());
        assert_eq!(renamed.parse(other.expose_secret()).err(), Some(KeyFormatError::Prefix));
        assert!(renamed
            .generate(Environment::Test, &[1; 32])
            .expose_secret()
            .starts_with("acme_test_"));
    }

    #[test]
    fn prefixes_are_validated() {
        for ok in ["kw", "a", "acme", "a1", "abcdefghijklmnop"] {
            assert!(KeyPrefix::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1a", "Acme", "ac_me", "ac-me", "abcdefghijklmnopq", "é"] {
            assert!(KeyPrefix::new(bad).is_err(), "{bad}");
        }
    }
}
