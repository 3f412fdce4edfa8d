//! One parcel: the changes held for it, the owner chain they give, and the state its edits
//! build, replayed in one order on every peer.

use std::collections::{BTreeMap, BTreeSet};

use glam::Vec2;
use serde::Serialize;

use super::change::{Change, ChangeId, Object, ObjectId, Op, Rejection, SignedChange, budget};
use crate::city::{ParcelCoord, home_parcel};
use crate::identity::PublicKey;

/// The applied state of one parcel.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ParcelState {
    /// Owners by epoch: `owners[e]` owns epoch `e`; the last one owns the parcel now.
    pub owners: Vec<PublicKey>,
    /// The objects on it, by id.
    pub objects: BTreeMap<ObjectId, Object>,
    /// Triangles of all objects.
    pub triangles: u64,
    /// Model bytes of all objects.
    pub bytes: u64,
    /// How many held edits were skipped by the rules (over budget, outside, not the owner).
    pub skipped: u32,
    /// The keys its owners keep off it, at most [`budget::BANS`].
    pub banned: BTreeSet<PublicKey>,
}

impl ParcelState {
    /// Who owns the parcel now.
    pub fn owner(&self) -> Option<PublicKey> {
        self.owners.last().copied()
    }

    /// Whether `key` may walk onto the parcel: everyone but those its owner banned (an owner
    /// never keeps themselves off).
    pub fn admits(&self, key: &PublicKey) -> bool {
        !self.banned.contains(key) || self.owner() == Some(*key)
    }

    /// The current epoch, in which new edits are made.
    pub fn epoch(&self) -> u32 {
        self.owners.len().saturating_sub(1) as u32
    }

    /// Checks an edit against this state and applies it, or says why not.
    pub(crate) fn apply(&mut self, parcel: ParcelCoord, op: &Op) -> Result<(), Rejection> {
        match *op {
            Op::Put { id, object, .. } => {
                let (low, high) = object.aabb();
                let bounds = parcel.bounds();
                let inside = |point: Vec2| point.cmpge(bounds.min).all() && point.cmple(bounds.max).all();
                if !inside(Vec2::new(low.x, low.z)) || !inside(Vec2::new(high.x, high.z)) {
                    return Err(Rejection::OutsideParcel);
                }
                if high.y > budget::HEIGHT || low.y < -0.01 {
                    return Err(Rejection::TooHigh { top: high.y });
                }
                let previous = self.objects.get(&id);
                if previous.is_none() && self.objects.len() >= budget::ENTITIES {
                    return Err(Rejection::TooManyEntities);
                }
                let triangles = self.triangles - previous.map_or(0, Object::triangles) + object.triangles();
                if triangles > budget::TRIANGLES {
                    return Err(Rejection::TooManyTriangles { triangles });
                }
                let bytes = self.bytes - previous.map_or(0, Object::bytes) + object.bytes();
                if bytes > budget::BYTES {
                    return Err(Rejection::TooManyBytes { bytes });
                }
                self.triangles = triangles;
                self.bytes = bytes;
                self.objects.insert(id, object);
                Ok(())
            }
            Op::Remove { id, .. } => {
                let object = self.objects.remove(&id).ok_or(Rejection::NoSuchObject)?;
                self.triangles -= object.triangles();
                self.bytes -= object.bytes();
                Ok(())
            }
            Op::Ban { subject, banned: true, .. } => {
                if !self.banned.contains(&subject) && self.banned.len() >= budget::BANS {
                    return Err(Rejection::TooManyBans);
                }
                self.banned.insert(subject);
                Ok(())
            }
            Op::Ban { subject, banned: false, .. } => {
                self.banned.remove(&subject);
                Ok(())
            }
            Op::Claim { .. }
            | Op::Transfer { .. }
            | Op::List { .. }
            | Op::Withdraw { .. }
            | Op::Buy { .. }
            | Op::BuyLightning { .. }
            | Op::Trust { .. }
            | Op::Host { .. }
            | Op::Profile { .. } => Ok(()),
        }
    }
}

/// The order edits apply in: epoch, then the author's sequence, then id.
pub(crate) type OrderKey = (u32, u64, ChangeId);

/// Every change held for one parcel, and the state they give.
#[derive(Debug, Default)]
pub(crate) struct ParcelLog {
    pub(crate) claims: BTreeMap<[u8; 32], (PublicKey, ChangeId)>,
    pub(crate) transfers: BTreeMap<OrderKey, (PublicKey, PublicKey)>,
    pub(crate) edits: BTreeMap<OrderKey, SignedChange>,
    pub(crate) state: ParcelState,
    /// The transfer that ended each epoch: its author's sequence number.
    pub(crate) seals: Vec<u64>,
    /// The key of the last edit applied, for appending in order without a rebuild.
    pub(crate) last_applied: Option<OrderKey>,
    /// Claims or transfers came since the owner chain was worked out.
    pub(crate) chain_dirty: bool,
    /// Edits came out of order (or the chain changed) since the state was replayed.
    pub(crate) dirty: bool,
}

impl ParcelLog {
    /// Works out the owner chain and replays every edit.
    pub(crate) fn rebuild(&mut self, parcel: ParcelCoord) {
        if self.chain_dirty {
            self.rebuild_chain();
        }
        let mut state = ParcelState { owners: std::mem::take(&mut self.state.owners), ..ParcelState::default() };
        self.last_applied = None;
        let keys: Vec<OrderKey> = self.edits.keys().copied().collect();
        for key in keys {
            let change = self.edits[&key].change;
            match self.admit(&state, &change) {
                Ok(()) => {
                    if state.apply(parcel, &change.op).is_err() {
                        state.skipped += 1;
                    }
                }
                Err(_) => state.skipped += 1,
            }
            self.last_applied = Some(key);
        }
        self.state = state;
        self.dirty = false;
    }

    /// Works out who owned the parcel in each epoch from the claims and transfers held.
    pub(crate) fn rebuild_chain(&mut self) {
        let mut owners = Vec::new();
        let mut seals = Vec::new();
        if let Some((_, (owner, _))) = self.claims.iter().next() {
            owners.push(*owner);
            loop {
                let epoch = owners.len() as u32 - 1;
                let current = owners[owners.len() - 1];
                let next = self
                    .transfers
                    .range((epoch, 0, ChangeId([0; 32]))..)
                    .take_while(|((e, _, _), _)| *e == epoch)
                    .find(|(_, (author, _))| *author == current);
                let Some(((_, seq, _), (_, to))) = next else { break };
                seals.push(*seq);
                owners.push(*to);
                // A chain longer than the transfers held cannot form, so this ends.
            }
        }
        self.state.owners = owners;
        self.seals = seals;
        self.chain_dirty = false;
        self.dirty = true;
    }

    /// Whether a transfer or edit could count, now or once the claim or transfers it depends on
    /// arrive: the author owns its epoch, or the epoch is not reached yet (its transfer may be on
    /// the way), or, for a parcel not claimed yet, it is the author's home.
    pub(crate) fn may_hold(&self, change: &Change) -> Result<(), Rejection> {
        let epoch = change.op.epoch() as usize;
        let owners = &self.state.owners;
        match owners.get(epoch) {
            Some(owner) if *owner != change.author => Err(Rejection::NotOwner { owner: *owner }),
            Some(_) => match self.seals.get(epoch) {
                Some(seal) if change.seq >= *seal && !matches!(change.op, Op::Transfer { .. }) => {
                    Err(Rejection::AfterTransfer)
                }
                _ => Ok(()),
            },
            None if owners.is_empty() && epoch == 0 && Some(home_parcel(&change.author)) != change.op.parcel() => {
                Err(Rejection::Unclaimed)
            }
            None => Ok(()),
        }
    }

    /// Whether the author of an edit owned the parcel when they made it.
    pub(crate) fn admit(&self, state: &ParcelState, change: &Change) -> Result<(), Rejection> {
        let epoch = change.op.epoch() as usize;
        let Some(owner) = state.owners.get(epoch) else {
            return Err(match state.owners.is_empty() {
                true => Rejection::Unclaimed,
                // An edit in an epoch not reached yet waits for its transfer.
                false => Rejection::NotOwner { owner: state.owners[state.owners.len() - 1] },
            });
        };
        if *owner != change.author {
            return Err(Rejection::NotOwner { owner: *owner });
        }
        if let Some(seal) = self.seals.get(epoch)
            && change.seq >= *seal
        {
            return Err(Rejection::AfterTransfer);
        }
        Ok(())
    }
}
