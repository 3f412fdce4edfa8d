//! The home node's hosting desk: what `sanctuary node --sell-hosting SATS` does with asks for
//! paid hosting. An ask ([`Event::HostingAsked`]) is priced; the node's Lightning node makes a
//! held invoice for it (taken when paid, see the wallet's sale invoices); the invoice goes back
//! with the node's signed terms ([`Command::AnswerHosting`]). When a payment to one of those
//! invoices arrives, the desk writes it in the book ([`PaidBook`]) and hands the network node
//! what runs now ([`Command::PaidHosting`]); the ledger of hosting income, with the payers'
//! receipts beside their payments, is written beside the book.
//!
//! Bounds: at most [`MAX_MAKING`] invoices being made and [`MAX_OPEN`] handed out and unpaid
//! (the oldest go first; an invoice stays payable for [`SALE_INVOICE_EXPIRY_SECS`]); receipts
//! are kept for at most [`MAX_RECEIPTS`] payers.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};

use sanctuary_engine::PublicKey;
use sanctuary_net::Command;
use sanctuary_net::hex::from_hex;
use sanctuary_net::paid_hosting::{BookError, HostingPrice, PaidBook, PaidGrant};
use sanctuary_wallet::{LnCommand, SALE_INVOICE_EXPIRY_SECS};

/// Invoices being made at once.
const MAX_MAKING: usize = 16;
/// Invoices handed out and not paid yet.
const MAX_OPEN: usize = 256;
/// Payers whose receipts are kept for the ledger.
const MAX_RECEIPTS: usize = 10_000;
/// The ledger's file name, in the node's data directory.
pub const LEDGER_FILE: &str = "hosting-ledger.csv";

/// An ask being priced or paid: who, how much, how long, for what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sold {
    person: PublicKey,
    mib: u32,
    months: u16,
    amount_msat: u64,
}

/// What the desk wants done.
#[derive(Debug)]
pub enum DeskOrder {
    /// Tell the network node.
    Net(Command),
    /// Ask the Lightning node.
    Wallet(LnCommand),
}

/// The desk.
#[derive(Debug)]
pub struct HostingDesk {
    price: HostingPrice,
    book: PaidBook,
    dir: PathBuf,
    /// Invoices being made, by the wallet's tag: the ask and what it is for.
    making: VecDeque<(u64, u64, Sold)>,
    /// Invoices handed out, by payment hash, oldest first.
    open: VecDeque<([u8; 32], Sold, u64)>,
    next_tag: u64,
    /// Whether the Lightning node runs.
    lightning: bool,
    /// Each payer's newest receipt for this node: the bytes it saw kept, and its number.
    receipts: HashMap<PublicKey, (u64, u64)>,
    /// Bytes kept now for each person, from the last plan.
    kept_now: HashMap<PublicKey, u64>,
}

impl HostingDesk {
    /// A desk selling at `price`, with its book in `dir` (a damaged book is set aside and
    /// reported).
    pub fn open(price: HostingPrice, dir: &Path) -> (Self, Option<BookError>) {
        let (book, problem) = PaidBook::open(dir);
        let desk = Self {
            price,
            book,
            dir: dir.to_owned(),
            making: VecDeque::new(),
            open: VecDeque::new(),
            next_tag: 0,
            lightning: false,
            receipts: HashMap::new(),
            kept_now: HashMap::new(),
        };
        (desk, problem)
    }

    /// The book.
    pub fn book(&self) -> &PaidBook {
        &self.book
    }

    /// The Lightning node started or stopped.
    pub fn lightning_running(&mut self, running: bool) {
        self.lightning = running;
    }

    /// Someone asks for `mib` MiB over `months` months: priced and sent to the wallet for an
    /// invoice, or refused at once.
    pub fn asked(&mut self, ask: u64, person: PublicKey, mib: u32, months: u16) -> DeskOrder {
        let refuse = |reason: String| DeskOrder::Net(Command::AnswerHosting { ask, answer: Err(reason) });
        let amount_msat = match self.price.price_msat(mib, months) {
            Ok(amount) => amount,
            Err(error) => return refuse(error.to_string()),
        };
        if !self.lightning {
            return refuse("the node's Lightning wallet is not running now; try again later".into());
        }
        if amount_msat == 0 {
            return refuse("this node keeps things for free: ask its owner for a --pin".into());
        }
        self.next_tag += 1;
        let tag = self.next_tag;
        if self.making.len() >= MAX_MAKING {
            // The oldest is left to its time-out at the network node: a wallet that never
            // answers cannot fill the desk.
            self.making.pop_front();
        }
        let sold = Sold { person, mib, months, amount_msat };
        self.making.push_back((tag, ask, sold));
        // Each ask is its own sale: every payment to its invoice is taken.
        let sale = sale_id(&person, ask, tag);
        DeskOrder::Wallet(LnCommand::SaleInvoice {
            amount_msat,
            description: format!("Keeping {mib} MiB for {months} month(s), Sanctuary home node"),
            sale,
            tag,
        })
    }

    /// The wallet made the invoice for `tag`: the answer for the ask, if it is one of ours.
    pub fn invoice_made(&mut self, tag: u64, invoice: String, payment_hash: [u8; 32], now: u64) -> Option<Command> {
        let at = self.making.iter().position(|(made, ..)| *made == tag)?;
        let (_, ask, sold) = self.making.remove(at)?;
        let expiry = u64::from(SALE_INVOICE_EXPIRY_SECS);
        self.open.retain(|(.., at)| now.saturating_sub(*at) <= expiry);
        if self.open.len() >= MAX_OPEN {
            self.open.pop_front();
        }
        self.open.push_back((payment_hash, sold, now));
        Some(Command::AnswerHosting { ask, answer: Ok((invoice, payment_hash, sold.amount_msat)) })
    }

    /// A payment arrived with `hash` (hex) for `amount_msat`: recorded, and what runs now for the
    /// network node, if it paid for hosting.
    pub fn paid(&mut self, hash: &str, amount_msat: u64, now: u64) -> Option<Result<(PaidGrant, Command), BookError>> {
        let hash = from_hex::<32>(hash)?;
        let at = self.open.iter().position(|(open, ..)| *open == hash)?;
        let (_, sold, _) = self.open.remove(at)?;
        if amount_msat < sold.amount_msat {
            // The wallet takes no less than the invoice asks; this is never expected.
            return None;
        }
        Some(
            self.book
                .record(sold.person, sold.mib, sold.months, amount_msat, hash, now)
                .map(|grant| (grant, Command::PaidHosting(self.book.quotas(now)))),
        )
    }

    /// What runs at `now`, for the network node.
    pub fn running(&self, now: u64) -> Command {
        Command::PaidHosting(self.book.quotas(now))
    }

    /// When what runs changes next.
    pub fn next_change(&self, now: u64) -> Option<u64> {
        self.book.next_change(now)
    }

    /// The node's receipts, as signed by the people it served: each payer's newest.
    pub fn receipts(&mut self, receipts: &[sanctuary_net::receipts::SignedReceipt]) {
        for signed in receipts {
            let Ok(person) = PublicKey::from_bytes(signed.receipt.receiver) else { continue };
            if !self.receipts.contains_key(&person) && self.receipts.len() >= MAX_RECEIPTS {
                continue;
            }
            let entry = self.receipts.entry(person).or_insert((0, 0));
            if signed.receipt.seq >= entry.1 {
                *entry = (signed.receipt.kept_bytes, signed.receipt.seq);
            }
        }
    }

    /// What the last plan keeps, by person.
    pub fn planned(&mut self, plan: &sanctuary_net::hosting::HostingPlan) {
        self.kept_now = plan.kept_for.iter().map(|kept| (kept.person, kept.bytes)).collect();
    }

    /// The ledger of hosting income, as CSV.
    pub fn ledger(&self, now: u64) -> String {
        self.book.ledger_csv(
            |person| self.kept_now.get(person).copied(),
            |person| self.receipts.get(person).copied(),
            now,
        )
    }

    /// Writes the ledger beside the book (whole, then renamed into place).
    pub fn write_ledger(&self, now: u64) -> std::io::Result<PathBuf> {
        let path = self.dir.join(LEDGER_FILE);
        let fresh = path.with_extension("csv.new");
        std::fs::write(&fresh, self.ledger(now))?;
        std::fs::rename(&fresh, &path)?;
        Ok(path)
    }

    /// Bytes paid for and running, by person.
    pub fn quotas(&self, now: u64) -> BTreeMap<PublicKey, u64> {
        self.book.quotas(now)
    }
}

/// A sale id of its own for each ask (the wallet takes one payment per sale).
fn sale_id(person: &PublicKey, ask: u64, tag: u64) -> [u8; 32] {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"sanctuary hosting sale");
    hasher.update(person.as_bytes());
    hasher.update(ask.to_le_bytes());
    hasher.update(tag.to_le_bytes());
    hasher.update(sanctuary_net::paid_hosting::now_secs().to_le_bytes());
    hasher.finalize().into()
}
