//! The persistent world: signed changes to city parcels and the rules every peer applies to them.
//!
//! A change is signed by its author and names the parcel it touches. Whether it counts is decided
//! by rules that look only at signatures and at a deterministic order, never at anybody's clock:
//!
//! - A key *claims* its home parcel ([`home_parcel`]); when two keys claim the same parcel the
//!   smaller claim rank wins, whatever order the claims arrived in. The winner owns epoch 0.
//! - The owner of epoch `e` may *transfer* the parcel to another key; the transfer names `e` and
//!   starts epoch `e + 1`. Should an owner sign two transfers for one epoch, the one that sorts
//!   first (by the author's sequence number, then by change id) counts.
//! - Edits (put and remove objects) name the epoch they were made in; they count only when their
//!   author owned the parcel in that epoch and, for an epoch that has ended, were made before the
//!   transfer that ended it (by the author's own sequence numbers).
//! - Edits apply in the order (epoch, sequence, id). An edit that would break a budget (entities,
//!   triangles, bytes, height, or the parcel's borders) is skipped, and skipped the same way on
//!   every peer.
//!
//! The state of every parcel is a pure function of the *set* of changes a peer holds, so peers
//! that hold the same set hold byte-identical state, whatever order the changes came in, with
//! duplicates, after drops healed by sync. [`World::state_hash`] proves it.

mod change;
mod hosts;
mod parcel;
mod profiles;
mod statements;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use change::check_object;
pub(crate) use change::signature_bytes;
pub use change::{
    Change, ChangeId, MAX_CHANGE_BYTES, MAX_MODEL_EXTENT, ModelRef, Object, ObjectId, ObjectKind, Op, Rejection,
    SignedChange, VERIFY_BATCH, Verified, Verifier, budget, primitive_triangles,
};
use hosts::Hosts;
pub use hosts::{MAX_HOST_RECORDS, MAX_HOSTS};
pub use parcel::ParcelState;
use parcel::{OrderKey, ParcelLog};
use profiles::Profiles;
pub use profiles::{MAX_PROFILE_NAME_CHARS, ProfileName};
pub use statements::MAX_TRUST_RECORDS;
use statements::Statements;

use crate::city::{ParcelCoord, claim_rank, home_parcel};
use crate::identity::PublicKey;
use crate::trade::{Claim, LightningClaim, ListingView};
use crate::trust::{Statement, TrustGraph};

/// The most trade records (listings, withdrawals, claims) held per author. Past it, the ones
/// with the lowest sequence numbers are kept, so that every peer keeps the same ones.
pub const MAX_TRADE_RECORDS_PER_AUTHOR: usize = 256;
/// The most changes held per author for an epoch of a parcel that has not begun (they wait for
/// the transfer that would make their author the owner). Past it, more are refused until some
/// of them can count; sync hands changes on transfers first, so an honest buyer never meets it.
pub const MAX_WAITING_PER_AUTHOR: usize = 64;

/// Records of one author kept under a budget: the `limit` with the lowest `(sequence, id)`.
#[derive(Debug, Default)]
struct Budgeted {
    records: HashMap<PublicKey, BTreeSet<(u64, ChangeId)>>,
}

impl Budgeted {
    /// Makes room for `key` of `author`: `Ok(None)` if it fits, `Ok(Some(highest))` if it fits
    /// once the author's highest record is dropped (it is forgotten here; the caller drops the
    /// change), `Err` if it is higher than every record kept.
    fn admit(
        &mut self,
        author: PublicKey,
        key: (u64, ChangeId),
        limit: usize,
    ) -> Result<Option<(u64, ChangeId)>, Rejection> {
        let Some(kept) = self.records.get_mut(&author) else { return Ok(None) };
        if kept.len() < limit {
            return Ok(None);
        }
        match kept.last().copied() {
            Some(highest) if key < highest => {
                kept.remove(&highest);
                Ok(Some(highest))
            }
            _ => Err(Rejection::OverBudget(limit)),
        }
    }

    fn insert(&mut self, author: PublicKey, key: (u64, ChangeId)) {
        self.records.entry(author).or_default().insert(key);
    }
}

/// What happened to a change given to [`World::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// New: it is held now (and stored by the caller).
    New,
    /// Already held.
    Duplicate,
}

/// Every parcel's changes and state, as one peer holds them.
#[derive(Debug, Default)]
pub struct World {
    parcels: BTreeMap<ParcelCoord, ParcelLog>,
    held: HashMap<ChangeId, SignedChange>,
    /// Trade records (listings, withdrawals, claims), apart from the parcels' edits.
    trade: BTreeMap<ChangeId, Change>,
    /// Trade records per author, under [`MAX_TRADE_RECORDS_PER_AUTHOR`].
    trade_budget: Budgeted,
    /// Changes held while their epoch had not begun, per author (parcel and epoch), under
    /// [`MAX_WAITING_PER_AUTHOR`]; those whose epoch has begun since no longer count.
    waiting: HashMap<PublicKey, Vec<(ParcelCoord, u32)>>,
    /// Trust statements, apart from the parcels.
    statements: Statements,
    /// Who keeps whose things (host statements), apart from the parcels.
    hosts: Hosts,
    /// People's names and colours (profile statements).
    profiles: Profiles,
    verifier: Verifier,
}

impl World {
    /// An empty world.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many changes are held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether no change is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Whether the change with this id is held.
    pub fn contains(&self, id: &ChangeId) -> bool {
        self.held.contains_key(id)
    }

    /// Verifies bytes from anywhere and takes the change if the rules allow holding it.
    pub fn insert_bytes(&mut self, bytes: &[u8]) -> Result<(Inserted, Verified), Rejection> {
        let verified = self.verifier.verify(bytes)?;
        Ok((self.insert(verified)?, verified))
    }

    /// Takes a verified change if the rules allow holding it.
    ///
    /// A change is held when it could count: a claim of the author's own home, or an edit or
    /// transfer by the owner of its epoch (or for an epoch not reached yet, which may come with
    /// a transfer still on its way). Edits that break budgets are held too (the author owns the
    /// parcel) but skipped when applied. A non-owner's change is refused and never held.
    pub fn insert(&mut self, verified: Verified) -> Result<Inserted, Rejection> {
        let Verified { signed, id } = verified;
        if self.held.contains_key(&id) {
            return Ok(Inserted::Duplicate);
        }
        let change = signed.change;
        let Some(parcel) = change.op.parcel() else {
            return self.insert_statement(change, signed, id);
        };
        if change.op.is_trade() {
            match change.op {
                Op::List { listing, .. } => listing.check()?,
                Op::Withdraw { listing, .. } => {
                    if let Some(listed) = self.trade.get(&listing)
                        && (listed.author != change.author || !matches!(listed.op, Op::List { .. }))
                    {
                        return Err(Rejection::NotSeller);
                    }
                }
                Op::Buy { listing, parcel, .. } | Op::BuyLightning { listing, parcel, .. } => {
                    if let Some(listed) = self.trade.get(&listing)
                        && !matches!(listed.op, Op::List { parcel: listed_at, .. } if listed_at == parcel)
                    {
                        return Err(Rejection::WrongParcel);
                    }
                }
                _ => {}
            }
            let key = (change.seq, id);
            if let Some((_, dropped)) = self.trade_budget.admit(change.author, key, MAX_TRADE_RECORDS_PER_AUTHOR)? {
                self.trade.remove(&dropped);
                self.held.remove(&dropped);
            }
            self.trade_budget.insert(change.author, key);
            self.trade.insert(id, change);
            self.held.insert(id, signed);
            return Ok(Inserted::New);
        }
        if let Op::Claim { parcel } = change.op {
            let home = home_parcel(&change.author);
            if home != parcel {
                return Err(Rejection::NotHome { home });
            }
        }
        let log = self.parcels.entry(parcel).or_default();
        if log.chain_dirty {
            log.rebuild_chain();
        }
        let key: OrderKey = (change.op.epoch(), change.seq, id);
        // A transfer or edit for an epoch that has not begun may become the owner's once the
        // transfer on its way arrives; until then any key could send them, so each key gets a
        // budget of them.
        let waits = matches!(change.op, Op::Transfer { .. } | Op::Put { .. } | Op::Remove { .. } | Op::Ban { .. })
            && change.op.epoch() as usize >= log.state.owners.len();
        if waits {
            log.may_hold(&change)?;
            self.admit_waiting(change.author, parcel, change.op.epoch())?;
        }
        let log = self.parcels.entry(parcel).or_default();
        match change.op {
            // Trade records and statements were taken above.
            Op::List { .. }
            | Op::Withdraw { .. }
            | Op::Buy { .. }
            | Op::BuyLightning { .. }
            | Op::Trust { .. }
            | Op::Host { .. }
            | Op::Profile { .. } => {}
            Op::Claim { .. } => {
                log.claims.insert(claim_rank(&change.author, parcel), (change.author, id));
                log.chain_dirty = true;
            }
            Op::Transfer { to, .. } => {
                log.may_hold(&change)?;
                log.transfers.insert(key, (change.author, to));
                log.chain_dirty = true;
            }
            Op::Put { .. } | Op::Remove { .. } | Op::Ban { .. } => {
                log.may_hold(&change)?;
                log.edits.insert(key, signed);
                let in_order = log.last_applied.is_none_or(|last| key > last);
                if in_order && !log.dirty {
                    // The common case: the newest edit of the current owner. Apply it at once.
                    let outcome = log.admit(&log.state, &change);
                    let mut state = std::mem::take(&mut log.state);
                    if outcome.is_err() || state.apply(parcel, &change.op).is_err() {
                        state.skipped += 1;
                    }
                    log.state = state;
                    log.last_applied = Some(key);
                } else {
                    log.dirty = true;
                }
            }
        }
        self.held.insert(id, signed);
        Ok(Inserted::New)
    }

    /// Takes a trust or host statement; the one it replaces is no longer held.
    fn insert_statement(&mut self, change: Change, signed: SignedChange, id: ChangeId) -> Result<Inserted, Rejection> {
        let replaced = match change.op {
            Op::Host { host, kept } => self.hosts.insert(change.author, change.seq, host, kept, id)?,
            Op::Profile { name, colour } => self.profiles.insert(change.author, change.seq, id, name, colour)?,
            _ => {
                let Some(statement) = statement_of(&change) else { return Err(Rejection::Malformed) };
                self.statements.insert(statement, id)?
            }
        };
        if let Some(replaced) = replaced {
            self.held.remove(&replaced);
        }
        self.held.insert(id, signed);
        Ok(Inserted::New)
    }

    /// Every trust statement held, as a graph to work out trust from.
    pub fn trust(&self) -> &TrustGraph {
        self.statements.graph()
    }

    /// The hosts `person` names now (see [`Op::Host`]), in key order.
    pub fn hosts_of(&self, person: &PublicKey) -> Vec<PublicKey> {
        self.hosts.of(person)
    }

    /// `person`'s name and colour as they last signed them into the world, if they have.
    pub fn profile_of(&self, person: &PublicKey) -> Option<(ProfileName, [u8; 3])> {
        self.profiles.of(person)
    }

    /// The people who name `host` as one of theirs now, in key order.
    pub fn hosted_by(&self, host: &PublicKey) -> Vec<PublicKey> {
        self.hosts.naming(host)
    }

    /// Counts a change of `author` waiting for `epoch` of `parcel` against the author's budget,
    /// or refuses it when the author already has as many waiting.
    fn admit_waiting(&mut self, author: PublicKey, parcel: ParcelCoord, epoch: u32) -> Result<(), Rejection> {
        let entries = self.waiting.entry(author).or_default();
        // Those whose epoch has begun since count no more.
        let mut begun = Vec::new();
        for (at, (waiting_parcel, waiting_epoch)) in entries.iter().enumerate() {
            if let Some(log) = self.parcels.get_mut(waiting_parcel) {
                if log.chain_dirty {
                    log.rebuild_chain();
                }
                if (*waiting_epoch as usize) < log.state.owners.len() {
                    begun.push(at);
                }
            }
        }
        for at in begun.into_iter().rev() {
            entries.swap_remove(at);
        }
        if entries.len() >= MAX_WAITING_PER_AUTHOR {
            return Err(Rejection::OverBudget(MAX_WAITING_PER_AUTHOR));
        }
        entries.push((parcel, epoch));
        Ok(())
    }

    /// Brings every parcel's state up to date with the changes held.
    pub fn settle(&mut self) {
        for (parcel, log) in &mut self.parcels {
            if log.dirty || log.chain_dirty {
                log.rebuild(*parcel);
            }
        }
    }

    /// The settled state of a parcel (an empty one when nothing is held for it).
    pub fn parcel(&mut self, parcel: ParcelCoord) -> ParcelState {
        match self.parcels.get_mut(&parcel) {
            Some(log) => {
                if log.dirty || log.chain_dirty {
                    log.rebuild(parcel);
                }
                log.state.clone()
            }
            None => ParcelState::default(),
        }
    }

    /// Parcels that hold anything, in order.
    pub fn parcels(&self) -> impl Iterator<Item = ParcelCoord> + '_ {
        self.parcels.keys().copied()
    }

    /// Whether `author` may make `op` now, and why not if not: what a builder's client asks
    /// before signing, so the person sees the reason instead of a change every peer skips.
    pub fn check(&mut self, author: PublicKey, op: &Op) -> Result<(), Rejection> {
        if let Op::Host { host, kept } = *op {
            return self.hosts.check(author, host, kept);
        }
        if let Op::Profile { .. } = op {
            return Ok(());
        }
        let Some(parcel) = op.parcel() else {
            let change = Change { author, seq: u64::MAX, op: *op };
            let statement = statement_of(&change).ok_or(Rejection::Malformed)?;
            return self.statements.check(&statement);
        };
        let mut state = self.parcel(parcel);
        if let Op::Put { object, .. } = op {
            check_object(object)?;
        }
        match op {
            Op::List { listing, .. } => Ok(listing.check()?),
            Op::Withdraw { listing, .. } => match self.trade.get(listing) {
                Some(listed) if listed.author == author && matches!(listed.op, Op::List { .. }) => Ok(()),
                _ => Err(Rejection::NotSeller),
            },
            Op::Buy { .. } => Ok(()),
            // Our own claim is checked as every peer will: a voucher that does not hold for the
            // listing, the buyer and the preimage is refused before it goes out.
            Op::BuyLightning { listing, proof, .. } => match self.trade.get(listing) {
                Some(Change { author: seller, op: Op::List { listing: listed, .. }, .. })
                    if listed.pay_to.is_lightning() =>
                {
                    if crate::trade::voucher_holds(seller, listing, &author, proof) {
                        Ok(())
                    } else {
                        Err(Rejection::BadVoucher)
                    }
                }
                _ => Err(Rejection::BadVoucher),
            },
            Op::Claim { parcel } => {
                let home = home_parcel(&author);
                if home != *parcel {
                    return Err(Rejection::NotHome { home });
                }
                Ok(())
            }
            _ => {
                let Some(owner) = state.owners.get(op.epoch() as usize) else {
                    return Err(match state.owner() {
                        None => Rejection::Unclaimed,
                        Some(owner) => Rejection::NotOwner { owner },
                    });
                };
                if *owner != author || op.epoch() != state.epoch() {
                    return Err(Rejection::NotOwner { owner: state.owner().unwrap_or(*owner) });
                }
                state.apply(parcel, op)
            }
        }
    }

    /// The ids of every change held, in no particular order.
    pub fn changes(&self) -> impl Iterator<Item = ChangeId> + '_ {
        self.held.keys().copied()
    }

    /// A held change by its id.
    pub fn get(&self, id: &ChangeId) -> Option<&SignedChange> {
        self.held.get(id)
    }

    /// The canonical bytes of the applied state: owners and objects of every parcel that has
    /// an owner, in parcel order. Equal sets of changes give equal bytes.
    pub fn state_bytes(&mut self) -> Vec<u8> {
        self.settle();
        let mut bytes = Vec::new();
        for (parcel, log) in &self.parcels {
            if log.state.owners.is_empty() {
                continue;
            }
            let entry = (parcel, &log.state.owners, &log.state.objects, &log.state.banned);
            bytes.extend(postcard::to_allocvec(&entry).unwrap_or_default());
        }
        // Trade records are a set: their ids in order (the sale itself depends on the chain).
        for id in self.trade.keys() {
            bytes.extend_from_slice(&id.0);
        }
        bytes
    }

    /// Every listing held, with its seller's withdrawals and the buyers' claims, in id order.
    /// Withdrawals by anyone but the seller and claims for unknown listings are left out.
    pub fn listings(&self) -> Vec<ListingView> {
        let mut views: BTreeMap<ChangeId, ListingView> = BTreeMap::new();
        for (id, change) in &self.trade {
            if let Op::List { parcel, listing } = change.op {
                let view = ListingView {
                    id: *id,
                    seller: change.author,
                    parcel,
                    listing,
                    withdrawn_at: None,
                    claims: Vec::new(),
                    paid: Vec::new(),
                };
                views.insert(*id, view);
            }
        }
        // Claims in a deterministic order: by the author's sequence, then change id.
        let mut records: Vec<(&ChangeId, &Change)> = self.trade.iter().collect();
        records.sort_by_key(|(id, change)| (change.seq, **id));
        for (_, change) in records {
            match change.op {
                Op::Withdraw { listing, at_height, .. } => {
                    if let Some(view) = views.get_mut(&listing)
                        && view.seller == change.author
                    {
                        view.withdrawn_at = Some(view.withdrawn_at.map_or(at_height, |at| at.min(at_height)));
                    }
                }
                Op::Buy { listing, txid, .. } => {
                    if let Some(view) = views.get_mut(&listing) {
                        view.claims.push(Claim { buyer: change.author, txid });
                    }
                }
                Op::BuyLightning { listing, proof, .. } => {
                    if let Some(view) = views.get_mut(&listing) {
                        view.paid.push(LightningClaim { buyer: change.author, proof });
                    }
                }
                _ => {}
            }
        }
        views.into_values().collect()
    }

    /// BLAKE3 of [`World::state_bytes`].
    pub fn state_hash(&mut self) -> [u8; 32] {
        *blake3::hash(&self.state_bytes()).as_bytes()
    }
}

/// The trust statement a change makes, if it makes one.
fn statement_of(change: &Change) -> Option<Statement> {
    match change.op {
        Op::Trust { subject, context, level } => {
            Some(Statement { author: change.author, subject, context, level, sequence: change.seq })
        }
        _ => None,
    }
}
