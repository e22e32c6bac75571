//! `ApiKey::parse` on arbitrary text, and `generate` -> `parse` on arbitrary 32-byte seeds.
#![no_main]

use keyward::core::hash::KeyHash;
use keyward::core::key::{ApiKey, BODY_LEN, CHECK_LEN, KEY_LEN, PREFIX, RANDOM_BYTES};
use libfuzzer_sys::fuzz_target;

fn check_parsed(s: &str, key: &ApiKey<'_>) {
    // A parsed key is the input itself, of the documented shape.
    assert_eq!(key.expose_secret(), s);
    assert_eq!(s.len(), KEY_LEN);
    assert!(s.starts_with(PREFIX));
    let body = &s[PREFIX.len()..PREFIX.len() + BODY_LEN];
    assert!(body.bytes().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(s.as_bytes()[KEY_LEN - CHECK_LEN - 1], b'_');

    // The preview and Debug show the prefix and the last 4 characters (checksum digits) only:
    // nothing of the 43-character secret body.
    let preview = key.preview();
    assert_eq!(preview, format!("{PREFIX}...{}", &s[KEY_LEN - 4..]));
    assert!(!preview.contains(body));
    assert!(
        KEY_LEN - 4 > PREFIX.len() + BODY_LEN,
        "preview digits come from the checksum"
    );
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
        let key = ApiKey::generate(&a);
        let s = key.expose_secret().to_owned();
        let parsed = ApiKey::parse(&s).unwrap_or_else(|e| panic!("generated key {s:?} does not parse: {e:?}"));
        assert!(parsed == key);
        check_parsed(&s, &parsed);

        // Different bytes, different keys (the encoding is injective).
        if data.len() >= 2 * RANDOM_BYTES {
            let mut b = [0u8; RANDOM_BYTES];
            b.copy_from_slice(&data[RANDOM_BYTES..2 * RANDOM_BYTES]);
            let other = ApiKey::generate(&b);
            assert_eq!(a == b, other.expose_secret() == s, "{a:?} / {b:?}");
        }
    }
});
