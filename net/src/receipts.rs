//! Contribution receipts: what a peer served is recorded by the people it served, never by its
//! own word. Whoever receives bytes (models and avatars from a peer's blob store, world changes
//! by sync) or has their things kept (a host holding their models, spot-checked) signs a small
//! receipt for that peer and hands it over; the server's
//! contribution record is the set of receipts others signed for it. Anyone can check a record:
//! every receipt names its server and is signed by its receiver.
//!
//! A receipt is **cumulative**: it says everything the receiver got from that server so far,
//! with a sequence number that grows by one each time. The server keeps only each receiver's
//! newest, so a record is one receipt per person served, a replayed or older receipt changes
//! nothing, and a receipt that got lost is covered by the next one.
//!
//! Bounds: a receipt is at most [`MAX_RECEIPT_BYTES`]; a server keeps the receipts of at most
//! [`MAX_RECEIPTS_KEPT`] receivers (past that, a newcomer displaces the one that counted
//! least, if it counts more by what this server itself saw it serve the newcomer: a receipt's
//! numbers are the receiver's word, and a crowd of fresh keys claiming a lot must not push out
//! the people it really served); a receiver keeps totals for at most [`MAX_SERVERS_COUNTED`]
//! servers; a record handed to someone who asks holds at most [`MAX_RECEIPTS_SHOWN`].
//!
//! What receipts cannot prove: that a receiver is a real person. Keys are free, so a server
//! could sign receipts for itself with keys it made; that is why the line shown on a profile
//! also says how many of the receivers the viewer knows (trusts through anyone).

use std::collections::HashMap;

use iroh::{PublicKey, SecretKey, Signature};
use serde::{Deserialize, Serialize};

/// Domain separation for receipt signatures.
const CONTEXT: &[u8] = b"sanctuary receipt v1";
/// The most bytes one signed receipt takes.
pub const MAX_RECEIPT_BYTES: usize = 256;
/// The most receivers whose receipts a server keeps.
pub const MAX_RECEIPTS_KEPT: usize = 10_000;
/// The most servers a receiver keeps totals for.
pub const MAX_SERVERS_COUNTED: usize = 4_096;
/// The most receipts handed to someone asking for a record (those that count most).
pub const MAX_RECEIPTS_SHOWN: usize = 1_000;
/// The most bytes of a record as handed over.
pub const MAX_RECORD_BYTES: usize = MAX_RECEIPTS_SHOWN * MAX_RECEIPT_BYTES;

/// What a receiver says it got from a server, in all, so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Who served.
    pub server: [u8; 32],
    /// Who received, and signs.
    pub receiver: [u8; 32],
    /// The receiver's count of receipts for this server: each one replaces the one before.
    pub seq: u64,
    /// Bytes of blobs (models, avatars) received from the server.
    pub blob_bytes: u64,
    /// Blobs received whole.
    pub blobs: u64,
    /// World changes received from the server by sync that the receiver lacked.
    pub world_changes: u64,
    /// Bytes of the receiver's models the server was last seen to hold (every blob's last
    /// chunk asked for and verified), as one of the hosts the receiver names; not a sum.
    pub kept_bytes: u64,
    /// When the receiver first got something from the server (seconds since 1970).
    pub since: u64,
    /// When this receipt was signed (seconds since 1970, the receiver's clock).
    pub at: u64,
}

impl Receipt {
    /// What the receipt is worth when records are compared: its bytes, with a world change
    /// counted as a kilobyte.
    pub fn weight(&self) -> u64 {
        self.blob_bytes.saturating_add(self.world_changes.saturating_mul(1024)).saturating_add(self.kept_bytes)
    }

    fn signing_bytes(&self) -> Vec<u8> {
        let mut bytes = CONTEXT.to_vec();
        // Encoding a plain struct into a Vec cannot fail.
        bytes.extend(postcard::to_allocvec(self).unwrap_or_default());
        bytes
    }
}

/// A receipt with its receiver's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedReceipt {
    /// The receipt.
    pub receipt: Receipt,
    /// ed25519 by the receiver over the context and the receipt.
    pub signature: Signature,
}

/// Why a receipt was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// More bytes than a receipt has.
    #[error("a receipt is at most {MAX_RECEIPT_BYTES} bytes")]
    TooLarge,
    /// Not a receipt.
    #[error("not a receipt")]
    Malformed,
    /// The receiver is not a key, or did not sign it.
    #[error("the signature does not match")]
    BadSignature,
    /// It names another server.
    #[error("the receipt is for another server")]
    NotForUs,
    /// It was handed over by someone other than its receiver.
    #[error("a receipt comes only from the one who signed it")]
    NotFromReceiver,
    /// The receiver signed it for itself.
    #[error("nobody signs a receipt for themselves")]
    OwnReceipt,
    /// A receipt of that receiver as new or newer is held already.
    #[error("a newer receipt of that receiver is held")]
    Replayed,
    /// The record is full of receivers that count more.
    #[error("the record is full")]
    Full,
}

impl SignedReceipt {
    /// Signs `receipt` with the receiver's key (`receipt.receiver` must be its public key).
    pub fn sign(secret: &SecretKey, receipt: Receipt) -> Self {
        Self { signature: secret.sign(&receipt.signing_bytes()), receipt }
    }

    /// Whether the receiver signed it, and not for itself.
    pub fn verify(&self) -> Result<(), ReceiptError> {
        if self.receipt.server == self.receipt.receiver {
            return Err(ReceiptError::OwnReceipt);
        }
        let key = PublicKey::from_bytes(&self.receipt.receiver).map_err(|_| ReceiptError::BadSignature)?;
        key.verify(&self.receipt.signing_bytes(), &self.signature).map_err(|_| ReceiptError::BadSignature)
    }

    /// The bytes that travel.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes a receipt (its signature is not checked here).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ReceiptError> {
        if bytes.len() > MAX_RECEIPT_BYTES {
            return Err(ReceiptError::TooLarge);
        }
        postcard::from_bytes(bytes).map_err(|_| ReceiptError::Malformed)
    }
}

/// Totals a receiver keeps for one server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Totals {
    seq: u64,
    blob_bytes: u64,
    blobs: u64,
    world_changes: u64,
    kept_bytes: u64,
    since: u64,
}

/// What the receiver got from each server, and so the receipts it signs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Given {
    totals: HashMap<[u8; 32], Totals>,
}

impl Given {
    /// Counts what came from `server` now (`at`, seconds since 1970); returns false when the
    /// server is not counted (the book is full of others).
    pub fn add(&mut self, server: [u8; 32], blob_bytes: u64, blobs: u64, world_changes: u64, at: u64) -> bool {
        if !self.totals.contains_key(&server) && self.totals.len() >= MAX_SERVERS_COUNTED {
            return false;
        }
        let totals = self.totals.entry(server).or_insert(Totals { since: at, ..Totals::default() });
        totals.blob_bytes = totals.blob_bytes.saturating_add(blob_bytes);
        totals.blobs = totals.blobs.saturating_add(blobs);
        totals.world_changes = totals.world_changes.saturating_add(world_changes);
        true
    }

    /// `server` was seen (now, `at`) to hold `bytes` of our models; returns whether that is news
    /// (a receipt is then due). A server never counted is counted only when it holds something.
    pub fn set_kept(&mut self, server: [u8; 32], bytes: u64, at: u64) -> bool {
        let full = self.totals.len() >= MAX_SERVERS_COUNTED;
        match self.totals.get_mut(&server) {
            Some(totals) if totals.kept_bytes == bytes => false,
            Some(totals) => {
                totals.kept_bytes = bytes;
                true
            }
            None if bytes == 0 || full => false,
            None => {
                self.totals.insert(server, Totals { kept_bytes: bytes, since: at, ..Totals::default() });
                true
            }
        }
    }

    /// The next receipt for `server`, signed by `secret` at `at`: everything so far, with the
    /// next sequence number. `None` for a server never counted.
    pub fn receipt(&mut self, secret: &SecretKey, server: [u8; 32], at: u64) -> Option<SignedReceipt> {
        let totals = self.totals.get_mut(&server)?;
        totals.seq = totals.seq.checked_add(1)?;
        let receipt = Receipt {
            server,
            receiver: *secret.public().as_bytes(),
            seq: totals.seq,
            blob_bytes: totals.blob_bytes,
            blobs: totals.blobs,
            world_changes: totals.world_changes,
            kept_bytes: totals.kept_bytes,
            since: totals.since,
            at,
        };
        Some(SignedReceipt::sign(secret, receipt))
    }

    /// How many servers are counted.
    pub fn len(&self) -> usize {
        self.totals.len()
    }

    /// Whether no server is counted.
    pub fn is_empty(&self) -> bool {
        self.totals.is_empty()
    }
}

/// A server's contribution record: each receiver's newest receipt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    receipts: HashMap<[u8; 32], SignedReceipt>,
}

/// A record summed up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Contribution {
    /// People who signed receipts.
    pub people: usize,
    /// Bytes of blobs they received.
    pub blob_bytes: u64,
    /// Blobs they received whole.
    pub blobs: u64,
    /// World changes they received.
    pub world_changes: u64,
    /// Bytes of their models it holds for them (as each last saw).
    pub kept_bytes: u64,
    /// People it holds something for.
    pub kept_for: usize,
}

impl Contribution {
    /// The line a profile shows: "served 1.2 GiB to 40 people".
    pub fn line(&self) -> String {
        let people = if self.people == 1 { "1 person".to_owned() } else { format!("{} people", self.people) };
        let mut line = format!("served {} to {people}", size(self.blob_bytes));
        if self.world_changes > 0 {
            line += &format!(", and {} world changes", self.world_changes);
        }
        if self.kept_for > 0 {
            let people = if self.kept_for == 1 { "1 person".to_owned() } else { format!("{} people", self.kept_for) };
            line += &format!("; keeps {} for {people}", size(self.kept_bytes));
        }
        line
    }
}

/// Bytes as people read them.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

impl Record {
    /// Takes `signed`, handed over by `from`, for the server `me`: checked (for us, from its
    /// receiver, signed, newer than what that receiver said before), then it replaces the
    /// receiver's last one. `vouched` is what this server saw itself serve `from` (in
    /// [`Receipt::weight`]'s units): when the record is full, a newcomer counts only as much as
    /// both its receipt and `vouched` say.
    pub fn take(
        &mut self,
        me: &[u8; 32],
        from: &[u8; 32],
        signed: SignedReceipt,
        vouched: u64,
    ) -> Result<(), ReceiptError> {
        let receipt = signed.receipt;
        if receipt.server != *me {
            return Err(ReceiptError::NotForUs);
        }
        if receipt.receiver != *from {
            return Err(ReceiptError::NotFromReceiver);
        }
        if self.receipts.get(&receipt.receiver).is_some_and(|held| held.receipt.seq >= receipt.seq) {
            return Err(ReceiptError::Replayed);
        }
        if !self.receipts.contains_key(&receipt.receiver) && self.receipts.len() >= MAX_RECEIPTS_KEPT {
            let least = self
                .receipts
                .iter()
                .min_by_key(|(key, held)| (held.receipt.weight(), **key))
                .map(|(key, held)| (*key, held.receipt.weight()));
            match least {
                Some((key, weight)) if weight < receipt.weight().min(vouched) => {
                    signed.verify()?;
                    self.receipts.remove(&key);
                }
                _ => return Err(ReceiptError::Full),
            }
        } else {
            signed.verify()?;
        }
        self.receipts.insert(receipt.receiver, signed);
        Ok(())
    }

    /// The record summed up.
    pub fn contribution(&self) -> Contribution {
        sum(self.receipts.values().map(|signed| &signed.receipt))
    }

    /// The receipts that count most, most first (at most [`MAX_RECEIPTS_SHOWN`]): what is
    /// handed to someone who asks.
    pub fn shown(&self) -> Vec<SignedReceipt> {
        let mut all: Vec<&SignedReceipt> = self.receipts.values().collect();
        all.sort_by(|a, b| {
            b.receipt.weight().cmp(&a.receipt.weight()).then(a.receipt.receiver.cmp(&b.receipt.receiver))
        });
        all.into_iter().take(MAX_RECEIPTS_SHOWN).cloned().collect()
    }

    /// Every receipt, by receiver.
    pub fn all(&self) -> Vec<SignedReceipt> {
        let mut all: Vec<SignedReceipt> = self.receipts.values().cloned().collect();
        all.sort_by_key(|signed| signed.receipt.receiver);
        all
    }

    /// How many receivers have receipts here.
    pub fn len(&self) -> usize {
        self.receipts.len()
    }

    /// Whether nobody has signed a receipt yet.
    pub fn is_empty(&self) -> bool {
        self.receipts.is_empty()
    }
}

fn sum<'a>(receipts: impl Iterator<Item = &'a Receipt>) -> Contribution {
    let mut total = Contribution::default();
    for receipt in receipts {
        total.people += 1;
        total.blob_bytes = total.blob_bytes.saturating_add(receipt.blob_bytes);
        total.blobs = total.blobs.saturating_add(receipt.blobs);
        total.world_changes = total.world_changes.saturating_add(receipt.world_changes);
        total.kept_bytes = total.kept_bytes.saturating_add(receipt.kept_bytes);
        total.kept_for += usize::from(receipt.kept_bytes > 0);
    }
    total
}

/// Checks a record someone handed over as `server`'s: only receipts for that server, signed by
/// their receivers, each receiver's newest once. Returns the receipts that held.
pub fn checked_record(server: &[u8; 32], receipts: Vec<SignedReceipt>) -> Vec<SignedReceipt> {
    let mut newest: HashMap<[u8; 32], SignedReceipt> = HashMap::new();
    for signed in receipts.into_iter().take(MAX_RECEIPTS_SHOWN) {
        if signed.receipt.server != *server || signed.verify().is_err() {
            continue;
        }
        match newest.get(&signed.receipt.receiver) {
            Some(held) if held.receipt.seq >= signed.receipt.seq => {}
            _ => {
                newest.insert(signed.receipt.receiver, signed);
            }
        }
    }
    let mut held: Vec<SignedReceipt> = newest.into_values().collect();
    held.sort_by_key(|signed| signed.receipt.receiver);
    held
}

/// The contribution of checked receipts, and how many of their receivers `known` accepts.
pub fn contribution_of(receipts: &[SignedReceipt], known: impl Fn(&[u8; 32]) -> bool) -> (Contribution, usize) {
    let known_count = receipts.iter().filter(|signed| known(&signed.receipt.receiver)).count();
    (sum(receipts.iter().map(|signed| &signed.receipt)), known_count)
}

/// Hex of 32 bytes.
fn hex(bytes: &[u8; 32]) -> String {
    crate::hex::hex(bytes)
}

/// A record as CSV: one line per receipt, with its signature, so that anyone can check it.
pub fn record_csv(receipts: &[SignedReceipt]) -> String {
    let mut csv = String::from("server,receiver,seq,blob_bytes,blobs,world_changes,kept_bytes,since,at,signature\n");
    for signed in receipts {
        let receipt = &signed.receipt;
        csv += &format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            hex(&receipt.server),
            hex(&receipt.receiver),
            receipt.seq,
            receipt.blob_bytes,
            receipt.blobs,
            receipt.world_changes,
            receipt.kept_bytes,
            receipt.since,
            receipt.at,
            crate::hex::hex(&signed.signature.to_bytes()),
        );
    }
    csv
}

/// One receipt as JSON.
#[derive(Debug, Serialize)]
struct ReceiptJson {
    server: String,
    receiver: String,
    seq: u64,
    blob_bytes: u64,
    blobs: u64,
    world_changes: u64,
    kept_bytes: u64,
    since: u64,
    at: u64,
    signature: String,
}

/// A record as JSON: the sum, and each receipt with its signature.
pub fn record_json(receipts: &[SignedReceipt]) -> String {
    #[derive(Serialize)]
    struct RecordJson {
        contribution: Contribution,
        receipts: Vec<ReceiptJson>,
    }
    let record = RecordJson {
        contribution: sum(receipts.iter().map(|signed| &signed.receipt)),
        receipts: receipts
            .iter()
            .map(|signed| {
                let receipt = &signed.receipt;
                ReceiptJson {
                    server: hex(&receipt.server),
                    receiver: hex(&receipt.receiver),
                    seq: receipt.seq,
                    blob_bytes: receipt.blob_bytes,
                    blobs: receipt.blobs,
                    world_changes: receipt.world_changes,
                    kept_bytes: receipt.kept_bytes,
                    since: receipt.since,
                    at: receipt.at,
                    signature: crate::hex::hex(&signed.signature.to_bytes()),
                }
            })
            .collect(),
    };
    serde_json::to_string_pretty(&record).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(seed: u8) -> SecretKey {
        SecretKey::from_bytes(&[seed; 32])
    }

    fn id(secret: &SecretKey) -> [u8; 32] {
        *secret.public().as_bytes()
    }

    #[test]
    fn a_receipt_is_the_receivers_word_and_only_the_newest_counts() {
        let (server, receiver, forger) = (secret(1), secret(2), secret(3));
        let mut given = Given::default();
        assert!(given.add(id(&server), 5_000, 1, 0, 100));
        let first = given.receipt(&receiver, id(&server), 101).expect("counted");
        assert!(given.add(id(&server), 7_000, 1, 40, 200));
        let second = given.receipt(&receiver, id(&server), 201).expect("counted");
        assert_eq!((second.receipt.seq, second.receipt.blob_bytes, second.receipt.since), (2, 12_000, 100));

        let mut record = Record::default();
        let (me, from) = (id(&server), id(&receiver));
        assert_eq!(record.take(&me, &from, second.clone(), 0), Ok(()));
        // Older and replayed receipts change nothing.
        assert_eq!(record.take(&me, &from, first.clone(), 0), Err(ReceiptError::Replayed));
        assert_eq!(record.take(&me, &from, second.clone(), 0), Err(ReceiptError::Replayed));
        assert_eq!(
            record.contribution(),
            Contribution { people: 1, blob_bytes: 12_000, blobs: 2, world_changes: 40, ..Contribution::default() }
        );

        // A receipt the server wrote itself, with more bytes, does not verify.
        let mut forged = second.clone();
        forged.receipt.blob_bytes = 1 << 40;
        forged.receipt.seq = 3;
        assert_eq!(record.take(&me, &from, forged, 0), Err(ReceiptError::BadSignature));
        // Someone else's key signing as the receiver does not verify either.
        let mut stolen = SignedReceipt::sign(&forger, Receipt { seq: 9, ..second.receipt });
        stolen.receipt.receiver = from;
        assert_eq!(record.take(&me, &from, stolen, 0), Err(ReceiptError::BadSignature));
        // Handed over by another peer, or for another server, or signed for oneself: refused.
        assert_eq!(record.take(&me, &id(&forger), second.clone(), 0), Err(ReceiptError::NotFromReceiver));
        assert_eq!(record.take(&id(&forger), &from, second.clone(), 0), Err(ReceiptError::NotForUs));
        let mut own = Given::default();
        own.add(me, 1, 1, 0, 1);
        let own = own.receipt(&server, me, 2).expect("counted");
        assert_eq!(record.take(&me, &me, own, 0), Err(ReceiptError::OwnReceipt));
        assert_eq!(record.contribution().blob_bytes, 12_000);

        // Bytes round-trip; garbage and oversized bytes are refused.
        assert_eq!(SignedReceipt::from_bytes(&second.to_bytes()), Ok(second.clone()));
        assert!(second.to_bytes().len() <= MAX_RECEIPT_BYTES);
        assert_eq!(SignedReceipt::from_bytes(&[0xff; 10]), Err(ReceiptError::Malformed));
        assert_eq!(SignedReceipt::from_bytes(&[0; MAX_RECEIPT_BYTES + 1]), Err(ReceiptError::TooLarge));
    }

    #[test]
    fn what_a_host_keeps_is_said_as_last_seen_not_summed() {
        let (host, ada) = (secret(1), secret(2));
        let me = id(&host);
        let mut given = Given::default();
        assert!(!given.set_kept(me, 0, 1), "holding nothing is no news");
        assert!(given.set_kept(me, 3 << 20, 1));
        assert!(!given.set_kept(me, 3 << 20, 2), "the same again is no news");
        let first = given.receipt(&ada, me, 3).expect("counted");
        assert!(given.set_kept(me, 1 << 20, 4), "it holds less now");
        let second = given.receipt(&ada, me, 5).expect("counted");
        assert_eq!((first.receipt.kept_bytes, second.receipt.kept_bytes), (3 << 20, 1 << 20));
        let mut record = Record::default();
        record.take(&me, &id(&ada), second, 0).expect("taken");
        let contribution = record.contribution();
        assert_eq!((contribution.kept_bytes, contribution.kept_for), (1 << 20, 1));
        assert_eq!(contribution.line(), "served 0 B to 1 person; keeps 1.0 MiB for 1 person");
    }

    #[test]
    fn a_full_record_keeps_those_that_count_most() {
        let server = secret(1);
        let me = id(&server);
        let mut record = Record::default();
        let receipt_of = |seed: u32, bytes: u64| {
            let mut bytes_seed = [0u8; 32];
            bytes_seed[..4].copy_from_slice(&seed.to_le_bytes());
            bytes_seed[31] = 7;
            let receiver = SecretKey::from_bytes(&bytes_seed);
            let mut given = Given::default();
            given.add(me, bytes, 1, 0, 1);
            (id(&receiver), given.receipt(&receiver, me, 2).expect("counted"))
        };
        for seed in 0..MAX_RECEIPTS_KEPT as u32 {
            let (from, signed) = receipt_of(seed, 1_000 + u64::from(seed));
            record.take(&me, &from, signed, 0).expect("room");
        }
        let (from, small) = receipt_of(1_000_000, 10);
        assert_eq!(record.take(&me, &from, small, u64::MAX), Err(ReceiptError::Full));
        // A fresh key claiming a gigabyte this server never sent it pushes nobody out (a crowd
        // of such keys would otherwise fill the record with its own word).
        let (from, large) = receipt_of(1_000_001, 1 << 30);
        assert_eq!(record.take(&me, &from, large.clone(), 0), Err(ReceiptError::Full));
        assert_eq!(record.take(&me, &from, large.clone(), 999), Err(ReceiptError::Full), "served less than the least");
        // Served for real, it counts as much as both its receipt and the server's count say.
        assert_eq!(record.take(&me, &from, large, 1 << 20), Ok(()));
        assert_eq!(record.len(), MAX_RECEIPTS_KEPT);
        let shown = record.shown();
        assert_eq!(shown.len(), MAX_RECEIPTS_SHOWN);
        assert_eq!(shown[0].receipt.blob_bytes, 1 << 30, "most first");
        // The one that counted least (1,000 bytes) made room.
        assert!(record.all().iter().all(|signed| signed.receipt.blob_bytes != 1_000));
    }

    #[test]
    fn a_record_handed_over_is_checked_and_exported() {
        let (server, ada, bo) = (secret(1), secret(2), secret(3));
        let me = id(&server);
        let mut given_ada = Given::default();
        given_ada.add(me, 2 << 30, 3, 0, 10);
        let old = given_ada.receipt(&ada, me, 11).expect("counted");
        let new = given_ada.receipt(&ada, me, 12).expect("counted");
        let mut given_bo = Given::default();
        given_bo.add(me, 1 << 20, 1, 5, 10);
        let bo_receipt = given_bo.receipt(&bo, me, 13).expect("counted");
        let mut forged = bo_receipt.clone();
        forged.receipt.blob_bytes = 1 << 50;
        let mut elsewhere = Given::default();
        elsewhere.add(id(&bo), 1, 1, 0, 1);
        let for_someone_else = elsewhere.receipt(&ada, id(&bo), 2).expect("counted");

        let held = checked_record(&me, vec![old, forged, new.clone(), bo_receipt.clone(), for_someone_else]);
        assert_eq!(held.len(), 2);
        let (contribution, known) = contribution_of(&held, |key| *key == id(&ada));
        assert_eq!(contribution.people, 2);
        assert_eq!(contribution.blob_bytes, (2 << 30) + (1 << 20));
        assert_eq!(known, 1);
        assert_eq!(contribution.line(), "served 2.0 GiB to 2 people, and 5 world changes");

        let csv = record_csv(&held);
        assert_eq!(csv.lines().count(), 3);
        assert!(csv.starts_with("server,receiver,seq,blob_bytes"));
        assert!(csv.contains(&format!(",{},2,{},3,0,0,10,12,", crate::hex::hex(&id(&ada)), 2u64 << 30)), "{csv}");
        let json: serde_json::Value = serde_json::from_str(&record_json(&held)).expect("JSON");
        assert_eq!(json["contribution"]["people"], 2);
        assert_eq!(json["receipts"].as_array().map(Vec::len), Some(2));
        assert_eq!(json["receipts"][0]["signature"].as_str().map(str::len), Some(128));
    }
}
