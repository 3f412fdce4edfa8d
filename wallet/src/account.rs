//! An unlocked wallet: bdk over the sealed seed, persisted in the data directory, talking to an
//! Esplora server for chain data.
//!
//! Files in the wallet directory: `seed.sealed` (the seed, encrypted, see [`crate::SealedSeed`])
//! and `wallet.log` (bdk's state, see [`crate::store`]). Nothing secret is written anywhere else.
//!
//! A send is two steps with a sync to disk between them: the signed transaction is first recorded
//! in the wallet as unconfirmed and persisted, and only then broadcast. A crash between the two
//! leaves the transaction known after restart, and the next sync broadcasts it again.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bdk_esplora::EsploraExt;
use bdk_wallet::bitcoin::script::PushBytesBuf;
use bdk_wallet::bitcoin::secp256k1::Secp256k1;
use bdk_wallet::bitcoin::{Address, Amount, FeeRate, ScriptBuf, Transaction, Txid};
use bdk_wallet::chain::ChainPosition;
use bdk_wallet::descriptor::IntoWalletDescriptor;
use bdk_wallet::miniscript::descriptor::KeyMapWrapper;
use bdk_wallet::{KeychainKind, PersistedWallet, SignOptions, Wallet};

use crate::chain::{Chain, chain_error};
use crate::store::WalletStore;
use crate::{SealedSeed, Seed, SeedError, WalletNetwork};

/// Addresses scanned past the last used one before a full scan stops.
const STOP_GAP: usize = 20;
/// Parallel requests to the Esplora server.
const PARALLEL_REQUESTS: usize = 4;

/// Why a wallet operation failed, in words a person can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    /// The seed could not be opened or made.
    #[error(transparent)]
    Seed(#[from] SeedError),
    /// There is no wallet in this directory yet.
    #[error("no wallet here yet: create one or restore one from its recovery phrase")]
    NoWallet,
    /// A wallet already exists where a new one was to be made.
    #[error("a wallet already exists in {0}; it was not touched")]
    AlreadyExists(PathBuf),
    /// The stored wallet is for another network than the one asked for.
    #[error("this wallet is on {stored}, not {asked}")]
    WrongNetwork {
        /// The network of the stored wallet.
        stored: String,
        /// The network asked for.
        asked: WalletNetwork,
    },
    /// Reading or writing the wallet's files failed.
    #[error("wallet files: {0}")]
    Io(#[from] io::Error),
    /// bdk refused to load or create the wallet.
    #[error("the wallet could not be opened: {0}")]
    Load(String),
    /// The chain source failed or refused.
    #[error("chain source: {0}")]
    Chain(String),
    /// The chain source's answer does not check out (a forged header, a merkle branch that
    /// does not fold to the block, another transaction than asked): it is lying or broken.
    #[error("the chain source's answer does not check out: {0}")]
    Unproven(String),
    /// The server refused a transaction.
    #[error("the network refused the transaction: {0}")]
    Rejected(String),
    /// An address that is not one, or is for another network.
    #[error("not a valid {network} address: {given}")]
    BadAddress {
        /// What was typed.
        given: String,
        /// The wallet's network.
        network: WalletNetwork,
    },
    /// The payment could not be built (too little money, an amount below dust, ...).
    #[error("cannot make this payment: {0}")]
    CannotPay(String),
    /// Signing did not complete.
    #[error("the transaction could not be signed: {0}")]
    Signing(String),
    /// No draft with this id is waiting.
    #[error("that payment was already sent or cancelled")]
    NoSuchDraft,
}

/// The wallet's money, in satoshis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balances {
    /// In blocks.
    pub confirmed: u64,
    /// Coming in or going out, not yet in a block (change of our own sends included).
    pub pending: u64,
    /// Mined coins that cannot be spent yet.
    pub immature: u64,
    /// What can be spent now.
    pub spendable: u64,
}

/// A receive address, with the QR code of its `bitcoin:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receive {
    /// The address.
    pub address: String,
    /// `bitcoin:ADDRESS`.
    pub uri: String,
    /// The QR code of the URI.
    pub qr: QrMatrix,
}

/// A QR code as a square of modules.
#[derive(Clone, PartialEq, Eq)]
pub struct QrMatrix {
    /// Modules per side.
    pub width: usize,
    /// Row by row, `true` for dark.
    pub dark: Vec<bool>,
}

impl fmt::Debug for QrMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QrMatrix({0}×{0})", self.width)
    }
}

impl QrMatrix {
    /// Encodes text (medium error correction).
    pub fn encode(text: &str) -> Option<QrMatrix> {
        let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
        let dark = code.to_colors().into_iter().map(|colour| colour == qrcode::Color::Dark).collect();
        Some(QrMatrix { width: code.width(), dark })
    }
}

/// Where a payment goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PayTarget {
    /// An address as a person typed it.
    Address(String),
    /// An output script (a listing's payment address).
    Script(Vec<u8>),
}

/// A payment to make.
#[derive(Debug, Clone, PartialEq)]
pub struct PayRequest {
    /// Where to.
    pub to: PayTarget,
    /// How much, in satoshis.
    pub amount_sats: u64,
    /// The fee rate in sat/vB (fractions allowed, at least 1).
    pub fee_rate_sat_vb: f64,
    /// 32 bytes to carry in an `OP_RETURN` output (a trade's payment commitment).
    pub commitment: Option<[u8; 32]>,
}

/// A signed payment, not yet sent: what the confirmation dialog shows.
#[derive(Debug, Clone)]
pub struct Draft {
    /// Its transaction id.
    pub txid: Txid,
    /// The amount paid to the target.
    pub amount_sats: u64,
    /// The fee.
    pub fee_sats: u64,
    /// The fee rate it came out at, in sat/vB.
    pub fee_rate_sat_vb: f64,
    /// The signed transaction.
    pub tx: Transaction,
}

/// Whether a transaction is in a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxState {
    /// In the block at `height`, mined at `time` (seconds since 1970).
    Confirmed {
        /// The block's height.
        height: u32,
        /// The block's time.
        time: u64,
    },
    /// Waiting in the mempool (or not yet broadcast).
    Pending,
}

/// One line of the wallet's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The transaction.
    pub txid: Txid,
    /// What it did to the balance, in sats (negative for spending, fee included).
    pub delta_sats: i64,
    /// Its fee when the wallet paid it.
    pub fee_sats: Option<u64>,
    /// Where it is.
    pub state: TxState,
}

/// How far a sync has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncProgress {
    /// Scripts checked so far.
    pub done: usize,
    /// Scripts to check, when known (a first full scan does not know in advance).
    pub total: Option<usize>,
}

/// What a sync found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncReport {
    /// The chain's height.
    pub tip_height: u32,
    /// Transactions the wallet knows.
    pub transactions: usize,
    /// Pending sends broadcast again (they were recorded but not yet seen by the server).
    pub rebroadcast: usize,
}

/// An unlocked wallet.
pub struct Account {
    wallet: PersistedWallet<WalletStore>,
    store: WalletStore,
    signer: KeyMapWrapper,
    network: WalletNetwork,
    drafts: HashMap<Txid, Draft>,
    scanned: bool,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Account({}, {})", self.network, self.store.path().display())
    }
}

pub(crate) fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

fn seed_path(dir: &Path) -> PathBuf {
    dir.join("seed.sealed")
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("wallet.log")
}

impl Account {
    /// Whether a wallet exists in `dir`.
    pub fn exists(dir: &Path) -> bool {
        seed_path(dir).exists()
    }

    /// Makes a new wallet in `dir` from `seed`, sealed under `unlock_passphrase`. Refuses if a
    /// wallet is already there.
    pub fn create(
        dir: &Path,
        seed: &Seed,
        unlock_passphrase: &str,
        network: WalletNetwork,
    ) -> Result<Self, WalletError> {
        if Self::exists(dir) {
            return Err(WalletError::AlreadyExists(dir.to_owned()));
        }
        fs::create_dir_all(dir)?;
        let sealed = seed.seal(unlock_passphrase)?;
        // Write to a side file and rename, so a crash never leaves half a seed.
        let temporary = dir.join("seed.sealed.new");
        let mut file = fs::File::create(&temporary)?;
        file.write_all(&sealed.to_bytes())?;
        file.sync_all()?;
        drop(file);
        // A wallet log without a seed is left from an interrupted creation: start it afresh.
        if log_path(dir).exists() {
            fs::rename(log_path(dir), dir.join(format!("wallet.log.orphan-{}", now_s())))?;
        }
        fs::rename(&temporary, seed_path(dir))?;
        Self::open(dir, seed, network)
    }

    /// Opens the wallet in `dir` with its unlock passphrase.
    pub fn unlock(dir: &Path, unlock_passphrase: &str, network: WalletNetwork) -> Result<Self, WalletError> {
        Self::unlock_with_seed(dir, unlock_passphrase, network).map(|(account, _)| account)
    }

    /// Opens the wallet and hands back its seed too (the Lightning node's keys come from it).
    pub fn unlock_with_seed(
        dir: &Path,
        unlock_passphrase: &str,
        network: WalletNetwork,
    ) -> Result<(Self, Seed), WalletError> {
        let bytes = match fs::read(seed_path(dir)) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Err(WalletError::NoWallet),
            Err(error) => return Err(error.into()),
        };
        let seed = SealedSeed::from_bytes(&bytes)?.unseal(unlock_passphrase)?;
        let account = Self::open(dir, &seed, network)?;
        Ok((account, seed))
    }

    fn open(dir: &Path, seed: &Seed, network: WalletNetwork) -> Result<Self, WalletError> {
        let (external, internal) = seed.descriptors(network)?;
        let secp = Secp256k1::new();
        let load = |text: &str| {
            text.into_wallet_descriptor(&secp, network.to_bitcoin().into())
                .map_err(|error| WalletError::Load(error.to_string()))
        };
        let (external_descriptor, mut keys) = load(&external)?;
        let (internal_descriptor, internal_keys) = load(&internal)?;
        keys.extend(internal_keys);
        let mut store = WalletStore::open(&log_path(dir))?;
        let loaded = Wallet::load()
            .descriptor(KeychainKind::External, Some(external_descriptor.clone()))
            .descriptor(KeychainKind::Internal, Some(internal_descriptor.clone()))
            .load_wallet(&mut store)
            .map_err(|error| match error {
                bdk_wallet::LoadWithPersistError::Persist(error) => WalletError::Io(error),
                bdk_wallet::LoadWithPersistError::InvalidChangeSet(bdk_wallet::LoadError::Mismatch(
                    bdk_wallet::LoadMismatch::Network { loaded, .. },
                )) => WalletError::WrongNetwork { stored: loaded.to_string(), asked: network },
                other => WalletError::Load(other.to_string()),
            })?;
        let wallet = match loaded {
            Some(wallet) if wallet.network() != network.to_bitcoin() => {
                return Err(WalletError::WrongNetwork { stored: wallet.network().to_string(), asked: network });
            }
            Some(wallet) => wallet,
            None => Wallet::create(external_descriptor, internal_descriptor)
                .network(network.to_bitcoin())
                .create_wallet(&mut store)
                .map_err(|error| WalletError::Load(error.to_string()))?,
        };
        Ok(Account {
            wallet,
            store,
            signer: KeyMapWrapper::from(keys),
            network,
            drafts: HashMap::new(),
            scanned: false,
        })
    }

    /// The wallet's network.
    pub fn network(&self) -> WalletNetwork {
        self.network
    }

    fn persist(&mut self) -> Result<(), WalletError> {
        self.wallet.persist(&mut self.store)?;
        Ok(())
    }

    /// The wallet's money.
    pub fn balances(&self) -> Balances {
        let balance = self.wallet.balance();
        Balances {
            confirmed: balance.confirmed.to_sat(),
            pending: (balance.trusted_pending + balance.untrusted_pending).to_sat(),
            immature: balance.immature.to_sat(),
            spendable: balance.trusted_spendable().to_sat(),
        }
    }

    /// The next receive address not yet used on the chain, with its QR code.
    pub fn receive(&mut self) -> Result<Receive, WalletError> {
        let address = self.wallet.next_unused_address(KeychainKind::External).address;
        self.persist()?;
        let uri = format!("bitcoin:{address}");
        let qr =
            QrMatrix::encode(&uri).ok_or_else(|| WalletError::Load("the address does not fit a QR code".into()))?;
        Ok(Receive { address: address.to_string(), uri, qr })
    }

    /// A fresh address that is used for nothing else (a listing's payment address): its text and
    /// output script.
    pub fn fresh_address(&mut self) -> Result<(String, Vec<u8>), WalletError> {
        let address = self.wallet.reveal_next_address(KeychainKind::External).address;
        self.persist()?;
        Ok((address.to_string(), address.script_pubkey().to_bytes()))
    }

    /// Brings the wallet up to date with the chain. The first sync after unlocking scans the
    /// addresses until 20 unused ones in a row; later ones check the addresses revealed so far.
    /// Pending sends the server does not know (a crash before broadcast) are broadcast first.
    pub fn sync(
        &mut self,
        chain: &Chain,
        mut progress: impl FnMut(SyncProgress) + Send + 'static,
    ) -> Result<SyncReport, WalletError> {
        let rebroadcast = self.rebroadcast_pending(chain)?;
        if self.scanned {
            let request = self
                .wallet
                .start_sync_with_revealed_spks()
                .inspect(move |_, sync| progress(SyncProgress { done: sync.consumed(), total: Some(sync.total()) }))
                .build();
            let update = chain.client.sync(request, PARALLEL_REQUESTS).map_err(chain_error)?;
            self.wallet.apply_update(update).map_err(chain_error)?;
        } else {
            let mut done = 0usize;
            let request = self
                .wallet
                .start_full_scan()
                .inspect(move |_, _, _| {
                    done += 1;
                    progress(SyncProgress { done, total: None });
                })
                .build();
            let update = chain.client.full_scan(request, STOP_GAP, PARALLEL_REQUESTS).map_err(chain_error)?;
            self.wallet.apply_update(update).map_err(chain_error)?;
            self.scanned = true;
        }
        self.persist()?;
        Ok(SyncReport {
            tip_height: self.wallet.latest_checkpoint().height(),
            transactions: self.wallet.transactions().count(),
            rebroadcast,
        })
    }

    /// Broadcasts pending sends the server has not seen; returns how many.
    fn rebroadcast_pending(&mut self, chain: &Chain) -> Result<usize, WalletError> {
        let pending: Vec<Arc<Transaction>> = self
            .wallet
            .transactions()
            .filter(|tx| !tx.chain_position.is_confirmed())
            .filter(|tx| self.wallet.sent_and_received(&tx.tx_node.tx).0 > Amount::ZERO)
            .map(|tx| tx.tx_node.tx.clone())
            .collect();
        let mut sent = 0;
        for tx in pending {
            if chain.client.get_tx(&tx.compute_txid()).map_err(chain_error)?.is_some() {
                continue;
            }
            match chain.broadcast(&tx) {
                Ok(()) => sent += 1,
                Err(WalletError::Rejected(_)) => {
                    // The network will not take it (its coins were spent otherwise): stop
                    // counting it.
                    self.wallet.apply_evicted_txs([(tx.compute_txid(), now_s())]);
                    self.persist()?;
                }
                Err(error) => return Err(error),
            }
        }
        Ok(sent)
    }

    /// Builds and signs a payment without sending it: the draft shows its fee for confirmation.
    pub fn prepare(&mut self, request: &PayRequest) -> Result<Draft, WalletError> {
        let script = match &request.to {
            PayTarget::Address(text) => Address::from_str(text.trim())
                .ok()
                .and_then(|address| address.require_network(self.network.to_bitcoin()).ok())
                .ok_or_else(|| WalletError::BadAddress { given: text.clone(), network: self.network })?
                .script_pubkey(),
            PayTarget::Script(bytes) => ScriptBuf::from_bytes(bytes.clone()),
        };
        if !request.fee_rate_sat_vb.is_finite() || !(1.0..=10_000.0).contains(&request.fee_rate_sat_vb) {
            return Err(WalletError::CannotPay("the fee rate must be between 1 and 10,000 sat/vB".into()));
        }
        let fee_rate = FeeRate::from_sat_per_kwu((request.fee_rate_sat_vb * 250.0).ceil() as u64);
        let mut builder = self.wallet.build_tx();
        builder.add_recipient(script, Amount::from_sat(request.amount_sats));
        builder.fee_rate(fee_rate);
        if let Some(commitment) = request.commitment {
            let data = PushBytesBuf::try_from(commitment.to_vec())
                .map_err(|error| WalletError::CannotPay(error.to_string()))?;
            builder.add_data(&data);
        }
        let mut psbt = builder.finish().map_err(|error| WalletError::CannotPay(error.to_string()))?;
        psbt.sign(&self.signer, self.wallet.secp_ctx())
            .map_err(|(_, errors)| WalletError::Signing(format!("{} inputs failed", errors.len())))?;
        let finalized = self
            .wallet
            .finalize_psbt(&mut psbt, SignOptions::default())
            .map_err(|error| WalletError::Signing(error.to_string()))?;
        if !finalized {
            return Err(WalletError::Signing("not every input could be finalised".into()));
        }
        let fee_sats = psbt.fee().map_err(|error| WalletError::Signing(error.to_string()))?.to_sat();
        let tx = psbt.extract_tx().map_err(|error| WalletError::Signing(error.to_string()))?;
        let vsize = tx.vsize().max(1) as f64;
        // Building reveals a change address; keep that, the payment itself is not recorded yet.
        self.persist()?;
        let draft = Draft {
            txid: tx.compute_txid(),
            amount_sats: request.amount_sats,
            fee_sats,
            fee_rate_sat_vb: fee_sats as f64 / vsize,
            tx,
        };
        self.drafts.insert(draft.txid, draft.clone());
        Ok(draft)
    }

    /// Forgets a draft the person did not confirm (its coins stay free).
    pub fn cancel(&mut self, txid: Txid) {
        self.drafts.remove(&txid);
    }

    /// Records a prepared payment as sent and persists it (the first half of [`Account::send`]).
    /// After this returns, the transaction survives a crash.
    pub fn record(&mut self, txid: Txid) -> Result<Transaction, WalletError> {
        let draft = self.drafts.remove(&txid).ok_or(WalletError::NoSuchDraft)?;
        self.wallet.apply_unconfirmed_txs([(draft.tx.clone(), now_s())]);
        self.persist()?;
        Ok(draft.tx)
    }

    /// Sends a prepared payment: records it, then broadcasts it. If the network refuses it, it
    /// stops counting (and leaves the history); if the server cannot be reached, it stays
    /// pending and is sent again on the next sync.
    pub fn send(&mut self, chain: &Chain, txid: Txid) -> Result<Txid, WalletError> {
        let tx = self.record(txid)?;
        match chain.broadcast(&tx) {
            Ok(()) => Ok(txid),
            Err(WalletError::Rejected(reason)) => {
                self.wallet.apply_evicted_txs([(txid, now_s())]);
                self.persist()?;
                Err(WalletError::Rejected(reason))
            }
            Err(error) => Err(error),
        }
    }

    /// Whether the wallet counts a transaction (sent or received, confirmed or pending).
    pub fn knows(&self, txid: Txid) -> bool {
        self.wallet.tx_details(txid).is_some()
    }

    /// The history, newest first (pending ones on top).
    pub fn history(&self) -> Vec<HistoryEntry> {
        let mut entries: Vec<HistoryEntry> = self
            .wallet
            .transactions()
            .filter_map(|tx| self.wallet.tx_details(tx.tx_node.txid))
            .map(|details| HistoryEntry {
                txid: details.txid,
                delta_sats: details.balance_delta.to_sat(),
                fee_sats: (details.sent > Amount::ZERO).then(|| details.fee.map(Amount::to_sat)).flatten(),
                state: match details.chain_position {
                    ChainPosition::Confirmed { anchor, .. } => {
                        TxState::Confirmed { height: anchor.block_id.height, time: anchor.confirmation_time }
                    }
                    ChainPosition::Unconfirmed { .. } => TxState::Pending,
                },
            })
            .collect();
        entries.sort_by_key(|entry| match entry.state {
            TxState::Pending => (0, 0, entry.txid),
            TxState::Confirmed { height, .. } => (1, u32::MAX - height, entry.txid),
        });
        entries
    }

    /// Writes the personal ledger as CSV: date (UTC), txid, kind, amount, fee, height.
    pub fn write_csv(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "date_utc,txid,kind,amount_sats,fee_sats,block_height,network")?;
        for entry in self.history() {
            let (date, height) = match entry.state {
                TxState::Confirmed { height, time } => (utc_date(time), height.to_string()),
                TxState::Pending => ("pending".to_owned(), String::new()),
            };
            let kind = if entry.delta_sats < 0 { "sent" } else { "received" };
            let fee = entry.fee_sats.map(|fee| fee.to_string()).unwrap_or_default();
            writeln!(out, "{date},{},{kind},{},{fee},{height},{}", entry.txid, entry.delta_sats, self.network)?;
        }
        Ok(())
    }
}

pub use sanctuary_engine::ledger::utc_date;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_codes_encode_addresses() {
        let qr = QrMatrix::encode("bitcoin:tb1qcr8te4kr609gcawutmrza0j4xv80jy8zeqchgx").expect("fits");
        assert!(qr.width >= 21 && qr.dark.len() == qr.width * qr.width);
        assert!(qr.dark.iter().any(|dark| *dark) && qr.dark.iter().any(|dark| !*dark));
    }
}
