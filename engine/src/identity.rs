//! Identities: a person is an ed25519 public key, which is also their iroh node id.

use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;

use ed25519_dalek::VerifyingKey;

use serde::{Deserialize, Serialize};

/// The public half of a person's ed25519 key pair.
///
/// A `PublicKey` always holds a valid compressed Edwards point: the only ways to make one check
/// the bytes, so code that receives one never has to check it again.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "[u8; 32]", into = "[u8; 32]")]
pub struct PublicKey([u8; 32]);

/// Why some bytes or text are not a public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The 32 bytes are not a point on the ed25519 curve, or not its canonical encoding.
    #[error("the 32 bytes are not a valid ed25519 public key")]
    NotOnCurve,
    /// The point has a small order: signatures by it prove nothing, so it cannot be anyone.
    #[error("the key is a weak (small-order) ed25519 point and cannot identify anyone")]
    Weak,
    /// Text form: a key is written as 64 hexadecimal digits.
    #[error("a public key is 64 hexadecimal digits; got {len} characters")]
    BadLength {
        /// How many characters the text had.
        len: usize,
    },
    /// Text form: a character is not a hexadecimal digit.
    #[error("a public key is written in hexadecimal digits (0-9, a-f) only")]
    NotHex,
}

impl PublicKey {
    /// Length of a public key in bytes.
    pub const LEN: usize = 32;

    /// Checks that `bytes` are the canonical encoding of a valid ed25519 public key that is
    /// not a small-order point.
    ///
    /// The check decompresses the point, the costly part of using a key after the signature
    /// itself; a key that passed is remembered (per thread, [`KEY_CACHE_SLOTS`] of them), so the
    /// same person's next message, change or pose costs a comparison of 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, KeyError> {
        checked_key(bytes).map(|_| Self(bytes))
    }

    /// The key, decompressed, for checking signatures: from this thread's cache of checked keys,
    /// or decompressed once more (the cache may have let it go).
    pub fn verifying_key(&self) -> VerifyingKey {
        // Every `PublicKey` passed the check, so it cannot fail here; the fallback keeps the
        // promise without a panic.
        checked_key(self.0).unwrap_or_else(|_| VerifyingKey::from(curve25519_dalek::EdwardsPoint::default()))
    }

    /// The public key of a secret key seed. Used by tests and by callers that hold the secret.
    pub fn from_secret_seed(seed: &[u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(seed).verifying_key().to_bytes())
    }

    /// The 32 bytes of the key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first eight hexadecimal digits: enough to tell people apart on screen.
    pub fn short(&self) -> String {
        self.to_string()[..8].to_owned()
    }
}

/// How many checked keys each thread remembers: a thousand people around, with room to spare.
pub const KEY_CACHE_SLOTS: usize = 2048;

thread_local! {
    /// Keys that passed [`check_key`], each in the slot its bytes pick (a direct-mapped cache: a
    /// newcomer takes the slot over). Only keys that passed are ever stored, and a lookup compares
    /// all 32 bytes, so a hit is exactly as good as checking again.
    static KEY_CACHE: RefCell<Vec<Option<VerifyingKey>>> = const { RefCell::new(Vec::new()) };
}

/// The slot of a key's bytes. Keys are points' y coordinates, already spread over all values; a
/// multiply mixes in more of the bytes. Anyone can make keys that share a slot, which costs them
/// and their victims only the decompression the cache would have saved.
fn slot(bytes: &[u8; 32]) -> usize {
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[..8]);
    let mixed = u64::from_le_bytes(low).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> 53) as usize % KEY_CACHE_SLOTS
}

/// The decompressed key for `bytes`, from the cache or checked now.
fn checked_key(bytes: [u8; 32]) -> Result<VerifyingKey, KeyError> {
    let slot = slot(&bytes);
    let cached = KEY_CACHE.with(|cache| {
        cache
            .try_borrow()
            .ok()
            .and_then(|cache| cache.get(slot).copied().flatten())
            .filter(|key| *key.as_bytes() == bytes)
    });
    if let Some(key) = cached {
        return Ok(key);
    }
    let key = check_key(bytes)?;
    KEY_CACHE.with(|cache| {
        if let Ok(mut cache) = cache.try_borrow_mut() {
            if cache.is_empty() {
                cache.resize(KEY_CACHE_SLOTS, None);
            }
            if let Some(entry) = cache.get_mut(slot) {
                *entry = Some(key);
            }
        }
    });
    Ok(key)
}

/// The full check, without the cache: a point on the curve, in its one canonical encoding, not
/// of small order.
fn check_key(bytes: [u8; 32]) -> Result<VerifyingKey, KeyError> {
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::NotOnCurve)?;
    // Decompression reads y modulo p, so y and y + p would name one point; only the encoding
    // that compressing the point gives back is a key. (`VerifyingKey::to_bytes` returns the
    // bytes it was given, so it cannot tell.)
    if key.to_edwards().compress().to_bytes() != bytes {
        return Err(KeyError::NotOnCurve);
    }
    if key.is_weak() {
        return Err(KeyError::Weak);
    }
    Ok(key)
}

impl TryFrom<[u8; 32]> for PublicKey {
    type Error = KeyError;

    fn try_from(bytes: [u8; 32]) -> Result<Self, KeyError> {
        Self::from_bytes(bytes)
    }
}

impl From<PublicKey> for [u8; 32] {
    fn from(key: PublicKey) -> Self {
        key.0
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.short())
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let n_chars = text.chars().count();
        if n_chars != 64 {
            return Err(KeyError::BadLength { len: n_chars });
        }
        // Digits only: `from_str_radix` alone would also take a sign such as "+f".
        if !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(KeyError::NotHex);
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            let digits = std::str::from_utf8(pair).map_err(|_| KeyError::NotHex)?;
            *byte = u8::from_str_radix(digits, 16).map_err(|_| KeyError::NotHex)?;
        }
        Self::from_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let key = PublicKey::from_secret_seed(&[7; 32]);
        let text = key.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<PublicKey>(), Ok(key));
        assert_eq!(key.short(), text[..8]);
    }

    #[test]
    fn rejects_bad_text() {
        assert_eq!("abc".parse::<PublicKey>(), Err(KeyError::BadLength { len: 3 }));
        let not_hex = "zz".repeat(32);
        assert_eq!(not_hex.parse::<PublicKey>(), Err(KeyError::NotHex));
        // Multi-byte characters must not slice through a character boundary.
        let wide = "é".repeat(32);
        assert_eq!(wide.parse::<PublicKey>(), Err(KeyError::BadLength { len: 32 }));
        assert_eq!("é".repeat(64).parse::<PublicKey>(), Err(KeyError::NotHex));
        // A sign is not a digit, even where the number parser would take it.
        let key = PublicKey::from_secret_seed(&[7; 32]).to_string();
        let signed = format!("+{}", &key[1..]);
        assert_eq!(signed.parse::<PublicKey>(), Err(KeyError::NotHex));
    }

    #[test]
    fn rejects_weak_keys() {
        // The identity point (y = 1) has order one: anyone could "sign" for it.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(PublicKey::from_bytes(identity), Err(KeyError::Weak));
    }

    /// 32 bytes whose y coordinate has no point on the curve (about half of all y do not).
    fn off_curve() -> [u8; 32] {
        (2u8..=255)
            .map(|y| {
                let mut bytes = [0u8; 32];
                bytes[0] = y;
                bytes
            })
            .find(|bytes| VerifyingKey::from_bytes(bytes).is_err())
            .expect("some small y is off the curve")
    }

    #[test]
    fn rejects_points_off_the_curve() {
        // About half of all y coordinates have no point on the curve; find one and check that
        // it is refused as bytes and as text.
        let off_curve = off_curve();
        assert_eq!(PublicKey::from_bytes(off_curve), Err(KeyError::NotOnCurve));
        let text: String = off_curve.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(text.parse::<PublicKey>(), Err(KeyError::NotOnCurve));
    }

    #[test]
    fn rejects_a_second_encoding_of_a_point() {
        // y below 19 and y + p both decompress to the same point; only the first is its key.
        let p_plus = |y: u8| {
            let mut bytes = [0xff; 32];
            bytes[0] = 0xed + y;
            bytes[31] = 0x7f;
            bytes
        };
        let (canonical, second) = (2u8..19)
            .map(|y| {
                let mut bytes = [0u8; 32];
                bytes[0] = y;
                (bytes, p_plus(y))
            })
            .find(|(canonical, _)| PublicKey::from_bytes(*canonical).is_ok())
            .expect("some y below 19 is a key");
        assert!(VerifyingKey::from_bytes(&second).is_ok(), "the second encoding decompresses");
        assert_eq!(PublicKey::from_bytes(second), Err(KeyError::NotOnCurve));
        // Still refused once the canonical one is in the cache.
        assert!(PublicKey::from_bytes(canonical).is_ok());
        assert_eq!(PublicKey::from_bytes(second), Err(KeyError::NotOnCurve));
    }

    #[test]
    fn the_cache_never_lets_a_bad_key_in() {
        let mut weak = [0u8; 32];
        weak[0] = 1;
        let off_curve = off_curve();
        for _ in 0..3 {
            assert_eq!(PublicKey::from_bytes(weak), Err(KeyError::Weak));
            assert_eq!(PublicKey::from_bytes(off_curve), Err(KeyError::NotOnCurve));
        }
        // Good keys that share a slot with each other: each lookup gives its own point.
        let keys: Vec<PublicKey> = (0..4 * KEY_CACHE_SLOTS as u32)
            .map(|n| {
                let mut seed = [0u8; 32];
                seed[..4].copy_from_slice(&n.to_le_bytes());
                PublicKey::from_secret_seed(&seed)
            })
            .collect();
        for _ in 0..2 {
            for key in &keys {
                let checked = PublicKey::from_bytes(*key.as_bytes()).expect("a real key");
                assert_eq!(checked.verifying_key().as_bytes(), key.as_bytes());
                assert_eq!(checked.verifying_key().to_edwards().compress().to_bytes(), *key.as_bytes());
            }
        }
    }

    #[test]
    fn serde_checks_the_point() {
        let key = PublicKey::from_secret_seed(&[1; 32]);
        let bytes = postcard::to_allocvec(&key).expect("encode");
        assert_eq!(postcard::from_bytes::<PublicKey>(&bytes).expect("decode"), key);
        let bad = off_curve();
        let bad_bytes = postcard::to_allocvec(&bad).expect("encode");
        assert!(postcard::from_bytes::<PublicKey>(&bad_bytes).is_err());
    }
}
