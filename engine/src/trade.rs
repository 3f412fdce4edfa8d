//! Trade: listings, purchases paid in bitcoin, and the rule that decides who owns a sold item.
//!
//! A seller signs a [`Listing`] (an item, a price in sats, a payment address used for this
//! listing only, and how many confirmations the payment needs). A buyer pays that address from
//! their own wallet with a transaction that also carries [`payment_commitment`] of the listing and
//! the buyer's key in an `OP_RETURN` output, then signs a claim naming the transaction. The
//! commitment binds the payment to its buyer: someone who only sees the payment on the chain
//! cannot claim the item with it, and a payment for one listing cannot be replayed for another.
//!
//! Every peer that can see the chain decides the sale the same way with [`settle`], from the
//! signed records (see [`ListingView`]) and what its chain source says about the named
//! transactions ([`PaymentSeen`]); it needs neither the seller's node nor anyone's word:
//!
//! - A claim counts only if its transaction is on the chain (confirmed or in the mempool), pays
//!   the listing's address at least the price, and commits to this listing and this buyer.
//! - Among the claims that count, the payment confirmed first (by block height, then position in
//!   the block) wins; unconfirmed payments queue behind confirmed ones, in txid order.
//! - The winner owns the item once its payment has the listing's confirmations. A listing may ask
//!   for none only up to [`ZERO_CONF_MAX_SATS`]; such a purchase is owned at once but shown as
//!   pending until it confirms. A payment that is double-spent away stops counting.
//! - Every other valid payment is flagged for refund once the item is sold, and so is a payment
//!   that confirms after the seller withdrew the listing.
//!
//! This module knows nothing of bitcoin: scripts are bytes and transaction ids are 32 bytes; the
//! wallet turns chain data into [`PaymentSeen`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use glam::Vec3;
use serde::{Deserialize, Serialize};

use crate::city::ParcelCoord;
use crate::identity::PublicKey;
use crate::world::{ChangeId, ModelRef};

/// The largest price a listing may sell for without a confirmation (0.001 BTC): small enough
/// that a double spend costs the seller little.
pub const ZERO_CONF_MAX_SATS: u64 = 100_000;

/// The most confirmations a listing may ask for.
pub const MAX_CONFIRMATIONS: u8 = 6;

/// The smallest price: below bitcoin's dust limit the payment would not relay.
pub const MIN_PRICE_SATS: u64 = 546;

/// The largest price: 21 million bitcoin.
pub const MAX_PRICE_SATS: u64 = 21_000_000 * 100_000_000;

/// Domain separation for payment commitments.
const COMMITMENT_CONTEXT: &str = "sanctuary trade payment commitment v1";

/// A transaction id as 32 bytes, in the byte order bitcoin hashes it (not the reversed hex).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TxId(pub [u8; 32]);

impl fmt::Debug for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Bitcoin shows ids byte-reversed.
        for byte in self.0.iter().rev().take(6) {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("…")
    }
}

/// A short item title of at most 32 bytes of UTF-8 (kept fixed-size so changes stay small).
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Title([u8; 32]);

impl Title {
    /// The longest title in bytes.
    pub const MAX_BYTES: usize = 32;

    /// A title from text: trimmed, cut at a character boundary to 32 bytes; `None` if empty.
    pub fn new(text: &str) -> Option<Title> {
        let text = text.trim();
        let mut end = text.len().min(Self::MAX_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let text = text[..end].trim_end();
        if text.is_empty() {
            return None;
        }
        let mut bytes = [0u8; 32];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Some(Title(bytes))
    }

    /// The text, or `None` if the bytes are not a canonical title (what a forged change might hold).
    pub fn text(&self) -> Option<&str> {
        let end = self.0.iter().position(|byte| *byte == 0).unwrap_or(32);
        if self.0[end..].iter().any(|byte| *byte != 0) {
            return None;
        }
        let text = std::str::from_utf8(&self.0[..end]).ok()?;
        (!text.is_empty() && text.trim() == text).then_some(text)
    }
}

impl fmt::Debug for Title {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text().unwrap_or("(bad title)"))
    }
}

/// A payment address as its output script, at most 34 bytes (P2WPKH is 22, P2TR and P2WSH 34).
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayTo {
    len: u8,
    head: [u8; 32],
    tail: [u8; 2],
}

impl PayTo {
    /// The longest script in bytes.
    pub const MAX_BYTES: usize = 34;

    /// Wraps an output script; `None` if it is empty or longer than 34 bytes.
    pub fn new(script: &[u8]) -> Option<PayTo> {
        if script.is_empty() || script.len() > Self::MAX_BYTES {
            return None;
        }
        let mut padded = [0u8; 34];
        padded[..script.len()].copy_from_slice(script);
        let mut head = [0u8; 32];
        head.copy_from_slice(&padded[..32]);
        Some(PayTo { len: script.len() as u8, head, tail: [padded[32], padded[33]] })
    }

    /// The script bytes (empty if the stored length is out of range).
    pub fn script(&self) -> Vec<u8> {
        let len = self.len as usize;
        if len == 0 || len > Self::MAX_BYTES {
            return Vec::new();
        }
        let mut padded = self.head.to_vec();
        padded.extend_from_slice(&self.tail);
        padded.truncate(len);
        padded
    }
}

impl fmt::Debug for PayTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PayTo({} bytes)", self.len)
    }
}

/// What a seller offers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    /// The item: an imported model (its bundle hash, size and bounds).
    pub item: ModelRef,
    /// What the stall calls it.
    pub title: Title,
    /// The price in satoshis.
    pub price_sats: u64,
    /// The address the payment must go to, fresh for this listing.
    pub pay_to: PayTo,
    /// Confirmations the payment needs before the item is owned (0 only for small prices).
    pub confirmations: u8,
    /// Where the stall stands, in world coordinates (shown when the seller owns that parcel).
    pub spot: Vec3,
}

/// Why a listing is not well formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListingError {
    /// The title is empty or not text.
    #[error("the item needs a title of up to 32 bytes")]
    BadTitle,
    /// The price is below the dust limit or above all bitcoin.
    #[error("the price must be between {MIN_PRICE_SATS} sats and 21 million BTC")]
    BadPrice,
    /// The payment script is empty or too long.
    #[error("the payment address is not a valid output script")]
    BadAddress,
    /// Too many confirmations asked, or none for a large price.
    #[error("a listing asks for 1 to {MAX_CONFIRMATIONS} confirmations (0 only up to {ZERO_CONF_MAX_SATS} sats)")]
    BadConfirmations,
    /// The stall's position is not a finite point.
    #[error("the stall's position is not a point")]
    BadSpot,
}

impl Listing {
    /// Checks what every peer checks before holding a listing.
    pub fn check(&self) -> Result<(), ListingError> {
        if self.title.text().is_none() {
            return Err(ListingError::BadTitle);
        }
        if !(MIN_PRICE_SATS..=MAX_PRICE_SATS).contains(&self.price_sats) {
            return Err(ListingError::BadPrice);
        }
        if self.pay_to.script().is_empty() {
            return Err(ListingError::BadAddress);
        }
        if self.confirmations > MAX_CONFIRMATIONS || (self.confirmations == 0 && self.price_sats > ZERO_CONF_MAX_SATS) {
            return Err(ListingError::BadConfirmations);
        }
        if !self.spot.is_finite() {
            return Err(ListingError::BadSpot);
        }
        Ok(())
    }
}

/// The 32 bytes a buyer's payment carries in an `OP_RETURN` output: BLAKE3 (keyed for this use)
/// of the listing's id and the buyer's key.
pub fn payment_commitment(listing: &ChangeId, buyer: &PublicKey) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(COMMITMENT_CONTEXT);
    hasher.update(&listing.0);
    hasher.update(buyer.as_bytes());
    *hasher.finalize().as_bytes()
}

/// Where a confirmed transaction sits in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChainPosition {
    /// The block's height.
    pub height: u32,
    /// The transaction's index in the block.
    pub index: u32,
}

/// What a chain source says about one transaction, reduced to what the rule needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentSeen {
    /// The transaction.
    pub txid: TxId,
    /// The sum of its outputs paying the listing's script.
    pub paid_sats: u64,
    /// Every 32-byte `OP_RETURN` payload it carries.
    pub commitments: Vec<[u8; 32]>,
    /// Its block and position, or `None` while it waits in the mempool.
    pub confirmed: Option<ChainPosition>,
}

/// A buyer's signed claim that a transaction paid for a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Claim {
    /// Who claims.
    pub buyer: PublicKey,
    /// The payment.
    pub txid: TxId,
}

/// A listing with everything signed about it that a peer holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ListingView {
    /// The listing's change id: its name.
    pub id: ChangeId,
    /// Who listed it.
    pub seller: PublicKey,
    /// The parcel its stall was listed on (withdrawals and claims name it too).
    pub parcel: ParcelCoord,
    /// The listing.
    pub listing: Listing,
    /// The chain height the seller withdrew it at, if they did (the lowest, if several).
    pub withdrawn_at: Option<u32>,
    /// The buyers' claims, in order.
    pub claims: Vec<Claim>,
}

/// Where a sale stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaleState {
    /// For sale; no valid payment yet.
    Open,
    /// A valid payment leads but lacks confirmations.
    Pending {
        /// The leading buyer.
        buyer: PublicKey,
        /// Their payment.
        txid: TxId,
        /// Confirmations it has.
        confirmations: u32,
        /// Confirmations it needs.
        needed: u32,
    },
    /// The item belongs to the buyer. With `confirmations == 0` (a small zero-confirmation sale)
    /// it is theirs but should be shown as pending until it confirms.
    Owned {
        /// The new owner.
        buyer: PublicKey,
        /// Their payment.
        txid: TxId,
        /// Confirmations it has.
        confirmations: u32,
    },
    /// The seller withdrew it before anyone's payment counted.
    Withdrawn,
}

/// What the rule says about one claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// This payment leads (the sale is pending or owned by it).
    Leads,
    /// Valid, but waits behind a leading payment that is not final yet.
    Queued,
    /// Valid, but the item went to an earlier payment or the listing was withdrawn: the seller
    /// owes a refund.
    Refund(RefundReason),
    /// Does not count.
    Rejected(ClaimError),
}

/// Why a valid payment did not buy the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RefundReason {
    /// Someone else's payment confirmed first.
    #[error("the item was sold to an earlier payment; the seller should refund this one")]
    SoldToAnother,
    /// The payment confirmed after the seller withdrew the listing.
    #[error("the listing was withdrawn before this payment confirmed; the seller should refund it")]
    Withdrawn,
}

/// Why a claim does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// The chain source does not know the transaction (never sent, or replaced by a double
    /// spend).
    #[error("the payment is not on the chain (never broadcast, or double-spent away)")]
    NotOnChain,
    /// The transaction does not commit to this listing and this buyer: someone else's payment,
    /// or one made for another listing.
    #[error("the payment is not bound to this listing and buyer")]
    NotBound,
    /// It pays the listing's address less than the price.
    #[error("the payment is {paid} sats; the price is {price} sats")]
    TooLittle {
        /// What it paid the address.
        paid: u64,
        /// The price.
        price: u64,
    },
    /// The same payment was already claimed by an earlier claim of its buyer.
    #[error("this payment was already claimed")]
    Replayed,
}

/// The outcome of [`settle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// Where the sale stands.
    pub state: SaleState,
    /// Each claim with its verdict, in the view's claim order.
    pub verdicts: Vec<(Claim, Verdict)>,
}

impl Settlement {
    /// Payments the seller should refund, with why.
    pub fn refunds(&self) -> impl Iterator<Item = (&Claim, RefundReason)> {
        self.verdicts.iter().filter_map(|(claim, verdict)| match verdict {
            Verdict::Refund(reason) => Some((claim, *reason)),
            _ => None,
        })
    }
}

/// Decides a listing's sale from its signed records, what the chain source says about the
/// claimed transactions, and the chain's tip height. Every peer with the same records and chain
/// view gets the same answer.
pub fn settle(view: &ListingView, payments: &HashMap<TxId, PaymentSeen>, tip_height: u32) -> Settlement {
    let listing = &view.listing;
    let mut verdicts: Vec<(Claim, Verdict)> = Vec::with_capacity(view.claims.len());
    // Valid payments ordered by the rule: confirmed ones by position, then unconfirmed by txid.
    let mut candidates: BTreeMap<(u8, Option<ChainPosition>, TxId), usize> = BTreeMap::new();
    // Payments already counted: a second claim of one (only its own buyer can make one that is
    // bound) is a replay.
    let mut counted: HashSet<TxId> = HashSet::new();
    for claim in &view.claims {
        let verdict = match payments.get(&claim.txid) {
            None => Verdict::Rejected(ClaimError::NotOnChain),
            Some(payment) if !payment.commitments.contains(&payment_commitment(&view.id, &claim.buyer)) => {
                Verdict::Rejected(ClaimError::NotBound)
            }
            Some(payment) if payment.paid_sats < listing.price_sats => {
                Verdict::Rejected(ClaimError::TooLittle { paid: payment.paid_sats, price: listing.price_sats })
            }
            Some(_) if !counted.insert(claim.txid) => Verdict::Rejected(ClaimError::Replayed),
            // Confirmed after the withdrawal (or not yet confirmed when it came): owed back.
            Some(payment) if view.withdrawn_at.is_some_and(|at| payment.confirmed.is_none_or(|p| p.height > at)) => {
                Verdict::Refund(RefundReason::Withdrawn)
            }
            Some(payment) => {
                let rank = (u8::from(payment.confirmed.is_none()), payment.confirmed, claim.txid);
                candidates.insert(rank, verdicts.len());
                Verdict::Queued
            }
        };
        verdicts.push((*claim, verdict));
    }

    let needed = u32::from(listing.confirmations);
    let mut state = match view.withdrawn_at {
        Some(_) => SaleState::Withdrawn,
        None => SaleState::Open,
    };
    if let Some((&(_, position, txid), &leader)) = candidates.iter().next() {
        let confirmations = position.map_or(0, |at| tip_height.saturating_sub(at.height).saturating_add(1));
        let buyer = verdicts[leader].0.buyer;
        verdicts[leader].1 = Verdict::Leads;
        let final_sale = confirmations >= needed;
        state = match final_sale {
            true => SaleState::Owned { buyer, txid, confirmations },
            false => SaleState::Pending { buyer, txid, confirmations, needed },
        };
        // Once the sale is final (and confirmed, so no double spend can undo it), every other
        // valid payment is owed a refund; before that they wait their turn.
        if final_sale && confirmations > 0 {
            for (_, &index) in candidates.iter().skip(1) {
                verdicts[index].1 = Verdict::Refund(RefundReason::SoldToAnother);
            }
        }
    }
    Settlement { state, verdicts }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        PublicKey::from_secret_seed(&[n; 32])
    }

    fn listing(price: u64, confirmations: u8) -> ListingView {
        ListingView {
            id: ChangeId([7; 32]),
            seller: key(1),
            parcel: ParcelCoord { x: 0, z: 0 },
            listing: Listing {
                item: ModelRef { hash: [3; 32], bytes: 1000, triangles: 12, min: [0.0; 3], max: [1.0; 3] },
                title: Title::new("Crystal lamp").expect("title"),
                price_sats: price,
                pay_to: PayTo::new(&[0, 20, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9])
                    .expect("script"),
                confirmations,
                spot: Vec3::ZERO,
            },
            withdrawn_at: None,
            claims: Vec::new(),
        }
    }

    fn pay(view: &ListingView, buyer: PublicKey, txid: u8, sats: u64, at: Option<(u32, u32)>) -> PaymentSeen {
        PaymentSeen {
            txid: TxId([txid; 32]),
            paid_sats: sats,
            commitments: vec![payment_commitment(&view.id, &buyer)],
            confirmed: at.map(|(height, index)| ChainPosition { height, index }),
        }
    }

    fn seen(payments: &[PaymentSeen]) -> HashMap<TxId, PaymentSeen> {
        payments.iter().map(|payment| (payment.txid, payment.clone())).collect()
    }

    #[test]
    fn a_confirmed_bound_payment_buys_the_item() {
        let mut view = listing(20_000, 1);
        let buyer = key(2);
        view.claims.push(Claim { buyer, txid: TxId([1; 32]) });
        let payments = seen(&[pay(&view, buyer, 1, 20_000, None)]);
        let pending = settle(&view, &payments, 100);
        assert_eq!(
            pending.state,
            SaleState::Pending { buyer, txid: TxId([1; 32]), confirmations: 0, needed: 1 },
            "unconfirmed: pending"
        );
        let payments = seen(&[pay(&view, buyer, 1, 20_000, Some((101, 3)))]);
        let owned = settle(&view, &payments, 101);
        assert_eq!(owned.state, SaleState::Owned { buyer, txid: TxId([1; 32]), confirmations: 1 });
        assert_eq!(owned.verdicts, vec![(view.claims[0], Verdict::Leads)]);
    }

    #[test]
    fn wrong_amounts_unbound_and_missing_payments_are_rejected() {
        let mut view = listing(20_000, 1);
        let (buyer, thief) = (key(2), key(3));
        view.claims = vec![
            Claim { buyer, txid: TxId([1; 32]) },
            Claim { buyer: thief, txid: TxId([2; 32]) },
            Claim { buyer, txid: TxId([3; 32]) },
        ];
        let mut other_listing = view.clone();
        other_listing.id = ChangeId([8; 32]);
        let payments = seen(&[
            pay(&view, buyer, 1, 19_999, Some((50, 1))),
            // The thief names a payment bound to the real buyer.
            pay(&view, buyer, 2, 20_000, Some((50, 2))),
        ]);
        let settlement = settle(&view, &payments, 60);
        assert_eq!(settlement.state, SaleState::Open);
        let verdicts: Vec<Verdict> = settlement.verdicts.iter().map(|(_, verdict)| *verdict).collect();
        assert_eq!(
            verdicts,
            vec![
                Verdict::Rejected(ClaimError::TooLittle { paid: 19_999, price: 20_000 }),
                Verdict::Rejected(ClaimError::NotBound),
                Verdict::Rejected(ClaimError::NotOnChain),
            ]
        );
        // A payment made for another listing does not count here either.
        let mut replay = view.clone();
        replay.claims = vec![Claim { buyer, txid: TxId([4; 32]) }];
        let payments = seen(&[pay(&other_listing, buyer, 4, 20_000, Some((50, 1)))]);
        assert_eq!(settle(&replay, &payments, 60).verdicts[0].1, Verdict::Rejected(ClaimError::NotBound));
    }

    #[test]
    fn the_first_confirmed_payment_wins_and_the_other_is_refunded() {
        let mut view = listing(20_000, 2);
        let (ada, bo) = (key(2), key(3));
        view.claims = vec![Claim { buyer: ada, txid: TxId([1; 32]) }, Claim { buyer: bo, txid: TxId([2; 32]) }];
        // Both in the mempool: the smaller txid leads, the other waits.
        let payments = seen(&[pay(&view, ada, 1, 20_000, None), pay(&view, bo, 2, 20_000, None)]);
        let settlement = settle(&view, &payments, 10);
        assert!(matches!(settlement.state, SaleState::Pending { buyer, .. } if buyer == ada));
        assert_eq!(settlement.verdicts[1].1, Verdict::Queued);
        // Bo's confirms first, in block 11: Bo leads whatever the claim order.
        let payments = seen(&[pay(&view, ada, 1, 20_000, Some((12, 1))), pay(&view, bo, 2, 20_000, Some((11, 5)))]);
        let settlement = settle(&view, &payments, 12);
        assert_eq!(settlement.state, SaleState::Owned { buyer: bo, txid: TxId([2; 32]), confirmations: 2 });
        assert_eq!(settlement.verdicts[0].1, Verdict::Refund(RefundReason::SoldToAnother));
        assert_eq!(settlement.refunds().count(), 1);
        // In the same block, the earlier position wins.
        let payments = seen(&[pay(&view, ada, 1, 20_000, Some((11, 1))), pay(&view, bo, 2, 20_000, Some((11, 5)))]);
        assert!(matches!(settle(&view, &payments, 12).state, SaleState::Owned { buyer, .. } if buyer == ada));
    }

    #[test]
    fn a_double_purchase_and_a_replayed_claim_do_not_count_twice() {
        let mut view = listing(20_000, 1);
        let buyer = key(2);
        view.claims = vec![
            Claim { buyer, txid: TxId([1; 32]) },
            Claim { buyer, txid: TxId([2; 32]) },
            Claim { buyer, txid: TxId([1; 32]) },
        ];
        let payments =
            seen(&[pay(&view, buyer, 1, 20_000, Some((20, 1))), pay(&view, buyer, 2, 20_000, Some((21, 1)))]);
        let settlement = settle(&view, &payments, 21);
        assert_eq!(settlement.state, SaleState::Owned { buyer, txid: TxId([1; 32]), confirmations: 2 });
        assert_eq!(settlement.verdicts[1].1, Verdict::Refund(RefundReason::SoldToAnother));
        assert_eq!(settlement.verdicts[2].1, Verdict::Rejected(ClaimError::Replayed));
    }

    #[test]
    fn a_double_spent_zero_conf_purchase_stops_counting() {
        let mut view = listing(5_000, 0);
        let buyer = key(2);
        view.claims = vec![Claim { buyer, txid: TxId([1; 32]) }];
        let payments = seen(&[pay(&view, buyer, 1, 5_000, None)]);
        assert_eq!(
            settle(&view, &payments, 5).state,
            SaleState::Owned { buyer, txid: TxId([1; 32]), confirmations: 0 }
        );
        // The buyer double-spends the coins elsewhere: the chain no longer has the payment.
        let settlement = settle(&view, &HashMap::new(), 6);
        assert_eq!(settlement.state, SaleState::Open);
        assert_eq!(settlement.verdicts[0].1, Verdict::Rejected(ClaimError::NotOnChain));
    }

    #[test]
    fn withdrawal_refunds_later_payments_but_keeps_earlier_sales() {
        let mut view = listing(20_000, 1);
        let (ada, bo) = (key(2), key(3));
        view.withdrawn_at = Some(30);
        view.claims = vec![Claim { buyer: ada, txid: TxId([1; 32]) }];
        let payments = seen(&[pay(&view, ada, 1, 20_000, Some((31, 0)))]);
        let settlement = settle(&view, &payments, 31);
        assert_eq!(settlement.state, SaleState::Withdrawn);
        assert_eq!(settlement.verdicts[0].1, Verdict::Refund(RefundReason::Withdrawn));
        view.claims.push(Claim { buyer: bo, txid: TxId([2; 32]) });
        let payments = seen(&[pay(&view, ada, 1, 20_000, Some((31, 0))), pay(&view, bo, 2, 20_000, Some((29, 0)))]);
        assert!(matches!(settle(&view, &payments, 31).state, SaleState::Owned { buyer, .. } if buyer == bo));
    }

    #[test]
    fn trade_records_travel_as_world_changes() {
        use crate::city::ParcelCoord;
        use crate::world::{Change, Op, Rejection, World};
        let parcel = ParcelCoord { x: 3, z: -2 };
        let (seller, buyer, stranger) = ([1; 32], [2; 32], [3; 32]);
        let sign = |secret: &[u8; 32], seq: u64, op: Op| {
            Change { author: PublicKey::from_secret_seed(secret), seq, op }.sign(secret).to_bytes()
        };
        let mut world = World::new();
        let listed = sign(&seller, 1, Op::List { parcel, listing: listing(20_000, 1).listing });
        assert!(listed.len() <= crate::world::MAX_CHANGE_BYTES, "a listing fits a change: {} bytes", listed.len());
        let (_, verified) = world.insert_bytes(&listed).expect("listing");
        let id = verified.id;
        let claim = Op::Buy { parcel, listing: id, txid: TxId([9; 32]) };
        world.insert_bytes(&sign(&buyer, 1, claim)).expect("a claim from anyone");
        let forged = Op::Withdraw { parcel, listing: id, at_height: 5 };
        assert_eq!(world.insert_bytes(&sign(&stranger, 1, forged)).err(), Some(Rejection::NotSeller));
        assert_eq!(world.check(PublicKey::from_secret_seed(&stranger), &forged), Err(Rejection::NotSeller));
        world.insert_bytes(&sign(&seller, 2, Op::Withdraw { parcel, listing: id, at_height: 7 })).expect("withdraw");
        let views = world.listings();
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].seller, PublicKey::from_secret_seed(&seller));
        assert_eq!(views[0].withdrawn_at, Some(7));
        assert_eq!(views[0].claims, vec![Claim { buyer: PublicKey::from_secret_seed(&buyer), txid: TxId([9; 32]) }]);
        // A bad listing is refused when verified, before it is held.
        let bad = sign(&seller, 3, Op::List { parcel, listing: Listing { price_sats: 1, ..listing(1, 1).listing } });
        assert_eq!(world.insert_bytes(&bad).err(), Some(Rejection::BadListing(ListingError::BadPrice)));
        // Trade records do not touch the parcel.
        assert!(world.parcel(parcel).owners.is_empty());
    }

    #[test]
    fn listings_are_checked() {
        let good = listing(20_000, 1).listing;
        assert_eq!(good.check(), Ok(()));
        assert_eq!(Listing { price_sats: 10, ..good }.check(), Err(ListingError::BadPrice));
        assert_eq!(Listing { confirmations: 0, ..good }.check(), Ok(()));
        assert_eq!(
            Listing { confirmations: 0, price_sats: ZERO_CONF_MAX_SATS + 1, ..good }.check(),
            Err(ListingError::BadConfirmations)
        );
        assert_eq!(Listing { confirmations: 7, ..good }.check(), Err(ListingError::BadConfirmations));
        assert_eq!(Listing { spot: Vec3::NAN, ..good }.check(), Err(ListingError::BadSpot));
        assert_eq!(Listing { title: Title([0xff; 32]), ..good }.check(), Err(ListingError::BadTitle));
        assert_eq!(Title::new("   "), None);
        assert_eq!(
            Title::new("ünïcode lamp that is far too long to fit").map(|t| t.text().map(str::len)),
            Some(Some(32))
        );
        let script: Vec<u8> = (0..34).collect();
        assert_eq!(PayTo::new(&script).expect("34 bytes").script(), script);
        assert_eq!(PayTo::new(&[0; 35]), None);
    }
}
