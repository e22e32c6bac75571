//! The lookup hash. Keys carry 256 bits from a CSPRNG, so an unsalted SHA-256 is an adequate
//! storage identifier (unlike passwords, there is nothing to brute-force); it is also what lets
//! the edge find a record with one KV read.

use sha2::{Digest, Sha256};
use std::fmt;

use super::key::ApiKey;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    pub fn of(key: &ApiKey<'_>) -> KeyHash {
        KeyHash(Sha256::digest(key.expose_secret().as_bytes()).into())
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex: the KV key name and the D1 `hash` column.
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 15) as usize] as char);
        }
        s
    }

    pub fn from_hex(s: &str) -> Option<KeyHash> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return None;
        }
        let nib = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = (nib(b[2 * i])? << 4) | nib(b[2 * i + 1])?;
        }
        Some(KeyHash(out))
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256_of_the_full_key_as_documented() {
        // docs/key-format.md vector.
        let key = ApiKey::generate(&Default::default(), Default::default(), &[0u8; 32]);
        let h = KeyHash::of(&key);
        let expected = format!("{:x}", Sha256::digest(key.expose_secret().as_bytes()));
        assert_eq!(h.to_hex(), expected);
        assert_eq!(
            h.to_hex(),
            "cb8f98ad9d38a265b26438a2c60cb495eadf87f0dd5cb6506d7cb682dcce6604"
        );
    }

    #[test]
    fn hex_round_trips_and_rejects_bad_input() {
        let h = KeyHash::of(&ApiKey::generate(&Default::default(), Default::default(), &[7u8; 32]));
        assert_eq!(KeyHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(KeyHash::from_hex("abc"), None);
        assert_eq!(KeyHash::from_hex(&"G".repeat(64)), None);
        assert_eq!(KeyHash::from_hex(&h.to_hex().to_uppercase()), None);
    }
}
