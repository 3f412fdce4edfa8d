//! Sanctuary's self-custodial Bitcoin wallet on bdk.
//!
//! - The network ([`WalletNetwork`]): signet unless the person chooses otherwise, mainnet only
//!   when they say so explicitly.
//! - The seed ([`Seed`], [`SealedSeed`]): a BIP39 mnemonic with an optional passphrase, sealed
//!   at rest with Argon2id and XChaCha20-Poly1305, giving BIP84 descriptors.
//! - The wallet ([`Account`]): bdk persisted in a crash-safe changeset log ([`store`]), sends
//!   recorded before they are broadcast, the history and its CSV export.
//! - The chain source ([`Chain`]): an Esplora server, with the chain facts of trade payments
//!   checked against block headers and their proof of work.
//! - The wallet thread ([`WalletService`]) the client talks to, which also watches trade
//!   payments within fixed budgets (`watch`).
//! - The Lightning wallet ([`lightning::Lightning`]): an LDK node from the same seed, on the
//!   same chain source, for tips, stalls and paid hosting.
//! - With the `test-chain` feature, `testchain` serves an in-process regtest chain over
//!   Esplora's HTTP API, for tests only.

mod account;
mod chain;
pub mod lightning;
mod seed;
mod service;
pub mod store;
#[cfg(feature = "test-chain")]
pub mod testchain;
mod watch;

use std::fmt;
use std::str::FromStr;

pub use account::{
    Account, Balances, Draft, HistoryEntry, PayRequest, PayTarget, QrMatrix, Receive, SyncProgress, SyncReport,
    TxState, WalletError, utc_date,
};
pub use chain::{Chain, MAX_CHECKED_PAYMENTS, MAX_HISTORY_PAGES, check_header, merkle_root};
pub use seed::{SealedSeed, Seed, SeedError};
pub use service::{
    DEFAULT_TIP_LIMIT_SAT, LightningSettings, LnCommand, LnEvent, SALE_INVOICE_EXPIRY_SECS, ServiceConfig,
    WalletCommand, WalletEvent, WalletService, WalletStatus, trade_txid,
};
pub use zeroize::Zeroizing;

/// A bitcoin transaction id, for callers that do not depend on the bitcoin crate themselves.
pub use bdk_wallet::bitcoin::Txid as WalletTxid;

pub use bdk_wallet::bitcoin::Network;

/// Whether `word` (in any case) is one of the 2,048 words of BIP39's English list, the words
/// recovery phrases are made of: what the chat box uses to hold back a phrase typed by mistake.
pub fn is_recovery_word(word: &str) -> bool {
    bdk_wallet::keys::bip39::Language::English.find_word(&word.to_lowercase()).is_some()
}

/// A number with its thousands grouped: 1234567 → "1,234,567".
pub fn group_digits(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The Bitcoin network a person's wallet runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WalletNetwork {
    /// The default: test coins with real-world block timing.
    #[default]
    Signet,
    /// The public test network.
    Testnet,
    /// A private chain for development and tests.
    Regtest,
    /// Real money. Only chosen with [`MainnetConsent::Given`].
    Mainnet,
}

/// Whether the person has explicitly agreed to use real money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MainnetConsent {
    /// They have (for instance with a `--mainnet-i-understand` flag or a confirmed dialog).
    Given,
    /// They have not.
    NotGiven,
}

/// Why a network choice was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// The name is not a network we know.
    #[error("unknown Bitcoin network '{given}'; choose signet, testnet, regtest or mainnet")]
    Unknown {
        /// What was asked for.
        given: String,
    },
    /// Mainnet was asked for without explicit consent.
    #[error("mainnet moves real money: confirm it explicitly to use it (the default is signet)")]
    MainnetNeedsConsent,
}

impl WalletNetwork {
    /// Parses a network name, refusing mainnet unless `consent` is given.
    pub fn choose(name: &str, consent: MainnetConsent) -> Result<Self, NetworkError> {
        let network: WalletNetwork = name.parse()?;
        if network == WalletNetwork::Mainnet && consent != MainnetConsent::Given {
            return Err(NetworkError::MainnetNeedsConsent);
        }
        Ok(network)
    }

    /// The network as bdk and rust-bitcoin name it.
    pub fn to_bitcoin(self) -> Network {
        match self {
            WalletNetwork::Signet => Network::Signet,
            WalletNetwork::Testnet => Network::Testnet,
            WalletNetwork::Regtest => Network::Regtest,
            WalletNetwork::Mainnet => Network::Bitcoin,
        }
    }

    /// Whether coins on this network are real money.
    pub fn is_real_money(self) -> bool {
        self == WalletNetwork::Mainnet
    }
}

impl FromStr for WalletNetwork {
    type Err = NetworkError;

    fn from_str(text: &str) -> Result<Self, NetworkError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "signet" => Ok(WalletNetwork::Signet),
            "testnet" | "testnet3" => Ok(WalletNetwork::Testnet),
            "regtest" => Ok(WalletNetwork::Regtest),
            "mainnet" | "bitcoin" => Ok(WalletNetwork::Mainnet),
            _ => Err(NetworkError::Unknown { given: text.to_owned() }),
        }
    }
}

impl fmt::Display for WalletNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WalletNetwork::Signet => "signet",
            WalletNetwork::Testnet => "testnet",
            WalletNetwork::Regtest => "regtest",
            WalletNetwork::Mainnet => "mainnet",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signet_is_the_default() {
        assert_eq!(WalletNetwork::default(), WalletNetwork::Signet);
        assert_eq!(WalletNetwork::default().to_bitcoin(), Network::Signet);
    }

    #[test]
    fn mainnet_needs_explicit_consent() {
        assert_eq!(WalletNetwork::choose("mainnet", MainnetConsent::NotGiven), Err(NetworkError::MainnetNeedsConsent));
        let chosen = WalletNetwork::choose("Mainnet", MainnetConsent::Given).expect("consent given");
        assert!(chosen.is_real_money());
        assert_eq!(chosen.to_bitcoin(), Network::Bitcoin);
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for network in [WalletNetwork::Signet, WalletNetwork::Testnet, WalletNetwork::Regtest, WalletNetwork::Mainnet] {
            assert_eq!(network.to_string().parse::<WalletNetwork>(), Ok(network));
        }
        assert!(matches!("dogecoin".parse::<WalletNetwork>(), Err(NetworkError::Unknown { .. })));
    }
}
