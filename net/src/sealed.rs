//! Bytes sealed under a passphrase, for what an export carries that must not be readable
//! without it (the identity key, the private rooms' keys).
//!
//! The layout, all integers little-endian (documented in the export's README too):
//! `SNSEAL01` (8 bytes) · Argon2id memory in KiB (u32) · passes (u32) · lanes (u32) · salt (16)
//! · nonce (24) · XChaCha20-Poly1305 ciphertext and tag. The key is Argon2id (v1.3) of the
//! passphrase and salt, 32 bytes; the 60 bytes before the ciphertext are its associated data,
//! so that no parameter can be changed unnoticed. The wallet seals its seed the same way
//! (`sanctuary_wallet::SealedSeed`), in a format of its own.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

/// The first bytes of sealed bytes.
pub const MAGIC: &[u8; 8] = b"SNSEAL01";
/// Magic, three parameters, salt and nonce.
const HEADER: usize = 8 + 12 + 16 + 24;

/// How hard the passphrase is stretched: 64 MiB and three passes of Argon2id (OWASP's minimum
/// is 19 MiB and two), a fraction of a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stretch {
    /// Memory, in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub passes: u32,
    /// Lanes.
    pub lanes: u32,
}

impl Default for Stretch {
    fn default() -> Self {
        Self { memory_kib: 64 * 1024, passes: 3, lanes: 1 }
    }
}

impl Stretch {
    /// Whether an honest file could have these (a hostile one must not make us spend gigabytes
    /// or minutes before the passphrase is even checked).
    fn reasonable(&self) -> bool {
        (8..=256 * 1024).contains(&self.memory_kib) && (1..=8).contains(&self.passes) && (1..=4).contains(&self.lanes)
    }
}

/// Why sealed bytes did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Not sealed bytes at all, or cut short.
    #[error("not sealed by Sanctuary (or cut short)")]
    NotSealed,
    /// Parameters no honest file has.
    #[error("unreasonable key-stretching parameters")]
    Unreasonable,
    /// The passphrase is wrong, or the bytes were changed.
    #[error("wrong passphrase (or the sealed bytes were changed)")]
    WrongPassphrase,
    /// The system's randomness or the stretching failed.
    #[error("cannot seal: {0}")]
    Failed(String),
}

/// `plain`, sealed under `passphrase` with the default [`Stretch`].
pub fn seal(plain: &[u8], passphrase: &str) -> Result<Vec<u8>, SealError> {
    seal_with(plain, passphrase, Stretch::default())
}

/// `plain`, sealed under `passphrase` with `stretch`.
pub fn seal_with(plain: &[u8], passphrase: &str, stretch: Stretch) -> Result<Vec<u8>, SealError> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut salt).map_err(|error| SealError::Failed(error.to_string()))?;
    getrandom::fill(&mut nonce).map_err(|error| SealError::Failed(error.to_string()))?;
    let mut sealed = Vec::with_capacity(HEADER + plain.len() + 16);
    sealed.extend_from_slice(MAGIC);
    for number in [stretch.memory_kib, stretch.passes, stretch.lanes] {
        sealed.extend_from_slice(&number.to_le_bytes());
    }
    sealed.extend_from_slice(&salt);
    sealed.extend_from_slice(&nonce);
    let key = key_of(passphrase, &salt, stretch)?;
    let cipher = XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(key.as_ref()));
    let ciphertext = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad: &sealed })
        .map_err(|_| SealError::Failed("encryption failed".into()))?;
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

/// The plain bytes of `sealed`, if `passphrase` opens them.
pub fn open(sealed: &[u8], passphrase: &str) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if sealed.len() < HEADER + 16 || &sealed[..8] != MAGIC {
        return Err(SealError::NotSealed);
    }
    let number = |at: usize| u32::from_le_bytes([sealed[at], sealed[at + 1], sealed[at + 2], sealed[at + 3]]);
    let stretch = Stretch { memory_kib: number(8), passes: number(12), lanes: number(16) };
    if !stretch.reasonable() {
        return Err(SealError::Unreasonable);
    }
    let salt: [u8; 16] = sealed[20..36].try_into().map_err(|_| SealError::NotSealed)?;
    let key = key_of(passphrase, &salt, stretch)?;
    let cipher = XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(key.as_ref()));
    cipher
        .decrypt(XNonce::from_slice(&sealed[36..HEADER]), Payload { msg: &sealed[HEADER..], aad: &sealed[..HEADER] })
        .map(Zeroizing::new)
        .map_err(|_| SealError::WrongPassphrase)
}

fn key_of(passphrase: &str, salt: &[u8; 16], stretch: Stretch) -> Result<Zeroizing<[u8; 32]>, SealError> {
    let params = Params::new(stretch.memory_kib, stretch.passes, stretch.lanes, Some(32))
        .map_err(|error| SealError::Failed(error.to_string()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|error| SealError::Failed(error.to_string()))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap stretching, for tests only.
    const QUICK: Stretch = Stretch { memory_kib: 64, passes: 1, lanes: 1 };

    #[test]
    fn sealed_bytes_open_with_their_passphrase_only() {
        let sealed = seal_with(b"a secret key", "correct horse", QUICK).expect("seals");
        assert!(!sealed.windows(6).any(|window| window == b"secret"), "nothing readable");
        assert_eq!(open(&sealed, "correct horse").expect("opens").as_slice(), b"a secret key");
        assert_eq!(open(&sealed, "wrong horse"), Err(SealError::WrongPassphrase));
        // Any byte changed, parameters included, is noticed.
        for at in [0, 9, 13, 25, 40, sealed.len() - 1] {
            let mut changed = sealed.clone();
            changed[at] ^= 1;
            assert!(open(&changed, "correct horse").is_err(), "byte {at}");
        }
        assert_eq!(open(&sealed[..HEADER + 15], "correct horse"), Err(SealError::NotSealed));
        assert_eq!(open(b"", "x"), Err(SealError::NotSealed));
    }

    #[test]
    fn hostile_parameters_are_refused_before_any_work() {
        let mut sealed = seal_with(b"x", "p", QUICK).expect("seals");
        sealed[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(open(&sealed, "p"), Err(SealError::Unreasonable));
        let mut sealed = seal_with(b"x", "p", QUICK).expect("seals");
        sealed[12..16].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(open(&sealed, "p"), Err(SealError::Unreasonable));
    }
}
