//! The wallet on its own thread: the client sends [`WalletCommand`]s and reads [`WalletEvent`]s,
//! so no frame ever waits for the chain source, Argon2 or the disk.
//!
//! The thread owns the [`Account`] while it is unlocked, syncs it on a timer, and on every round
//! looks at the payments to the addresses of the listings it watches, within the bounds of
//! [`crate::watch`]. Every failure comes back as [`WalletEvent::Failed`] with a sentence for the
//! person; nothing secret is ever put in an event except the recovery words, once, when a new
//! wallet is made, and neither commands nor events print secrets with `{:?}`.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use bdk_wallet::bitcoin::Txid;
use bdk_wallet::bitcoin::hashes::Hash;
use sanctuary_engine::trade::{ListingView, PaymentSeen, TxId};
use sanctuary_engine::{ChangeId, PublicKey};
use zeroize::Zeroizing;

use crate::account::{Account, Balances, HistoryEntry, PayRequest, PayTarget, Receive, SyncProgress, WalletError};
use crate::chain::Chain;
use crate::watch::TradeWatch;
use crate::{Seed, WalletNetwork};

mod lightning;

use lightning::Rail;
pub use lightning::{DEFAULT_TIP_LIMIT_SAT, LightningSettings, LnCommand, LnEvent, SALE_INVOICE_EXPIRY_SECS};

/// How often the Lightning node's events are looked at while it runs.
const LIGHTNING_POLL: Duration = Duration::from_millis(100);

/// The fee rate used when the chain source gives no estimate, in sat/vB.
const FALLBACK_FEE_RATE: f64 = 1.0;
/// The shortest time between two rounds, however often commands ask for one.
const MIN_ROUND_GAP: Duration = Duration::from_secs(2);

/// What the wallet thread is asked to do. `{:?}` never shows passphrases or recovery words.
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
    /// Watch the payments to these listings' addresses (the world's listings with their
    /// claims); `me` is the person's key, whose listings and purchases come first.
    Watch {
        /// Every listing held.
        listings: Vec<ListingView>,
        /// The person's key.
        me: Option<PublicKey>,
    },
    /// Something for the Lightning node.
    Lightning(LnCommand),
}

/// What `{:?}` shows for a secret.
const REDACTED: &str = "<redacted>";

impl fmt::Debug for WalletCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalletCommand::Create { words, .. } => f
                .debug_struct("Create")
                .field("words", &words.as_ref().map(|_| REDACTED))
                .field("bip39_passphrase", &REDACTED)
                .field("unlock", &REDACTED)
                .finish(),
            WalletCommand::Unlock(_) => f.debug_tuple("Unlock").field(&REDACTED).finish(),
            WalletCommand::Lock => f.write_str("Lock"),
            WalletCommand::Sync => f.write_str("Sync"),
            WalletCommand::Receive => f.write_str("Receive"),
            WalletCommand::FreshAddress { tag } => f.debug_struct("FreshAddress").field("tag", tag).finish(),
            WalletCommand::Prepare { request, tag } => {
                f.debug_struct("Prepare").field("request", request).field("tag", tag).finish()
            }
            WalletCommand::Confirm(txid) => f.debug_tuple("Confirm").field(txid).finish(),
            WalletCommand::Cancel(txid) => f.debug_tuple("Cancel").field(txid).finish(),
            WalletCommand::ExportCsv(path) => f.debug_tuple("ExportCsv").field(path).finish(),
            WalletCommand::Watch { listings, me } => {
                f.debug_struct("Watch").field("listings", &listings.len()).field("me", me).finish()
            }
            WalletCommand::Lightning(command) => f.debug_tuple("Lightning").field(command).finish(),
        }
    }
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

/// What the wallet thread reports. `{:?}` never shows the recovery words.
#[derive(Clone)]
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
    /// What the chain says about the watched listings' payments, at this tip.
    Payments {
        /// The chain's height.
        tip_height: u32,
        /// For each listing looked at so far, every payment to its address the chain source
        /// knows (what `trade::settle` takes); a listing missing here has none known yet.
        seen: HashMap<ChangeId, HashMap<TxId, PaymentSeen>>,
    },
    /// What the Lightning node did or said.
    Lightning(LnEvent),
    /// Something failed: what was being done, and why.
    Failed {
        /// What was being done.
        action: &'static str,
        /// Why it failed.
        error: String,
    },
}

impl fmt::Debug for WalletEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalletEvent::Status(status) => f.debug_tuple("Status").field(status).finish(),
            WalletEvent::Created { words } => {
                f.debug_struct("Created").field("words", &words.as_ref().map(|_| REDACTED)).finish()
            }
            WalletEvent::Progress(progress) => f.debug_tuple("Progress").field(progress).finish(),
            WalletEvent::Synced { tip_height, balances, history, rebroadcast } => f
                .debug_struct("Synced")
                .field("tip_height", tip_height)
                .field("balances", balances)
                .field("history", &history.len())
                .field("rebroadcast", rebroadcast)
                .finish(),
            WalletEvent::Receive(receive) => f.debug_tuple("Receive").field(receive).finish(),
            WalletEvent::FreshAddress { tag, address, .. } => {
                f.debug_struct("FreshAddress").field("tag", tag).field("address", address).finish()
            }
            WalletEvent::Prepared { tag, txid, amount_sats, fee_sats, fee_rate_sat_vb } => f
                .debug_struct("Prepared")
                .field("tag", tag)
                .field("txid", txid)
                .field("amount_sats", amount_sats)
                .field("fee_sats", fee_sats)
                .field("fee_rate_sat_vb", fee_rate_sat_vb)
                .finish(),
            WalletEvent::Sent(txid) => f.debug_tuple("Sent").field(txid).finish(),
            WalletEvent::Exported(path) => f.debug_tuple("Exported").field(path).finish(),
            WalletEvent::Payments { tip_height, seen } => {
                f.debug_struct("Payments").field("tip_height", tip_height).field("listings", &seen.len()).finish()
            }
            WalletEvent::Lightning(event) => f.debug_tuple("Lightning").field(event).finish(),
            WalletEvent::Failed { action, error } => {
                f.debug_struct("Failed").field("action", action).field("error", error).finish()
            }
        }
    }
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
    /// The Lightning node beside the wallet.
    pub lightning: LightningSettings,
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

impl Drop for WalletService {
    /// Locks the wallet before the program goes on, so that the Lightning node stops cleanly
    /// with its channel state written whole (after a kill LDK may find that state older than
    /// its channel monitors and close the channel on-chain). Waits at most 10 s.
    fn drop(&mut self) {
        if self.commands.send(WalletCommand::Lock).is_err() {
            return;
        }
        let Ok(events) = self.events.lock() else { return };
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match events.recv_timeout(left) {
                Ok(WalletEvent::Status(_)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

struct Worker {
    config: ServiceConfig,
    events: Sender<WalletEvent>,
    account: Option<Account>,
    chain: Option<Chain>,
    watch: TradeWatch,
    rail: Rail,
}

fn run(config: ServiceConfig, commands: Receiver<WalletCommand>, events: Sender<WalletEvent>) {
    let chain = match Chain::new(&config.esplora_url, config.network) {
        Ok(chain) => Some(chain),
        Err(error) => {
            let _ =
                events.send(WalletEvent::Failed { action: "connect to the chain source", error: error.to_string() });
            None
        }
    };
    let status = if Account::exists(&config.dir) { WalletStatus::Locked } else { WalletStatus::None };
    let _ = events.send(WalletEvent::Status(status));
    let rail = Rail::new(config.lightning.clone());
    let mut worker = Worker { config, events, account: None, chain, watch: TradeWatch::default(), rail };
    let mut next_round = Instant::now();
    let mut last_round: Option<Instant> = None;
    loop {
        worker.poll_lightning();
        let until_round = next_round.saturating_duration_since(Instant::now());
        // While the Lightning node runs (or waits to start again), its events are looked at often.
        let wait = if worker.rail.active() { until_round.min(LIGHTNING_POLL) } else { until_round };
        match commands.recv_timeout(wait) {
            Ok(command) => {
                let sync_after = worker.handle(command);
                if sync_after {
                    let earliest = last_round.and_then(|at| at.checked_add(MIN_ROUND_GAP));
                    next_round = earliest.map_or_else(Instant::now, |earliest| earliest.max(Instant::now()));
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if Instant::now() >= next_round {
                    worker.round();
                    last_round = Some(Instant::now());
                    next_round = Instant::now().checked_add(worker.config.sync_every).unwrap_or_else(Instant::now);
                }
            }
            Err(RecvTimeoutError::Disconnected) => return worker.lock_lightning(),
        }
    }
}

impl Worker {
    fn emit(&self, event: WalletEvent) {
        let _ = self.events.send(event);
    }

    fn poll_lightning(&mut self) {
        let events = self.events.clone();
        let emit = move |event| {
            let _ = events.send(WalletEvent::Lightning(event));
        };
        let (dir, network, esplora) = (self.config.dir.clone(), self.config.network, self.config.esplora_url.clone());
        self.rail.poll(&dir, network, &esplora, &emit);
    }

    fn unlock_lightning(&mut self, seed: &Seed) {
        let events = self.events.clone();
        let emit = move |event| {
            let _ = events.send(WalletEvent::Lightning(event));
        };
        let (dir, network, esplora) = (self.config.dir.clone(), self.config.network, self.config.esplora_url.clone());
        self.rail.unlocked(seed, &dir, network, &esplora, &emit);
    }

    fn lock_lightning(&mut self) {
        let events = self.events.clone();
        self.rail.locked(&move |event| {
            let _ = events.send(WalletEvent::Lightning(event));
        });
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
                        self.unlock_lightning(&seed);
                        return true;
                    }
                    Err(error) => self.fail("create the wallet", error),
                }
            }
            WalletCommand::Unlock(passphrase) => {
                match Account::unlock_with_seed(&self.config.dir, &passphrase, self.config.network) {
                    Ok((account, seed)) => {
                        self.account = Some(account);
                        self.emit(WalletEvent::Status(WalletStatus::Unlocked));
                        self.receive();
                        self.unlock_lightning(&seed);
                        return true;
                    }
                    Err(error) => self.fail("unlock the wallet", error),
                }
            }
            WalletCommand::Lock => {
                self.account = None;
                self.lock_lightning();
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
                if let Err(error) = self.not_paid_yet(&request) {
                    self.fail("prepare the payment", error);
                    return false;
                }
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
                        self.rail.write_csv(&mut file)?;
                        file.sync_all()
                    });
                    match written {
                        Ok(()) => self.emit(WalletEvent::Exported(path)),
                        Err(error) => self.fail("export the ledger", error.into()),
                    }
                }
                None => self.fail("export the ledger", WalletError::Load("unlock the wallet first".into())),
            },
            WalletCommand::Watch { listings, me } => return self.watch.set(listings, me),
            WalletCommand::Lightning(command) => {
                let events = self.events.clone();
                self.rail.handle(command, &move |event| {
                    let _ = events.send(WalletEvent::Lightning(event));
                });
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

    /// For a trade payment (to a script, with a commitment): refuses if the address already has a
    /// payment of at least the amount with a commitment, which the trade rule would rank first
    /// (someone, maybe this wallet, has paid for the item).
    fn not_paid_yet(&self, request: &PayRequest) -> Result<(), WalletError> {
        let (Some(_), PayTarget::Script(script)) = (&request.commitment, &request.to) else { return Ok(()) };
        let paid = self.chain()?.payments_to(script, request.amount_sats)?;
        match paid.iter().any(|payment| payment.qualifies(request.amount_sats)) {
            true => Err(WalletError::CannotPay("someone has already paid for this item".into())),
            false => Ok(()),
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
                    let events = self.events.clone();
                    self.rail.round(&move |event| {
                        let _ = events.send(WalletEvent::Lightning(event));
                    });
                }
                Err(error) => {
                    let _ =
                        self.events.send(WalletEvent::Failed { action: "sync the wallet", error: error.to_string() });
                }
            }
        }
        if self.watch.is_empty() {
            return;
        }
        let Some(chain) = self.chain.as_ref() else { return };
        let tip_height = match chain.tip_height() {
            Ok(tip_height) => tip_height,
            Err(error) => return self.fail("check trade payments", error),
        };
        let failures = self.watch.round(Instant::now(), tip_height, |view| {
            chain.payments_to(&view.listing.pay_to.script(), view.listing.price_sats)
        });
        // Others' lookups that fail are only backed off: a hostile listing must not fill the
        // person's screen with errors.
        let own_failures: Vec<_> = failures.iter().filter(|failure| failure.mine).collect();
        if let Some(first) = own_failures.first() {
            let error = match own_failures.len() {
                1 => format!("{} (retried later)", first.error),
                n_failed => format!("{} (and {} more; retried later)", first.error, n_failed.saturating_sub(1)),
            };
            self.emit(WalletEvent::Failed { action: "check the payments of your trades", error });
        }
        self.emit(WalletEvent::Payments { tip_height, seen: self.watch.payments() });
    }
}

/// A transaction id for the trade rules.
pub fn trade_txid(txid: Txid) -> TxId {
    TxId(txid.to_byte_array())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_events_never_print_secrets() {
        let words = "legal winner thank year wave sausage worth useful legal winner thank yellow";
        let commands = [
            WalletCommand::Create {
                words: Some(Zeroizing::new(words.to_owned())),
                bip39_passphrase: Zeroizing::new("bip39-secret-extra".to_owned()),
                unlock: Zeroizing::new("unlock-secret-phrase".to_owned()),
            },
            WalletCommand::Unlock(Zeroizing::new("unlock-secret-phrase".to_owned())),
        ];
        let events = [WalletEvent::Created { words: Some(Zeroizing::new(words.to_owned())) }];
        let printed: Vec<String> = commands
            .iter()
            .map(|command| format!("{command:?} {command:#?}"))
            .chain(events.iter().map(|event| format!("{event:?} {event:#?}")))
            .collect();
        for text in &printed {
            for secret in ["bip39-secret-extra", "unlock-secret-phrase", "legal", "sausage", "yellow"] {
                assert!(!text.contains(secret), "{secret:?} printed in {text}");
            }
        }
        assert!(printed[0].contains("Create"), "the command is still named: {}", printed[0]);
    }
}
