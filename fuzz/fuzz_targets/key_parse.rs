//! `ApiKey::parse` on arbitrary text, and `generate` -> `parse` on arbitrary 32-byte seeds.
#![no_main]

use keyward::core::hash::KeyHash;
use keyward::core::key::{key_len, ApiKey, Environment, KeyPrefix, BODY_LEN, CHECK_LEN, RANDOM_BYTES};
use libfuzzer_sys::fuzz_target;

fn check_parsed(s: &str, key: &ApiKey<'_>) {
    // A parsed key is the input itself, of the documented shape.
    assert_eq!(key.expose_secret(), s);
    let head = format!("{}_{}_", key.prefix(), key.environment().as_str());
    let key_len = key_len(key.prefix().len());
    assert_eq!(s.len(), key_len);
    assert!(s.starts_with(&head));
    assert!(KeyPrefix::new(key.prefix()).is_ok());
    let body = &s[head.len()..head.len() + BODY_LEN];
    assert!(body.bytes().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(s.as_bytes()[key_len - CHECK_LEN - 1], b'_');

    // The preview and Debug show the prefix, the environment and the last 4 characters (checksum
    // digits) only: nothing of the 43-character secret body.
    let preview = key.preview();
    assert_eq!(preview, format!("{head}...{}", &s[key_len - 4..]));
    assert!(!preview.contains(body));
    assert!(key_len - 4 > head.len() + BODY_LEN, "preview digits come from the checksum");
    let dbg = format!("{key:?}");
    assert!(!dbg.contains(body), "Debug leaks the secret: {dbg}");

    // Hashing works and its hex form round-trips.
    let h = KeyHash::of(key);
    let hex = h.to_hex();
    assert_eq!(hex.len(), 64);
    assert!(KeyHash::from_hex(&hex) == Some(h));
    assert!(KeyHash::of(&key.clone().into_owned()) == h);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(key) = ApiKey::parse(s) {
            check_parsed(s, &key);
        }
        // Also with whitespace around it, as a careless client would send it: never accepted.
        let padded = format!(" {s}");
        assert!(ApiKey::parse(&padded).is_err());
    }

    // Any 32 random bytes make a key that parses back to itself.
    if data.len() >= RANDOM_BYTES {
        let mut a = [0u8; RANDOM_BYTES];
        a.copy_from_slice(&data[..RANDOM_BYTES]);
        // The seed's last byte picks a prefix length and the environment.
        let prefix = KeyPrefix::new(&"kwabcdefghijklmn"[..1 + usize::from(a[31] % 16)]).unwrap();
        let env = if a[30] & 1 == 0 { Environment::Live } else { Environment::Test };
        let key = ApiKey::generate(&prefix, env, &a);
        let s = key.expose_secret().to_owned();
        let parsed = ApiKey::parse(&s).unwrap_or_else(|e| panic!("generated key {s:?} does not parse: {e:?}"));
        assert!(parsed == key);
        check_parsed(&s, &parsed);

        // Different bytes, different keys (the encoding is injective).
        if data.len() >= 2 * RANDOM_BYTES {
            let mut b = [0u8; RANDOM_BYTES];
            b.copy_from_slice(&data[RANDOM_BYTES..2 * RANDOM_BYTES]);
            let other = ApiKey::generate(&prefix, env, &b);
            assert_eq!(a == b, other.expose_secret() == s, "{a:?} / {b:?}");
        }
    }
});
