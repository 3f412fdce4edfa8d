//! A home node that sells hosting: its own wallet (made on first start, unlocked with the
//! passphrase in `--wallet-passphrase-file`), its Lightning node, and the hosting desk that
//! prices asks, hands out invoices and records payments (see [`crate::hosting_desk`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use sanctuary_net::paid_hosting::{HostingPrice, now_secs};
use sanctuary_net::{Event, NodeHandle};
use sanctuary_wallet::lightning::LightningEvent;
use sanctuary_wallet::{LnEvent, ServiceConfig, WalletCommand, WalletEvent, WalletService, WalletStatus};
use zeroize::Zeroizing;

use crate::cli::NodeArgs;
use crate::hosting_desk::{DeskOrder, HostingDesk};

/// Where the recovery words of a wallet made here are written, once, in the wallet's folder.
const WORDS_FILE: &str = "recovery-words.txt";
/// The longest passphrase file read.
const MAX_PASSPHRASE_BYTES: u64 = 4096;

/// The wallet and the desk.
pub(crate) struct Seller {
    wallet: WalletService,
    desk: HostingDesk,
    passphrase: Zeroizing<String>,
    wallet_dir: PathBuf,
    /// When what runs changes next (a payment starts or ends), in seconds since 1970.
    next_change: Option<u64>,
    /// The Lightning node's id and where it listens, once it runs (`ID@HOST:PORT`).
    lightning: Option<String>,
}

impl Seller {
    /// The seller `args` ask for, if any: `Err` with a sentence when they cannot be followed.
    pub(super) fn start(args: &NodeArgs, data_dir: &Path, hosts: bool) -> Result<Option<Self>, String> {
        let Some(sat_per_gib_month) = args.sell_hosting else { return Ok(None) };
        if !hosts {
            return Err("--sell-hosting needs a node that keeps things: give --model-quota-mib above 0".into());
        }
        if args.wallet.no_lightning {
            return Err("--sell-hosting is paid over Lightning: drop --no-lightning".into());
        }
        let file = args
            .wallet_passphrase_file
            .as_ref()
            .ok_or("--sell-hosting needs the node's wallet: give --wallet-passphrase-file PATH")?;
        let passphrase = read_passphrase(file)?;
        let config: ServiceConfig = args.wallet.service_config(Some(data_dir.to_owned()))?;
        Self::new(HostingPrice { sat_per_gib_month }, passphrase, config, data_dir).map(Some)
    }

    /// A seller at `price` with the wallet `config` describes (made with `passphrase` if there
    /// is none yet), its book and ledger in `data_dir`.
    pub(crate) fn new(
        price: HostingPrice,
        passphrase: Zeroizing<String>,
        config: ServiceConfig,
        data_dir: &Path,
    ) -> Result<Self, String> {
        let sat_per_gib_month = price.sat_per_gib_month;
        let wallet_dir = config.dir.clone();
        let wallet =
            WalletService::spawn(config).map_err(|error| format!("the wallet thread does not start: {error}"))?;
        let (desk, problem) = HostingDesk::open(price, data_dir);
        if let Some(problem) = problem {
            eprintln!("warning: {problem}");
        }
        println!(
            "selling hosting at {sat_per_gib_month} sats per GiB and month ({} payments in the book)",
            desk.book().grants().len()
        );
        Ok(Self { wallet, desk, passphrase, wallet_dir, next_change: None, lightning: None })
    }

    /// The desk (its book and ledger).
    #[cfg(test)]
    pub(crate) fn desk(&self) -> &HostingDesk {
        &self.desk
    }

    /// The Lightning node's id and where it listens (`ID@HOST:PORT`), once it runs.
    #[cfg(test)]
    pub(crate) fn lightning(&self) -> Option<&str> {
        self.lightning.as_deref()
    }

    /// What runs now, for the network node (at start, and whenever it changes).
    pub(crate) fn running(&mut self, node: &NodeHandle) {
        let now = now_secs();
        node.send(self.desk.running(now));
        self.next_change = self.desk.next_change(now);
    }

    /// Every status round: what runs is handed over again when a payment started or ended, and
    /// the ledger is written.
    pub(crate) fn round(&mut self, node: &NodeHandle, write_ledger: bool) {
        if self.next_change.is_some_and(|at| now_secs() >= at) {
            self.running(node);
        }
        if write_ledger && let Err(error) = self.desk.write_ledger(now_secs()) {
            eprintln!("warning: the hosting ledger cannot be written: {error}");
        }
    }

    /// An event of the network node's that concerns the desk.
    pub(crate) fn net_event(&mut self, event: &Event, node: &NodeHandle, me: &str) {
        match event {
            Event::HostingAsked { ask, person, mib, months } => match self.desk.asked(*ask, *person, *mib, *months) {
                DeskOrder::Net(command) => {
                    node.send(command);
                }
                DeskOrder::Wallet(command) => {
                    println!("{} asks to have {mib} MiB kept for {months} month(s): making an invoice", person.short());
                    self.wallet.send(WalletCommand::Lightning(command));
                }
            },
            Event::Hosting(plan) => self.desk.planned(plan),
            Event::Contribution { person, receipts, .. } if person.to_string() == me => self.desk.receipts(receipts),
            _ => {}
        }
    }

    /// Whatever the wallet thread said since the last look.
    pub(crate) fn wallet_events(&mut self, node: &NodeHandle) {
        for event in self.wallet.drain() {
            match event {
                WalletEvent::Status(WalletStatus::None) => {
                    println!("making the node's wallet (first start)");
                    self.wallet.send(WalletCommand::Create {
                        words: None,
                        bip39_passphrase: Zeroizing::new(String::new()),
                        unlock: self.passphrase.clone(),
                    });
                }
                WalletEvent::Status(WalletStatus::Locked) => {
                    self.wallet.send(WalletCommand::Unlock(self.passphrase.clone()))
                }
                WalletEvent::Status(WalletStatus::Unlocked) => println!("the node's wallet is open"),
                WalletEvent::Created { words: Some(words) } => match write_words(&self.wallet_dir, &words) {
                    Ok(path) => println!(
                        "the wallet's recovery words are in {}: copy them somewhere safe, then delete the file",
                        path.display()
                    ),
                    Err(error) => eprintln!("warning: the recovery words could not be written ({error})"),
                },
                WalletEvent::Lightning(event) => self.lightning_event(event, node),
                WalletEvent::Failed { action, error } => eprintln!("wallet: could not {action}: {error}"),
                _ => {}
            }
        }
    }

    fn lightning_event(&mut self, event: LnEvent, node: &NodeHandle) {
        match event {
            LnEvent::Running { node_id, listening } => {
                self.desk.lightning_running(true);
                println!("Lightning node {node_id} listening on {}", listening.join(", "));
                self.lightning = listening.first().map(|address| format!("{node_id}@{address}"));
            }
            LnEvent::Stopped => {
                self.desk.lightning_running(false);
                self.lightning = None;
            }
            LnEvent::Unavailable { error, retry_s } => {
                self.desk.lightning_running(false);
                eprintln!("the Lightning node does not start ({error}); trying again in {retry_s} s");
            }
            LnEvent::SaleInvoice { tag, invoice, payment_hash } => {
                if let Some(command) = self.desk.invoice_made(tag, invoice, payment_hash, now_secs()) {
                    node.send(command);
                }
            }
            LnEvent::Happened(LightningEvent::PaymentReceived { hash, amount_msat, .. }) => {
                match self.desk.paid(&hash, amount_msat, now_secs()) {
                    Some(Ok((grant, command))) => {
                        println!(
                            "{} paid {} sats: {} MiB kept for {} month(s)",
                            grant.person.short(),
                            amount_msat / 1000,
                            grant.mib,
                            grant.months
                        );
                        node.send(command);
                        self.next_change = self.desk.next_change(now_secs());
                        self.round(node, true);
                    }
                    Some(Err(error)) => eprintln!("error: a hosting payment could not be written down: {error}"),
                    None => {}
                }
            }
            LnEvent::Failed { action, error } => eprintln!("Lightning: could not {action}: {error}"),
            _ => {}
        }
    }
}

/// The passphrase in `file` (its first line), within bounds.
fn read_passphrase(file: &Path) -> Result<Zeroizing<String>, String> {
    let unreadable = |error: std::io::Error| format!("the passphrase file {} cannot be read: {error}", file.display());
    let size = std::fs::metadata(file).map_err(unreadable)?.len();
    if size > MAX_PASSPHRASE_BYTES {
        return Err(format!("the passphrase file {} is over {MAX_PASSPHRASE_BYTES} bytes", file.display()));
    }
    let text = Zeroizing::new(std::fs::read_to_string(file).map_err(unreadable)?);
    let line = Zeroizing::new(text.lines().next().unwrap_or_default().to_owned());
    if line.trim().is_empty() {
        return Err(format!("the passphrase file {} is empty", file.display()));
    }
    Ok(line)
}

/// Writes the recovery words to [`WORDS_FILE`] in `dir`, readable by the owner only, never over
/// an existing file.
fn write_words(dir: &Path, words: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(WORDS_FILE);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path)?;
    writeln!(file, "{words}")?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrases_are_read_from_the_first_line_within_bounds() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("pass");
        std::fs::write(&file, "correct horse\nignored\n").expect("writes");
        assert_eq!(read_passphrase(&file).expect("reads").as_str(), "correct horse");
        std::fs::write(&file, "\n").expect("writes");
        assert!(read_passphrase(&file).expect_err("empty").contains("empty"));
        std::fs::write(&file, vec![b'a'; 5000]).expect("writes");
        assert!(read_passphrase(&file).is_err());
        assert!(read_passphrase(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn recovery_words_are_written_once_for_the_owner_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write_words(dir.path(), "abandon ability").expect("writes");
        assert_eq!(std::fs::read_to_string(&path).expect("reads"), "abandon ability\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777, 0o600);
        }
        assert!(write_words(dir.path(), "other words").is_err(), "never over an existing file");
        assert_eq!(std::fs::read_to_string(&path).expect("reads"), "abandon ability\n");
    }
}
