//! Paid hosting: a home node that sells keeping (`sanctuary node --sell-hosting SATS`) charges
//! a price per GiB and month, paid over Lightning. A person asks the node for a size and a
//! number of months (`/home NODE MIB MONTHS` in the client); the node answers with an invoice
//! for the price; once it is paid, the node keeps that much of the person's models until the
//! months are over, as if the owner had granted it with `--pin`.
//!
//! The node's book of what was paid ([`PaidBook`]) is a file beside its store, written whole
//! and renamed into place on every payment, so a crash never leaves half of it. It is the
//! node's ledger of hosting income: [`PaidBook::ledger_csv`] writes one row per payment with
//! the bytes kept for the payer now and the payer's own receipt for the node (what the payer
//! last saw it hold, spot-checked, see [`crate::receipts`]), so payments and the contribution
//! they bought line up.
//!
//! How months count: a month is 30 days. A payment for the size someone already has running
//! extends it (it starts when the last one ends); a payment for another size runs beside it
//! from now, and the sizes add up.
//!
//! Bounds: at most [`MAX_PAID_MIB`] per payment and [`MAX_MONTHS`] months; the price is worked
//! out with checked arithmetic and refused when it overflows or exceeds
//! [`MAX_PRICE_SATS`]; the book keeps at most [`MAX_PAYMENTS_KEPT`] payments (the oldest that
//! have run out go first) and is at most [`MAX_BOOK_BYTES`] on disk.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sanctuary_engine::PublicKey;
use sanctuary_engine::ledger::{msat_as_sats, utc_date};
use serde::{Deserialize, Serialize};

use crate::hex::{from_hex, hex};

/// A month of hosting, in seconds (30 days).
pub const MONTH_SECS: u64 = 30 * 24 * 3600;
/// The most MiB one payment buys (1 TiB).
pub const MAX_PAID_MIB: u32 = 1024 * 1024;
/// The most months one payment buys.
pub const MAX_MONTHS: u16 = 24;
/// The most one payment may cost, in sats (0.1 BTC): a price past this is a typo.
pub const MAX_PRICE_SATS: u64 = 10_000_000;
/// The most payments the book keeps.
pub const MAX_PAYMENTS_KEPT: usize = 10_000;
/// The largest book read from disk.
pub const MAX_BOOK_BYTES: u64 = 8 * 1024 * 1024;
/// The book's file name, in the node's data directory.
pub const BOOK_FILE: &str = "paid-hosting.json";

/// Domain separation for the terms a node signs.
const TERMS_CONTEXT: &[u8] = b"sanctuary hosting terms v1";

/// What a node sells in answer to an ask, signed with its key: keeping `mib` MiB of `person`'s
/// models for `months` months, for the payment of `amount_msat` with `payment_hash`. With the
/// payment's preimage the payer can show anyone what the node promised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    /// The node.
    pub host: PublicKey,
    /// Whose models.
    pub person: PublicKey,
    /// How much.
    pub mib: u32,
    /// How long.
    pub months: u16,
    /// The price.
    pub amount_msat: u64,
    /// The invoice's payment hash.
    pub payment_hash: [u8; 32],
}

impl Terms {
    fn message(&self) -> Vec<u8> {
        [
            TERMS_CONTEXT,
            self.host.as_bytes(),
            self.person.as_bytes(),
            &self.mib.to_le_bytes(),
            &self.months.to_le_bytes(),
            &self.amount_msat.to_le_bytes(),
            &self.payment_hash,
        ]
        .concat()
    }
}

/// The node's signature over `terms` (its key is `terms.host`).
pub fn sign_terms(secret: &iroh::SecretKey, terms: &Terms) -> [u8; 64] {
    secret.sign(&terms.message()).to_bytes()
}

/// Whether `signature` is `terms.host`'s over `terms`.
pub fn terms_signed(terms: &Terms, signature: &[u8; 64]) -> bool {
    let Ok(host) = iroh::PublicKey::from_bytes(terms.host.as_bytes()) else { return false };
    host.verify(&terms.message(), &iroh::Signature::from_bytes(signature)).is_ok()
}

/// What a node asks for hosting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostingPrice {
    /// Sats per GiB (1,024 MiB) and month.
    pub sat_per_gib_month: u64,
}

/// Why a hosting ask cannot be priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// No MiB, or more than [`MAX_PAID_MIB`].
    #[error("ask for 1 to {MAX_PAID_MIB} MiB")]
    BadSize,
    /// No months, or more than [`MAX_MONTHS`].
    #[error("ask for 1 to {MAX_MONTHS} months")]
    BadMonths,
    /// The price is past [`MAX_PRICE_SATS`].
    #[error("that would cost more than {MAX_PRICE_SATS} sats; ask for less")]
    TooDear,
}

impl HostingPrice {
    /// What keeping `mib` MiB for `months` months costs, in millisatoshis (rounded up to the
    /// millisatoshi).
    pub fn price_msat(&self, mib: u32, months: u16) -> Result<u64, PriceError> {
        if mib == 0 || mib > MAX_PAID_MIB {
            return Err(PriceError::BadSize);
        }
        if months == 0 || months > MAX_MONTHS {
            return Err(PriceError::BadMonths);
        }
        let msat = u128::from(self.sat_per_gib_month)
            .checked_mul(1000)
            .and_then(|msat| msat.checked_mul(u128::from(mib)))
            .and_then(|msat| msat.checked_mul(u128::from(months)))
            .map(|msat| msat.div_ceil(1024))
            .ok_or(PriceError::TooDear)?;
        match u64::try_from(msat) {
            Ok(msat) if msat <= MAX_PRICE_SATS * 1000 => Ok(msat),
            _ => Err(PriceError::TooDear),
        }
    }
}

/// One payment for hosting, as the node's book keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidGrant {
    /// Who paid (whose models are kept).
    pub person: PublicKey,
    /// When the payment arrived (seconds since 1970).
    pub paid_at: u64,
    /// How much is kept.
    pub mib: u32,
    /// For how many months.
    pub months: u16,
    /// From when (seconds since 1970).
    pub from: u64,
    /// Until when.
    pub until: u64,
    /// What arrived.
    pub paid_msat: u64,
    /// The payment's hash (its id in the Lightning node's book and ledger).
    pub payment_hash: [u8; 32],
}

impl PaidGrant {
    /// Whether it runs at `now`.
    pub fn runs_at(&self, now: u64) -> bool {
        self.from <= now && now < self.until
    }
}

/// A grant as the file holds it: text keys and hashes, readable by a person.
#[derive(Debug, Serialize, Deserialize)]
struct StoredGrant {
    person: String,
    paid_at: u64,
    mib: u32,
    months: u16,
    from: u64,
    until: u64,
    paid_msat: u64,
    payment_hash: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredBook {
    version: u32,
    grants: Vec<StoredGrant>,
}

/// Why the book could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    /// The disk failed.
    #[error("the paid-hosting book at {path}: {error}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What happened.
        error: std::io::Error,
    },
    /// The file is not a book (it is set aside, not overwritten).
    #[error("the paid-hosting book at {path} cannot be read ({why}); it was moved to {kept} and a new one begun")]
    Unreadable {
        /// Where.
        path: PathBuf,
        /// Why.
        why: String,
        /// Where the old file went.
        kept: PathBuf,
    },
}

/// The node's book of hosting payments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaidBook {
    grants: Vec<PaidGrant>,
    /// Where it is kept (`None`: in memory only).
    path: Option<PathBuf>,
}

impl PaidBook {
    /// The book in `dir` ([`BOOK_FILE`]), or an empty one when there is none. A file that
    /// cannot be read is moved aside (never overwritten) and reported with a new, empty book.
    pub fn open(dir: &Path) -> (Self, Option<BookError>) {
        let path = dir.join(BOOK_FILE);
        let mut book = Self { grants: Vec::new(), path: Some(path.clone()) };
        let bytes = match std::fs::metadata(&path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return (book, None),
            Err(error) => return (book, Some(BookError::Io { path, error })),
            Ok(metadata) if metadata.len() > MAX_BOOK_BYTES => Err(format!("it is over {MAX_BOOK_BYTES} bytes")),
            Ok(_) => std::fs::read(&path).map_err(|error| error.to_string()),
        };
        let read =
            bytes.and_then(|bytes| serde_json::from_slice::<StoredBook>(&bytes).map_err(|error| error.to_string()));
        match read {
            Ok(stored) => {
                book.grants = stored.grants.iter().filter_map(read_grant).take(MAX_PAYMENTS_KEPT).collect();
                (book, None)
            }
            Err(why) => {
                let kept = path.with_extension(format!("unreadable-{}", now_secs()));
                let problem = match std::fs::rename(&path, &kept) {
                    Ok(()) => BookError::Unreadable { path, why, kept },
                    Err(error) => BookError::Io { path, error },
                };
                // Not kept on disk until the file is out of the way: nothing is overwritten.
                if matches!(problem, BookError::Io { .. }) {
                    book.path = None;
                }
                (book, Some(problem))
            }
        }
    }

    /// Every payment, oldest first.
    pub fn grants(&self) -> &[PaidGrant] {
        &self.grants
    }

    /// Whether a payment with this hash is in the book already.
    pub fn has(&self, payment_hash: &[u8; 32]) -> bool {
        self.grants.iter().any(|grant| grant.payment_hash == *payment_hash)
    }

    /// Records a payment of `paid_msat` by `person` for `mib` MiB over `months` months at `now`,
    /// and writes the book. A payment already recorded (the same hash) changes nothing. Returns
    /// the grant.
    pub fn record(
        &mut self,
        person: PublicKey,
        mib: u32,
        months: u16,
        paid_msat: u64,
        payment_hash: [u8; 32],
        now: u64,
    ) -> Result<PaidGrant, BookError> {
        if let Some(grant) = self.grants.iter().find(|grant| grant.payment_hash == payment_hash) {
            return Ok(grant.clone());
        }
        // The same size running already: this payment extends it.
        let from = self
            .grants
            .iter()
            .filter(|grant| grant.person == person && grant.mib == mib && grant.until > now)
            .map(|grant| grant.until)
            .max()
            .unwrap_or(now);
        let until = from.saturating_add(MONTH_SECS.saturating_mul(u64::from(months)));
        let grant = PaidGrant { person, paid_at: now, mib, months, from, until, paid_msat, payment_hash };
        if self.grants.len() >= MAX_PAYMENTS_KEPT {
            // The oldest that has run out goes; if none has, the oldest of all.
            let at = self.grants.iter().position(|old| old.until <= now).unwrap_or(0);
            self.grants.remove(at);
        }
        self.grants.push(grant.clone());
        self.save()?;
        Ok(grant)
    }

    /// Bytes paid for and running at `now`, by person.
    pub fn quotas(&self, now: u64) -> BTreeMap<PublicKey, u64> {
        let mut quotas: BTreeMap<PublicKey, u64> = BTreeMap::new();
        for grant in self.grants.iter().filter(|grant| grant.runs_at(now)) {
            let quota = quotas.entry(grant.person).or_default();
            *quota = quota.saturating_add(u64::from(grant.mib) * 1024 * 1024);
        }
        quotas
    }

    /// The next moment after `now` when what runs changes (a grant starts or ends).
    pub fn next_change(&self, now: u64) -> Option<u64> {
        self.grants.iter().flat_map(|grant| [grant.from, grant.until]).filter(|at| *at > now).min()
    }

    /// Writes the book whole, then renames it into place.
    fn save(&self) -> Result<(), BookError> {
        let Some(path) = &self.path else { return Ok(()) };
        let stored = StoredBook { version: 1, grants: self.grants.iter().map(stored_grant).collect() };
        let bytes = serde_json::to_vec_pretty(&stored).unwrap_or_default();
        let fresh = path.with_extension("json.new");
        let io = |error| BookError::Io { path: path.clone(), error };
        std::fs::write(&fresh, bytes).map_err(io)?;
        std::fs::rename(&fresh, path).map_err(io)
    }

    /// The ledger of hosting income as CSV: one row per payment, with what is kept for the
    /// payer now (`kept_now`, from the node's plan) and the payer's newest receipt for the node
    /// (`receipt`: the bytes it was last seen to hold for them, and the receipt's number).
    pub fn ledger_csv(
        &self,
        kept_now: impl Fn(&PublicKey) -> Option<u64>,
        receipt: impl Fn(&PublicKey) -> Option<(u64, u64)>,
        now: u64,
    ) -> String {
        let mut csv = String::from(
            "paid_utc,person,mib,months,from_utc,until_utc,running,amount_sats,payment_hash,kept_now_bytes,\
             receipt_kept_bytes,receipt_seq\n",
        );
        for grant in &self.grants {
            let (kept, seq) = receipt(&grant.person)
                .map_or((String::new(), String::new()), |(kept, seq)| (kept.to_string(), seq.to_string()));
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{},{},{},{kept},{seq}",
                utc_date(grant.paid_at),
                grant.person,
                grant.mib,
                grant.months,
                utc_date(grant.from),
                utc_date(grant.until),
                grant.runs_at(now),
                msat_as_sats(grant.paid_msat),
                hex(&grant.payment_hash),
                kept_now(&grant.person).map(|bytes| bytes.to_string()).unwrap_or_default(),
            );
        }
        csv
    }
}

fn stored_grant(grant: &PaidGrant) -> StoredGrant {
    StoredGrant {
        person: grant.person.to_string(),
        paid_at: grant.paid_at,
        mib: grant.mib,
        months: grant.months,
        from: grant.from,
        until: grant.until,
        paid_msat: grant.paid_msat,
        payment_hash: hex(&grant.payment_hash),
    }
}

/// A stored grant, if it is whole and within bounds.
fn read_grant(stored: &StoredGrant) -> Option<PaidGrant> {
    let valid = stored.mib > 0 && stored.mib <= MAX_PAID_MIB && stored.months > 0 && stored.months <= MAX_MONTHS;
    (valid && stored.from <= stored.until).then_some(())?;
    Some(PaidGrant {
        person: stored.person.parse().ok()?,
        paid_at: stored.paid_at,
        mib: stored.mib,
        months: stored.months,
        from: stored.from,
        until: stored.until,
        paid_msat: stored.paid_msat,
        payment_hash: from_hex::<32>(&stored.payment_hash)?,
    })
}

/// Seconds since 1970, now.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> PublicKey {
        PublicKey::from_secret_seed(&[seed; 32])
    }

    #[test]
    fn prices_are_per_gib_and_month_rounded_up_and_bounded() {
        let price = HostingPrice { sat_per_gib_month: 100 };
        assert_eq!(price.price_msat(1024, 1), Ok(100_000));
        assert_eq!(price.price_msat(2048, 3), Ok(600_000));
        // 1 MiB for a month: 100/1024 sat (97.66 msat), rounded up to the millisatoshi.
        assert_eq!(price.price_msat(1, 1), Ok(98));
        assert_eq!(price.price_msat(0, 1), Err(PriceError::BadSize));
        assert_eq!(price.price_msat(MAX_PAID_MIB + 1, 1), Err(PriceError::BadSize));
        assert_eq!(price.price_msat(1, 0), Err(PriceError::BadMonths));
        assert_eq!(price.price_msat(1, MAX_MONTHS + 1), Err(PriceError::BadMonths));
        let dear = HostingPrice { sat_per_gib_month: u64::MAX };
        assert_eq!(dear.price_msat(MAX_PAID_MIB, MAX_MONTHS), Err(PriceError::TooDear));
        assert_eq!(HostingPrice { sat_per_gib_month: 0 }.price_msat(10, 2), Ok(0));
    }

    #[test]
    fn payments_run_extend_add_up_and_run_out() {
        let mut book = PaidBook::default();
        let (ada, bo) = (key(1), key(2));
        let first = book.record(ada, 1024, 1, 100_000, [1; 32], 1_000).expect("records");
        assert_eq!((first.from, first.until), (1_000, 1_000 + MONTH_SECS));
        // The same size again extends it; another size runs beside it from now.
        let second = book.record(ada, 1024, 2, 200_000, [2; 32], 5_000).expect("records");
        assert_eq!((second.from, second.until), (1_000 + MONTH_SECS, 1_000 + 3 * MONTH_SECS));
        book.record(ada, 512, 1, 50_000, [3; 32], 5_000).expect("records");
        book.record(bo, 10, 1, 1_000, [4; 32], 5_000).expect("records");
        assert_eq!(book.quotas(6_000)[&ada], (1024 + 512) * 1024 * 1024);
        assert_eq!(book.quotas(6_000)[&bo], 10 * 1024 * 1024);
        let later = 5_000 + MONTH_SECS + 10;
        assert_eq!(book.quotas(later)[&ada], 1024 * 1024 * 1024, "the 512 MiB ran out, the extension runs");
        assert!(!book.quotas(later).contains_key(&bo));
        assert!(book.quotas(1_000 + 3 * MONTH_SECS).is_empty());
        assert_eq!(book.next_change(6_000), Some(1_000 + MONTH_SECS), "the first month ends, the extension begins");
        // The same payment twice is one payment.
        book.record(bo, 10, 1, 1_000, [4; 32], 9_000).expect("records");
        assert_eq!(book.grants().len(), 4);
        assert!(book.has(&[4; 32]) && !book.has(&[5; 32]));
    }

    #[test]
    fn the_book_is_bounded_and_lets_run_out_payments_go_first() {
        let mut book = PaidBook::default();
        book.record(key(9), 1, 1, 1, [0xee; 32], 0).expect("records");
        for at in 0..MAX_PAYMENTS_KEPT {
            let mut hash = [0u8; 32];
            hash[..8].copy_from_slice(&(at as u64).to_le_bytes());
            book.record(key(1), 1, 1, 1, hash, MONTH_SECS * 2).expect("records");
        }
        assert_eq!(book.grants().len(), MAX_PAYMENTS_KEPT);
        assert!(!book.has(&[0xee; 32]), "the payment that ran out went first");
    }

    #[test]
    fn the_book_survives_a_restart_and_a_bad_file_is_set_aside() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut book, problem) = PaidBook::open(dir.path());
        assert!(problem.is_none() && book.grants().is_empty());
        book.record(key(1), 100, 2, 19_532, [7; 32], 1_000).expect("records");
        let (again, problem) = PaidBook::open(dir.path());
        assert!(problem.is_none());
        assert_eq!(again.grants(), book.grants());
        // A damaged file is moved aside, not overwritten, and a new book begins.
        std::fs::write(dir.path().join(BOOK_FILE), b"{ not json").expect("writes");
        let (mut fresh, problem) = PaidBook::open(dir.path());
        assert!(matches!(problem, Some(BookError::Unreadable { .. })), "{problem:?}");
        assert!(fresh.grants().is_empty());
        fresh.record(key(2), 1, 1, 98, [8; 32], 2_000).expect("records");
        let set_aside: Vec<_> = std::fs::read_dir(dir.path())
            .expect("lists")
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().contains("unreadable"))
            .collect();
        assert_eq!(set_aside.len(), 1);
        assert_eq!(std::fs::read(set_aside[0].path()).expect("reads"), b"{ not json");
        // Entries out of bounds are skipped, the rest read.
        let text = std::fs::read_to_string(dir.path().join(BOOK_FILE)).expect("reads");
        let bad = text.replace("\"mib\": 1,", "\"mib\": 0,");
        std::fs::write(dir.path().join(BOOK_FILE), bad).expect("writes");
        assert!(PaidBook::open(dir.path()).0.grants().is_empty());
    }

    #[test]
    fn the_ledger_lines_payments_up_with_receipts() {
        let mut book = PaidBook::default();
        let (ada, bo) = (key(1), key(2));
        book.record(ada, 1024, 1, 100_000, [1; 32], 0).expect("records");
        book.record(bo, 1, 1, 98, [2; 32], 0).expect("records");
        let csv = book.ledger_csv(
            |person| (*person == ada).then_some(5_000),
            |person| (*person == ada).then_some((4_000, 3)),
            10,
        );
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("paid_utc,person,mib"));
        assert_eq!(
            lines[1],
            format!(
                "1970-01-01T00:00:00Z,{ada},1024,1,1970-01-01T00:00:00Z,1970-01-31T00:00:00Z,true,100,{},5000,4000,3",
                "01".repeat(32)
            )
        );
        assert!(lines[2].ends_with(&format!(",0.098,{},,,", "02".repeat(32))), "{}", lines[2]);
    }
}
