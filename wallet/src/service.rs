//! The wallet on its own thread: the client sends [`WalletCommand`]s and reads [`WalletEvent`]s,
//! so no frame ever waits for the chain source, Argon2 or the disk.
//!
//! The thread owns the [`Account`] while it is unlocked, syncs it on a timer, and checks the
//! payments named by trade claims against the chain on every round. Every failure comes back as
//! [`WalletEvent::Failed`] with a sentence for the person; nothing secret is ever put in an event
//! except the recovery words, once, when a new wallet is made.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use bdk_wallet::bitcoin::Txid;
use bdk_wallet::bitcoin::hashes::Hash;
use sanctuary_engine::trade::{PaymentSeen, TxId};
use zeroize::Zeroizing;

use crate::account::{Account, Balances, Chain, HistoryEntry, PayRequest, Receive, SyncProgress, WalletError};
use crate::{Seed, WalletNetwork};

/// The fee rate used when the chain source gives no estimate, in sat/vB.
const FALLBACK_FEE_RATE: f64 = 1.0;

/// What the wallet thread is asked to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum WalletCommand {
    /// Make a new wallet (fresh words, or restored from `words`), sealed under `unlock`.
    Create {
        /// Recovery words to restore from; `None` makes new ones.
        words: Option<Zeroizing<String>>,
        /// The optional BIP39 passphrase.
        bip39_passphrase: Zeroizing<String>,
        /// The passphrase that unlocks the wallet on this machine.
        unlock: Zeroizing<String>,
    },
    /// Open the wallet.
    Unlock(Zeroizing<String>),
    /// Close it: the keys leave memory.
    Lock,
    /// Sync now instead of waiting for the timer.
    Sync,
    /// Show the next unused receive address.
    Receive,
    /// A fresh address for a listing, answered with [`WalletEvent::FreshAddress`] and `tag`.
    FreshAddress {
        /// The caller's number for the answer.
        tag: u64,
    },
    /// Build and sign a payment for confirmation. `None` fee rate: the server's estimate for
    /// about six blocks.
    Prepare {
        /// What to pay.
        request: PayRequest,
        /// The caller's number for the answer.
        tag: u64,
    },
    /// Send a prepared payment.
    Confirm(Txid),
    /// Drop a prepared payment.
    Cancel(Txid),
    /// Write the ledger as CSV to this file.
    ExportCsv(PathBuf),
    /// Check these payments (transaction, the listing's script) on every round.
    Watch(Vec<(TxId, Vec<u8>)>),
}

/// Whether a wallet exists and is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalletStatus {
    /// No wallet in the data directory.
    None,
    /// A wallet is there, locked.
    Locked,
    /// Open.
    Unlocked,
}

/// What the wallet thread reports.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum WalletEvent {
    /// The wallet's state changed.
    Status(WalletStatus),
    /// A new wallet's recovery words, to show once.
    Created {
        /// The words (shown once; the person writes them down).
        words: Option<Zeroizing<String>>,
    },
    /// A sync is under way.
    Progress(SyncProgress),
    /// A sync finished.
    Synced {
        /// The chain's height.
        tip_height: u32,
        /// The money.
        balances: Balances,
        /// The history, newest first.
        history: Vec<HistoryEntry>,
        /// Pending sends that were broadcast again.
        rebroadcast: usize,
    },
    /// The receive address.
    Receive(Receive),
    /// A listing's fresh address.
    FreshAddress {
        /// The caller's number.
        tag: u64,
        /// The address.
        address: String,
        /// Its output script.
        script: Vec<u8>,
    },
    /// A payment is ready for confirmation.
    Prepared {
        /// The caller's number.
        tag: u64,
        /// Its transaction id.
        txid: Txid,
        /// The amount.
        amount_sats: u64,
        /// The fee.
        fee_sats: u64,
        /// The fee rate in sat/vB.
        fee_rate_sat_vb: f64,
    },
    /// A payment was sent (recorded, then broadcast).
    Sent(Txid),
    /// The ledger was written.
    Exported(PathBuf),
    /// What the chain says about watched payments: those it knows, at this tip.
    Payments {
        /// The chain's height.
        tip_height: u32,
        /// The payments it knows; watched ones missing here are not on the chain.
        seen: Vec<PaymentSeen>,
    },
    /// Something failed: what was being done, and why.
    Failed {
        /// What was being done.
        action: &'static str,
        /// Why it failed.
        error: String,
    },
}

/// Settings of the wallet thread.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The wallet's directory (`<data dir>/wallet`).
    pub dir: PathBuf,
    /// Its network.
    pub network: WalletNetwork,
    /// The Esplora server.
    pub esplora_url: String,
    /// How often to sync while unlocked.
    pub sync_every: Duration,
}

/// The client's end of the wallet thread.
#[derive(Debug)]
pub struct WalletService {
    commands: Sender<WalletCommand>,
    // Behind a mutex so the handle can be shared (Bevy resources must be `Sync`).
    events: Mutex<Receiver<WalletEvent>>,
}

impl WalletService {
    /// Starts the wallet thread.
    pub fn spawn(config: ServiceConfig) -> std::io::Result<WalletService> {
        let (commands, command_queue) = mpsc::channel();
        let (event_sink, events) = mpsc::channel();
        thread::Builder::new().name("wallet".into()).spawn(move || run(config, command_queue, event_sink))?;
        Ok(WalletService { commands, events: Mutex::new(events) })
    }

    /// Sends a command (ignored if the thread has stopped).
    pub fn send(&self, command: WalletCommand) {
        let _ = self.commands.send(command);
    }

    /// The events that have arrived, without waiting.
    pub fn drain(&self) -> Vec<WalletEvent> {
        self.events.lock().map(|events| events.try_iter().collect()).unwrap_or_default()
    }

    /// Waits up to `timeout` for the next event (for tests and tools).
    pub fn next_event(&self, timeout: Duration) -> Option<WalletEvent> {
        self.events.lock().ok()?.recv_timeout(timeout).ok()
    }
}

struct Worker {
    config: ServiceConfig,
    events: Sender<WalletEvent>,
    account: Option<Account>,
    chain: Option<Chain>,
    watched: BTreeMap<TxId, Vec<u8>>,
}

fn run(config: ServiceConfig, commands: Receiver<WalletCommand>, events: Sender<WalletEvent>) {
    let chain = match Chain::new(&config.esplora_url) {
        Ok(chain) => Some(chain),
        Err(error) => {
            let _ =
                events.send(WalletEvent::Failed { action: "connect to the chain source", error: error.to_string() });
            None
        }
    };
    let status = if Account::exists(&config.dir) { WalletStatus::Locked } else { WalletStatus::None };
    let _ = events.send(WalletEvent::Status(status));
    let mut worker = Worker { config, events, account: None, chain, watched: BTreeMap::new() };
    let mut next_round = Instant::now();
    loop {
        let wait = next_round.saturating_duration_since(Instant::now());
        match commands.recv_timeout(wait) {
            Ok(command) => {
                let sync_after = worker.handle(command);
                if sync_after {
                    next_round = Instant::now();
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                worker.round();
                next_round = Instant::now() + worker.config.sync_every;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

impl Worker {
    fn emit(&self, event: WalletEvent) {
        let _ = self.events.send(event);
    }

    fn fail(&self, action: &'static str, error: WalletError) {
        self.emit(WalletEvent::Failed { action, error: error.to_string() });
    }

    fn chain(&self) -> Result<&Chain, WalletError> {
        self.chain.as_ref().ok_or_else(|| WalletError::Chain("no usable chain source is set".into()))
    }

    /// Handles a command; returns whether a sync round should follow at once.
    fn handle(&mut self, command: WalletCommand) -> bool {
        match command {
            WalletCommand::Create { words, bip39_passphrase, unlock } => {
                let restoring = words.is_some();
                let seed = match &words {
                    Some(words) => Seed::restore(words, &bip39_passphrase),
                    None => Seed::generate(&bip39_passphrase),
                };
                match seed.map_err(WalletError::from).and_then(|seed| {
                    Account::create(&self.config.dir, &seed, &unlock, self.config.network)
                        .map(|account| (seed, account))
                }) {
                    Ok((seed, account)) => {
                        self.account = Some(account);
                        let shown = (!restoring).then(|| Zeroizing::new(seed.words().to_owned()));
                        self.emit(WalletEvent::Created { words: shown });
                        self.emit(WalletEvent::Status(WalletStatus::Unlocked));
                        self.receive();
                        return true;
                    }
                    Err(error) => self.fail("create the wallet", error),
                }
            }
            WalletCommand::Unlock(passphrase) => {
                match Account::unlock(&self.config.dir, &passphrase, self.config.network) {
                    Ok(account) => {
                        self.account = Some(account);
                        self.emit(WalletEvent::Status(WalletStatus::Unlocked));
                        self.receive();
                        return true;
                    }
                    Err(error) => self.fail("unlock the wallet", error),
                }
            }
            WalletCommand::Lock => {
                self.account = None;
                let status = if Account::exists(&self.config.dir) { WalletStatus::Locked } else { WalletStatus::None };
                self.emit(WalletEvent::Status(status));
            }
            WalletCommand::Sync => return true,
            WalletCommand::Receive => self.receive(),
            WalletCommand::FreshAddress { tag } => match self.account.as_mut() {
                Some(account) => match account.fresh_address() {
                    Ok((address, script)) => self.emit(WalletEvent::FreshAddress { tag, address, script }),
                    Err(error) => self.fail("make a payment address", error),
                },
                None => self.fail("make a payment address", WalletError::Load("unlock the wallet first".into())),
            },
            WalletCommand::Prepare { mut request, tag } => {
                if request.fee_rate_sat_vb <= 0.0 {
                    request.fee_rate_sat_vb = self.estimate();
                }
                match self.account.as_mut() {
                    Some(account) => match account.prepare(&request) {
                        Ok(draft) => self.emit(WalletEvent::Prepared {
                            tag,
                            txid: draft.txid,
                            amount_sats: draft.amount_sats,
                            fee_sats: draft.fee_sats,
                            fee_rate_sat_vb: draft.fee_rate_sat_vb,
                        }),
                        Err(error) => self.fail("prepare the payment", error),
                    },
                    None => self.fail("prepare the payment", WalletError::Load("unlock the wallet first".into())),
                }
            }
            WalletCommand::Confirm(txid) => {
                let result = match (self.account.as_mut(), self.chain.as_ref()) {
                    (Some(account), Some(chain)) => account.send(chain, txid),
                    (None, _) => Err(WalletError::Load("unlock the wallet first".into())),
                    (_, None) => Err(WalletError::Chain("no usable chain source is set".into())),
                };
                match result {
                    Ok(txid) => {
                        self.emit(WalletEvent::Sent(txid));
                        return true;
                    }
                    Err(error) => self.fail("send the payment", error),
                }
            }
            WalletCommand::Cancel(txid) => {
                if let Some(account) = self.account.as_mut() {
                    account.cancel(txid);
                }
            }
            WalletCommand::ExportCsv(path) => match self.account.as_ref() {
                Some(account) => {
                    let written = std::fs::File::create(&path).and_then(|mut file| {
                        account.write_csv(&mut file)?;
                        file.sync_all()
                    });
                    match written {
                        Ok(()) => self.emit(WalletEvent::Exported(path)),
                        Err(error) => self.fail("export the ledger", error.into()),
                    }
                }
                None => self.fail("export the ledger", WalletError::Load("unlock the wallet first".into())),
            },
            WalletCommand::Watch(payments) => {
                let fresh = payments.iter().any(|(txid, _)| !self.watched.contains_key(txid));
                self.watched = payments.into_iter().collect();
                return fresh;
            }
        }
        false
    }

    fn receive(&mut self) {
        if let Some(account) = self.account.as_mut() {
            match account.receive() {
                Ok(receive) => self.emit(WalletEvent::Receive(receive)),
                Err(error) => self.fail("show a receive address", error),
            }
        }
    }

    /// The server's fee estimate for about six blocks, or the fallback.
    fn estimate(&self) -> f64 {
        let estimates = self.chain.as_ref().and_then(|chain| chain.fee_estimates().ok()).unwrap_or_default();
        estimates
            .iter()
            .find(|(target, _)| *target >= 6)
            .or(estimates.last())
            .map_or(FALLBACK_FEE_RATE, |(_, rate)| rate.max(FALLBACK_FEE_RATE))
    }

    /// One round: sync the wallet and check the watched payments.
    fn round(&mut self) {
        let Some(chain) = self.chain.as_ref() else { return };
        if let Some(account) = self.account.as_mut() {
            let progress = self.events.clone();
            let synced = account.sync(chain, move |step| {
                let _ = progress.send(WalletEvent::Progress(step));
            });
            match synced {
                Ok(report) => {
                    let event = WalletEvent::Synced {
                        tip_height: report.tip_height,
                        balances: account.balances(),
                        history: account.history(),
                        rebroadcast: report.rebroadcast,
                    };
                    let _ = self.events.send(event);
                }
                Err(error) => {
                    let _ =
                        self.events.send(WalletEvent::Failed { action: "sync the wallet", error: error.to_string() });
                }
            }
        }
        if self.watched.is_empty() {
            return;
        }
        let Ok(chain) = self.chain() else { return };
        let checked = chain.tip_height().and_then(|tip_height| {
            let mut seen = Vec::new();
            for (txid, script) in &self.watched {
                if let Some(payment) = chain.payment(*txid, script)? {
                    seen.push(payment);
                }
            }
            Ok((tip_height, seen))
        });
        match checked {
            Ok((tip_height, seen)) => self.emit(WalletEvent::Payments { tip_height, seen }),
            Err(error) => self.fail("check trade payments", error),
        }
    }
}

/// A transaction id for the trade rules.
pub fn trade_txid(txid: Txid) -> TxId {
    TxId(txid.to_byte_array())
}
