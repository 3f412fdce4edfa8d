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
//! signed records (see [`ListingView`]) and what its chain source says about the payments to the
//! listing's address ([`PaymentSeen`]); it needs neither the seller's node nor anyone's word:
//!
//! - A payment *qualifies* if it pays the listing's address at least the price and carries a
//!   commitment: its first 32-byte `OP_RETURN` payload ([`PaymentSeen::commitment`]).
//! - The chain orders qualifying payments: confirmed ones by block height, then position in the
//!   block; unconfirmed ones after every confirmed one, in txid order. The first one *leads*,
//!   whether or not its claim has arrived: the winner is decided by the chain, not by which
//!   claims a peer happens to hold.
//! - A claim is *bound* to a payment when the payment's commitment is [`payment_commitment`] of
//!   the listing and the claim's author. The leading payment's bound claim names the buyer: the
//!   buyer owns the item once the payment has the listing's confirmations. Until its buyer claims
//!   it, the sale is [`SaleState::Unclaimed`]: the item is reserved for that payment and nobody
//!   else can buy it.
//! - A listing may ask for no confirmation only up to [`ZERO_CONF_MAX_SATS`]; such a purchase is
//!   owned at once but shown as pending until it confirms. A payment that is double-spent away
//!   stops counting.
//! - Every other qualifying payment is flagged for refund once the leading payment is *final*:
//!   confirmed, with at least the listing's confirmations.
//! - A withdrawal ([`ListingView::withdrawn_at`]) closes the stall: clients stop offering it and
//!   refuse to pay it, and a listing withdrawn before any qualifying payment shows as
//!   [`SaleState::Withdrawn`]. It never takes an item from the leading payment, whatever height
//!   it names.
//!
//! **What is final, and why.** A sale is final when its payment leads and has the listing's
//! confirmations (at least one). Neither signed record can move it afterwards: a withdrawal's
//! height is only the seller's word, so it cannot be allowed to reach back before a payment the
//! chain shows (a seller who withdrew received the money anyway, and owes refunds for payments
//! that lost), and a late claim of an earlier payment changes nothing, because that payment was
//! already leading as soon as the chain source reported it (the sale showed as unclaimed, not as
//! owned by anyone else). Claims only reveal who made a payment; the chain alone says which
//! payment came first, so the same records and the same chain give every peer the same sale, and
//! more records never change an owned one. Only a reorganisation of the chain deeper than the
//! listing's confirmations could, as for any bitcoin payment. Because the first qualifying
//! payment wins even without a claim, a payment with a commitment nobody can claim (paying the
//! price to the seller) reserves the item forever; that costs the price. All of this holds for
//! the chain as the peer's chain source reports it: a source that hides the earliest payment can
//! mislead the peers that ask it (the README says what the wallet checks and what it trusts).
//!
//! **Paid over Lightning.** A listing whose address is [`PayTo::LIGHTNING`] is paid to the
//! seller's Lightning node instead, at most [`MAX_LIGHTNING_PRICE_SATS`], with no confirmations.
//! The buyer asks the seller's client for an invoice; with it comes a *voucher*: the seller's
//! signature (their world key) over the listing, the buyer and the invoice's payment hash
//! ([`voucher_message`]). Paying the invoice gives the buyer its preimage, which the seller's
//! node reveals only when paid. The buyer's claim ([`LightningProof`]: preimage and voucher) is
//! then checked by every peer alike, with no chain and no node: the voucher must be the seller's
//! signature for this listing, this buyer and SHA-256 of the preimage. The binding is as strong
//! as the on-chain commitment (nobody else can claim with the buyer's voucher, and a voucher
//! for one listing is worth nothing for another), and the sale is final at once. A seller's
//! node takes only the first payment per listing and sends the others back; should two
//! vouched payments for one listing ever both be taken, every peer sees it from the two
//! signatures and decides it the same way (the lower payment hash owns the item, the other is
//! owed a refund) rather than by arrival.
//!
//! This module knows nothing of bitcoin: scripts are bytes and transaction ids are 32 bytes; the
//! wallet turns chain data into [`PaymentSeen`].

use std::collections::{HashMap, HashSet};
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

/// The largest price of a listing paid over Lightning: 0.1 BTC, the most the wallet pays over
/// Lightning at once.
pub const MAX_LIGHTNING_PRICE_SATS: u64 = 10_000_000;

/// Domain separation for the seller's vouchers.
const VOUCHER_CONTEXT: &[u8] = b"sanctuary lightning sale voucher v1";

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

    /// The mark of a listing paid over Lightning: no script at all (length 0, which no chain
    /// payment can match and which peers that know only chain payments refuse as no address).
    pub const LIGHTNING: PayTo = PayTo { len: 0, head: [0xff; 32], tail: [0xff; 2] };

    /// Whether the listing is paid over Lightning.
    pub fn is_lightning(&self) -> bool {
        *self == Self::LIGHTNING
    }

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
    /// A Lightning price of nothing or above the Lightning bound.
    #[error("a Lightning price is between 1 sat and {MAX_LIGHTNING_PRICE_SATS} sats")]
    BadLightningPrice,
}

impl Listing {
    /// Checks what every peer checks before holding a listing.
    pub fn check(&self) -> Result<(), ListingError> {
        if self.title.text().is_none() {
            return Err(ListingError::BadTitle);
        }
        if self.pay_to.is_lightning() {
            if !(1..=MAX_LIGHTNING_PRICE_SATS).contains(&self.price_sats) {
                return Err(ListingError::BadLightningPrice);
            }
            if self.confirmations != 0 {
                return Err(ListingError::BadConfirmations);
            }
            return if self.spot.is_finite() { Ok(()) } else { Err(ListingError::BadSpot) };
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

/// What the seller signs to vouch for a Lightning payment: the context, the listing, the buyer
/// and the invoice's payment hash.
pub fn voucher_message(listing: &ChangeId, buyer: &PublicKey, payment_hash: &[u8; 32]) -> Vec<u8> {
    [VOUCHER_CONTEXT, &listing.0, buyer.as_bytes(), payment_hash].concat()
}

/// The seller's voucher, signed with their world key's secret seed.
pub fn sign_voucher(
    secret_seed: &[u8; 32],
    listing: &ChangeId,
    buyer: &PublicKey,
    payment_hash: &[u8; 32],
) -> [u8; 64] {
    use ed25519_dalek::Signer;
    let key = ed25519_dalek::SigningKey::from_bytes(secret_seed);
    key.sign(&voucher_message(listing, buyer, payment_hash)).to_bytes()
}

/// Whether `proof` shows that `buyer` paid `seller` for `listing`: the voucher is the seller's
/// signature over the listing, the buyer and SHA-256 of the preimage.
pub fn voucher_holds(seller: &PublicKey, listing: &ChangeId, buyer: &PublicKey, proof: &LightningProof) -> bool {
    voucher_signed(seller, listing, buyer, &proof.payment_hash(), &proof.voucher)
}

/// Whether `voucher` is `seller`'s signature over the listing, the buyer and `payment_hash`:
/// what a buyer checks before paying.
pub fn voucher_signed(
    seller: &PublicKey,
    listing: &ChangeId,
    buyer: &PublicKey,
    payment_hash: &[u8; 32],
    voucher: &[u8; 64],
) -> bool {
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(seller.as_bytes()) else { return false };
    let signature = ed25519_dalek::Signature::from_bytes(voucher);
    key.verify_strict(&voucher_message(listing, buyer, payment_hash), &signature).is_ok()
}

/// A Lightning payment's proof, as a buyer's claim carries it.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LightningProof {
    /// The payment's preimage: the seller's node reveals it only to whoever paid the invoice.
    pub preimage: [u8; 32],
    /// The seller's signature over the listing, the buyer and the payment hash
    /// ([`voucher_message`]).
    #[serde(with = "crate::world::signature_bytes")]
    pub voucher: [u8; 64],
}

impl LightningProof {
    /// The payment hash: SHA-256 of the preimage, as the invoice named it.
    pub fn payment_hash(&self) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(self.preimage).into()
    }
}

impl fmt::Debug for LightningProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The preimage is the proof: shown only by the hash it answers.
        let hash = self.payment_hash();
        write!(f, "LightningProof(hash {:02x}{:02x}{:02x}{:02x}…)", hash[0], hash[1], hash[2], hash[3])
    }
}

/// A buyer's signed claim that they paid a Lightning listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LightningClaim {
    /// Who claims.
    pub buyer: PublicKey,
    /// The proof.
    pub proof: LightningProof,
}

/// Where a confirmed transaction sits in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChainPosition {
    /// The block's height.
    pub height: u32,
    /// The transaction's index in the block.
    pub index: u32,
}

/// What a chain source says about one transaction paying a listing's address, reduced to what
/// the rule needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentSeen {
    /// The transaction.
    pub txid: TxId,
    /// The sum of its outputs paying the listing's script.
    pub paid_sats: u64,
    /// Every 32-byte `OP_RETURN` payload it carries, in output order.
    pub commitments: Vec<[u8; 32]>,
    /// Its block and position, or `None` while it waits in the mempool.
    pub confirmed: Option<ChainPosition>,
}

impl PaymentSeen {
    /// The payment's commitment: its first 32-byte `OP_RETURN` payload. Only the first counts, so
    /// one payment binds at most one buyer, whichever claims arrive.
    pub fn commitment(&self) -> Option<&[u8; 32]> {
        self.commitments.first()
    }

    /// Whether the payment takes part in the sale of an item priced `price_sats`: it pays at least
    /// the price and carries a commitment.
    pub fn qualifies(&self, price_sats: u64) -> bool {
        self.paid_sats >= price_sats && self.commitment().is_some()
    }

    /// Where the rule ranks the payment: confirmed ones by position, then unconfirmed ones by txid.
    fn rank(&self) -> (bool, Option<ChainPosition>, TxId) {
        (self.confirmed.is_none(), self.confirmed, self.txid)
    }
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
    /// The chain height the seller said when withdrawing it, if they did (the lowest, if several).
    /// Only the seller's word: it closes the stall, and the rule never uses the height.
    pub withdrawn_at: Option<u32>,
    /// The buyers' claims, in order.
    pub claims: Vec<Claim>,
    /// The buyers' Lightning claims, in order (only a listing paid over Lightning counts them).
    pub paid: Vec<LightningClaim>,
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
    /// A qualifying payment leads but no claim bound to it is known yet: the item is reserved
    /// for whoever made it, and nobody else can buy it.
    Unclaimed {
        /// The leading payment.
        txid: TxId,
        /// Confirmations it has.
        confirmations: u32,
    },
    /// The seller withdrew it and no qualifying payment is known.
    Withdrawn,
    /// The item belongs to the buyer, paid over Lightning: final at once.
    Paid {
        /// The new owner.
        buyer: PublicKey,
        /// The payment's hash.
        payment_hash: [u8; 32],
    },
}

/// What the rule says about one claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// This payment leads (the sale is pending or owned by it).
    Leads,
    /// Valid, but waits behind a leading payment that is not final yet.
    Queued,
    /// Valid, but the item went to an earlier payment: the seller owes a refund.
    Refund(RefundReason),
    /// Does not count.
    Rejected(ClaimError),
}

/// Why a valid payment did not buy the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RefundReason {
    /// Someone else's payment came first on the chain.
    #[error("the item was sold to an earlier payment; the seller should refund this one")]
    SoldToAnother,
}

/// Why a claim does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// The chain source knows no such payment to the listing's address (never sent, replaced
    /// by a double spend, or paying somewhere else).
    #[error("the payment is not on the chain (never broadcast, double-spent away, or paying another address)")]
    NotOnChain,
    /// The transaction's commitment is not to this listing and this buyer: someone else's
    /// payment, or one made for another listing.
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
    /// A Lightning claim whose voucher is not the seller's for this listing, buyer and payment.
    #[error("the seller's voucher does not hold for this buyer and payment")]
    BadVoucher,
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
/// payments to the listing's address (every one it knows, claimed or not, keyed by txid), and the
/// chain's tip height. Every peer with the same records and chain view gets the same answer, and
/// more claims never take an owned item from its buyer (see the module's documentation).
pub fn settle(view: &ListingView, payments: &HashMap<TxId, PaymentSeen>, tip_height: u32) -> Settlement {
    let listing = &view.listing;
    if listing.pay_to.is_lightning() {
        return settle_lightning(view);
    }
    // The chain decides which payment leads, claimed or not.
    let leader =
        payments.values().filter(|payment| payment.qualifies(listing.price_sats)).min_by_key(|payment| payment.rank());
    let confirmations = |payment: &PaymentSeen| {
        payment.confirmed.map_or(0, |at| tip_height.saturating_sub(at.height).saturating_add(1))
    };
    let needed = u32::from(listing.confirmations);
    let final_sale = leader.is_some_and(|leader| confirmations(leader) >= needed.max(1));

    let mut verdicts: Vec<(Claim, Verdict)> = Vec::with_capacity(view.claims.len());
    let mut buyer = None;
    // Payments already counted: a second claim of one (only its own buyer can make one that is
    // bound) is a replay.
    let mut counted: HashSet<TxId> = HashSet::new();
    for claim in &view.claims {
        let verdict = match payments.get(&claim.txid) {
            None => Verdict::Rejected(ClaimError::NotOnChain),
            Some(payment) if payment.commitment() != Some(&payment_commitment(&view.id, &claim.buyer)) => {
                Verdict::Rejected(ClaimError::NotBound)
            }
            Some(payment) if payment.paid_sats < listing.price_sats => {
                Verdict::Rejected(ClaimError::TooLittle { paid: payment.paid_sats, price: listing.price_sats })
            }
            Some(_) if !counted.insert(claim.txid) => Verdict::Rejected(ClaimError::Replayed),
            Some(payment) if leader.is_some_and(|leader| leader.txid == payment.txid) => {
                buyer = Some(claim.buyer);
                Verdict::Leads
            }
            // Once the leader is final (and confirmed, so no double spend can undo it), every
            // other valid payment is owed a refund; before that they wait their turn.
            Some(_) if final_sale => Verdict::Refund(RefundReason::SoldToAnother),
            Some(_) => Verdict::Queued,
        };
        verdicts.push((*claim, verdict));
    }

    let state = match (leader, buyer) {
        (None, _) if view.withdrawn_at.is_some() => SaleState::Withdrawn,
        (None, _) => SaleState::Open,
        (Some(leader), None) => SaleState::Unclaimed { txid: leader.txid, confirmations: confirmations(leader) },
        (Some(leader), Some(buyer)) => {
            let confirmations = confirmations(leader);
            match confirmations >= needed {
                true => SaleState::Owned { buyer, txid: leader.txid, confirmations },
                false => SaleState::Pending { buyer, txid: leader.txid, confirmations, needed },
            }
        }
    };
    Settlement { state, verdicts }
}

/// [`settle`] for a listing paid over Lightning: the claims whose vouchers hold are payments;
/// the one with the lowest payment hash owns the item (the only one, unless the seller vouched
/// for two), every other is owed a refund. Claims are listed with their payment hash as `txid`.
fn settle_lightning(view: &ListingView) -> Settlement {
    let valid = |claim: &LightningClaim| voucher_holds(&view.seller, &view.id, &claim.buyer, &claim.proof);
    let leader = view.paid.iter().filter(|claim| valid(claim)).min_by_key(|claim| claim.proof.payment_hash());
    let mut counted: HashSet<[u8; 32]> = HashSet::new();
    let verdicts = view
        .paid
        .iter()
        .map(|claim| {
            let hash = claim.proof.payment_hash();
            let verdict = if !valid(claim) {
                Verdict::Rejected(ClaimError::BadVoucher)
            } else if !counted.insert(hash) {
                Verdict::Rejected(ClaimError::Replayed)
            } else if leader.is_some_and(|leader| leader.proof.payment_hash() == hash) {
                Verdict::Leads
            } else {
                Verdict::Refund(RefundReason::SoldToAnother)
            };
            (Claim { buyer: claim.buyer, txid: TxId(hash) }, verdict)
        })
        .collect();
    let state = match leader {
        Some(leader) => SaleState::Paid { buyer: leader.buyer, payment_hash: leader.proof.payment_hash() },
        None if view.withdrawn_at.is_some() => SaleState::Withdrawn,
        None => SaleState::Open,
    };
    Settlement { state, verdicts }
}

#[cfg(test)]
mod tests;
