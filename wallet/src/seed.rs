//! The wallet's seed: a BIP39 mnemonic (with an optional BIP39 passphrase), kept on disk only
//! encrypted, and the BIP84 descriptors derived from it.
//!
//! At rest the seed is sealed with XChaCha20-Poly1305 under a key stretched from the person's
//! unlock passphrase by Argon2id (a fresh random salt and nonce each time it is written). A wrong
//! passphrase fails the AEAD tag and is reported as such; nothing of the seed is ever printed:
//! the types that hold it redact their `Debug` output and wipe their memory when dropped.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use bdk_wallet::KeychainKind;
use bdk_wallet::bitcoin::bip32::Xpriv;
use bdk_wallet::keys::bip39::{Language, Mnemonic};
use bdk_wallet::template::{Bip84, DescriptorTemplate};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::WalletNetwork;

/// Argon2id memory cost in KiB (64 MiB), time cost and lanes: OWASP's recommended minimum is
/// 19 MiB and two passes; unlocking takes a fraction of a second.
const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
const ARGON2_PASSES: u32 = 3;
const ARGON2_LANES: u32 = 1;
/// The format of [`SealedSeed`]; a file of another version is refused, not misread.
const SEALED_VERSION: u8 = 1;

/// Why a seed could not be made, read or unlocked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
    /// The words are not a valid BIP39 mnemonic.
    #[error("not a valid recovery phrase: {0}")]
    BadMnemonic(String),
    /// The unlock passphrase does not open this seed (or the file was altered).
    #[error("wrong passphrase (or the wallet file was changed)")]
    WrongPassphrase,
    /// The sealed seed is damaged or of another version.
    #[error("the wallet file is damaged or from another version: {0}")]
    Damaged(String),
    /// The system's random number generator failed.
    #[error("no randomness available: {0}")]
    Randomness(String),
    /// Deriving keys failed.
    #[error("cannot derive the wallet's keys: {0}")]
    Derivation(String),
}

/// A mnemonic and its optional BIP39 passphrase, in memory only while the wallet is unlocked.
#[derive(Clone)]
pub struct Seed {
    words: Zeroizing<String>,
    passphrase: Zeroizing<String>,
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(redacted)")
    }
}

/// What is sealed: the words and the BIP39 passphrase.
#[derive(Serialize, Deserialize)]
struct SeedPlain {
    words: String,
    passphrase: String,
}

impl Drop for SeedPlain {
    fn drop(&mut self) {
        self.words.zeroize();
        self.passphrase.zeroize();
    }
}

/// A seed as it is stored: encrypted, with what is needed to derive the key again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSeed {
    version: u8,
    memory_kib: u32,
    passes: u32,
    lanes: u32,
    salt: [u8; 16],
    nonce: [u8; 24],
    ciphertext: Vec<u8>,
}

fn random<const N: usize>() -> Result<[u8; N], SeedError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|error| SeedError::Randomness(error.to_string()))?;
    Ok(bytes)
}

fn stretch(
    passphrase: &str,
    salt: &[u8; 16],
    memory_kib: u32,
    passes: u32,
    lanes: u32,
) -> Result<Zeroizing<[u8; 32]>, SeedError> {
    let params =
        Params::new(memory_kib, passes, lanes, Some(32)).map_err(|error| SeedError::Damaged(error.to_string()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|error| SeedError::Damaged(error.to_string()))?;
    Ok(key)
}

impl Seed {
    /// A new 24-word mnemonic from the system's randomness, with an optional BIP39 passphrase.
    pub fn generate(bip39_passphrase: &str) -> Result<Self, SeedError> {
        let entropy = Zeroizing::new(random::<32>()?);
        let mnemonic = Mnemonic::from_entropy_in(Language::English, entropy.as_ref())
            .map_err(|error| SeedError::BadMnemonic(error.to_string()))?;
        Ok(Self {
            words: Zeroizing::new(mnemonic.to_string()),
            passphrase: Zeroizing::new(bip39_passphrase.to_owned()),
        })
    }

    /// Restores a seed from its words (12 to 24, any spacing and case) and BIP39 passphrase.
    pub fn restore(words: &str, bip39_passphrase: &str) -> Result<Self, SeedError> {
        let normalised: String = words.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" ");
        let mnemonic = Mnemonic::parse_in_normalized(Language::English, &normalised)
            .map_err(|error| SeedError::BadMnemonic(error.to_string()))?;
        Ok(Self {
            words: Zeroizing::new(mnemonic.to_string()),
            passphrase: Zeroizing::new(bip39_passphrase.to_owned()),
        })
    }

    /// The words, to show the person once so they can write them down.
    pub fn words(&self) -> &str {
        &self.words
    }

    /// The BIP32 master key for `network`.
    fn master(&self, network: WalletNetwork) -> Result<Xpriv, SeedError> {
        let mnemonic = Mnemonic::parse_in_normalized(Language::English, &self.words)
            .map_err(|error| SeedError::BadMnemonic(error.to_string()))?;
        let seed = Zeroizing::new(mnemonic.to_seed(self.passphrase.as_str()));
        Xpriv::new_master(network.to_bitcoin(), seed.as_ref()).map_err(|error| SeedError::Derivation(error.to_string()))
    }

    /// The 64 bytes the Lightning node's keys come from: the BIP39 seed (words and passphrase)
    /// hashed with BLAKE3 in key-derivation mode under a context of its own, read as 64 bytes.
    ///
    /// So one recovery phrase restores both wallets, yet the Lightning node never derives the
    /// BIP84 keys of the on-chain wallet (its own on-chain wallet would otherwise spend the same
    /// coins), and knowing the Lightning keys reveals nothing of the on-chain ones. The phrase
    /// brings back the node's identity and its on-chain funds; the state of open channels is not
    /// in it and needs the node's own directory (which the data export carries).
    pub fn lightning_entropy(&self) -> Result<Zeroizing<[u8; 64]>, SeedError> {
        let mnemonic = Mnemonic::parse_in_normalized(Language::English, &self.words)
            .map_err(|error| SeedError::BadMnemonic(error.to_string()))?;
        let seed = Zeroizing::new(mnemonic.to_seed(self.passphrase.as_str()));
        let mut entropy = Zeroizing::new([0u8; 64]);
        blake3::Hasher::new_derive_key("sanctuary 2026 lightning node seed v1")
            .update(seed.as_ref())
            .finalize_xof()
            .fill(entropy.as_mut());
        Ok(entropy)
    }

    /// The BIP84 (native segwit) descriptors, external and internal, with their private keys,
    /// as text for bdk.
    pub fn descriptors(&self, network: WalletNetwork) -> Result<(Zeroizing<String>, Zeroizing<String>), SeedError> {
        let master = self.master(network)?;
        let describe = |keychain: KeychainKind| -> Result<Zeroizing<String>, SeedError> {
            let (descriptor, key_map, _) = Bip84(master, keychain)
                .build(network.to_bitcoin().into())
                .map_err(|error| SeedError::Derivation(error.to_string()))?;
            Ok(Zeroizing::new(descriptor.to_string_with_secret(&key_map)))
        };
        Ok((describe(KeychainKind::External)?, describe(KeychainKind::Internal)?))
    }

    /// Seals the seed under `unlock_passphrase` (Argon2id, then XChaCha20-Poly1305).
    pub fn seal(&self, unlock_passphrase: &str) -> Result<SealedSeed, SeedError> {
        self.seal_with(unlock_passphrase, ARGON2_MEMORY_KIB, ARGON2_PASSES, ARGON2_LANES)
    }

    fn seal_with(
        &self,
        unlock_passphrase: &str,
        memory_kib: u32,
        passes: u32,
        lanes: u32,
    ) -> Result<SealedSeed, SeedError> {
        let salt = random::<16>()?;
        let nonce = random::<24>()?;
        let key = stretch(unlock_passphrase, &salt, memory_kib, passes, lanes)?;
        let plain = SeedPlain { words: self.words.to_string(), passphrase: self.passphrase.to_string() };
        let bytes =
            Zeroizing::new(postcard::to_allocvec(&plain).map_err(|error| SeedError::Damaged(error.to_string()))?);
        let cipher = XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(key.as_ref()));
        let ciphertext = cipher
            .encrypt(XNonce::from_slice(&nonce), bytes.as_slice())
            .map_err(|_| SeedError::Damaged("encryption failed".into()))?;
        Ok(SealedSeed { version: SEALED_VERSION, memory_kib, passes, lanes, salt, nonce, ciphertext })
    }
}

impl SealedSeed {
    /// Opens the seed with the unlock passphrase.
    pub fn unseal(&self, unlock_passphrase: &str) -> Result<Seed, SeedError> {
        if self.version != SEALED_VERSION {
            return Err(SeedError::Damaged(format!("version {} (this program reads {SEALED_VERSION})", self.version)));
        }
        // Refuse cost parameters no honest file has, before spending memory on them.
        if self.memory_kib > 4 * 1024 * 1024 || self.passes > 64 || self.lanes > 16 {
            return Err(SeedError::Damaged("unreasonable key-stretching parameters".into()));
        }
        let key = stretch(unlock_passphrase, &self.salt, self.memory_kib, self.passes, self.lanes)?;
        let cipher = XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(key.as_ref()));
        let bytes = Zeroizing::new(
            cipher
                .decrypt(XNonce::from_slice(&self.nonce), self.ciphertext.as_slice())
                .map_err(|_| SeedError::WrongPassphrase)?,
        );
        let plain: SeedPlain = postcard::from_bytes(&bytes).map_err(|error| SeedError::Damaged(error.to_string()))?;
        Seed::restore(&plain.words, &plain.passphrase)
    }

    /// The bytes to store.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Reads stored bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SeedError> {
        postcard::from_bytes(bytes).map_err(|error| SeedError::Damaged(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bdk_wallet::Wallet;

    const ABANDON: &str =
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

    fn first_addresses(seed: &Seed, network: WalletNetwork) -> (String, String) {
        let (external, internal) = seed.descriptors(network).expect("descriptors");
        let mut wallet = Wallet::create(external.to_string(), internal.to_string())
            .network(network.to_bitcoin())
            .create_wallet_no_persist()
            .expect("wallet");
        let receive = wallet.reveal_next_address(KeychainKind::External).address.to_string();
        let change = wallet.reveal_next_address(KeychainKind::Internal).address.to_string();
        (receive, change)
    }

    /// BIP84's own test vectors (mnemonic "abandon … about", no passphrase, mainnet).
    #[test]
    fn bip84_test_vectors() {
        let seed = Seed::restore(ABANDON, "").expect("valid");
        let (receive, change) = first_addresses(&seed, WalletNetwork::Mainnet);
        assert_eq!(receive, "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu");
        assert_eq!(change, "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el");
        // Signet and testnet use coin type 1 and tb1 addresses; the passphrase changes the keys.
        let (signet, _) = first_addresses(&seed, WalletNetwork::Signet);
        assert!(signet.starts_with("tb1q"));
        let (other, _) = first_addresses(&Seed::restore(ABANDON, "TREZOR").expect("valid"), WalletNetwork::Mainnet);
        assert_ne!(other, receive);
    }

    #[test]
    fn words_are_checked_and_normalised() {
        assert!(Seed::restore(&ABANDON.to_uppercase().replace(' ', "   "), "").is_ok());
        assert!(matches!(Seed::restore("abandon abandon", ""), Err(SeedError::BadMnemonic(_))));
        let wrong_checksum = ABANDON.replace("about", "abandon");
        assert!(matches!(Seed::restore(&wrong_checksum, ""), Err(SeedError::BadMnemonic(_))));
        let fresh = Seed::generate("").expect("random");
        assert_eq!(fresh.words().split(' ').count(), 24);
        assert_ne!(fresh.words(), Seed::generate("").expect("random").words());
    }

    #[test]
    fn sealing_round_trips_and_a_wrong_passphrase_is_refused() {
        let seed = Seed::restore(ABANDON, "extra words").expect("valid");
        // Cheap parameters keep the test quick; the real ones are checked by `seal`'s constants.
        let sealed = seed.seal_with("correct horse", 1024, 1, 1).expect("seals");
        let bytes = sealed.to_bytes();
        assert!(!bytes.windows(7).any(|window| window == b"abandon"), "no words in the clear");
        let opened = SealedSeed::from_bytes(&bytes).expect("reads").unseal("correct horse").expect("opens");
        assert_eq!(opened.words(), ABANDON);
        assert_eq!(
            first_addresses(&opened, WalletNetwork::Mainnet),
            first_addresses(&seed, WalletNetwork::Mainnet),
            "the BIP39 passphrase is sealed too"
        );
        assert_eq!(sealed.unseal("Correct horse").map(|_| ()), Err(SeedError::WrongPassphrase));
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert_eq!(tampered.unseal("correct horse").map(|_| ()), Err(SeedError::WrongPassphrase));
        assert!(matches!(SealedSeed::from_bytes(&[1, 2, 3]), Err(SeedError::Damaged(_))));
        // Each sealing uses a fresh salt and nonce.
        assert_ne!(seed.seal_with("correct horse", 1024, 1, 1).expect("seals"), sealed);
    }

    #[test]
    fn the_seed_never_shows_in_debug_output() {
        let seed = Seed::restore(ABANDON, "secret").expect("valid");
        assert_eq!(format!("{seed:?}"), "Seed(redacted)");
        let sealed = seed.seal_with("pw", 1024, 1, 1).expect("seals");
        assert!(!format!("{sealed:?}").contains("abandon"));
    }

    #[test]
    fn the_real_parameters_seal_and_open() {
        let seed = Seed::generate("").expect("random");
        let sealed = seed.seal("a long unlock passphrase").expect("seals");
        assert_eq!(sealed.memory_kib, ARGON2_MEMORY_KIB);
        assert_eq!(sealed.unseal("a long unlock passphrase").expect("opens").words(), seed.words());
    }
}
