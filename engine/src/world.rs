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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use glam::{Vec2, Vec3};
use serde::{Deserialize, Serialize};

use crate::city::{ParcelCoord, claim_rank, home_parcel};
use crate::identity::PublicKey;
use crate::structure::{Placement, Rgb, Shape};
use crate::trade::{Claim, Listing, ListingError, ListingView, TxId};

/// What one parcel may hold. Decentraland's per-parcel caps are the reference.
pub mod budget {
    /// Objects on one parcel.
    pub const ENTITIES: usize = 200;
    /// Triangles of all objects on one parcel (primitives count what the renderer draws).
    pub const TRIANGLES: u64 = 10_000;
    /// Bytes of all imported models on one parcel.
    pub const BYTES: u64 = 15 * 1024 * 1024;
    /// The highest any object may reach, in metres above the ground.
    pub const HEIGHT: f32 = 64.0;
    /// The largest a single model may be, in bytes: one model may use the whole parcel.
    pub const MODEL_BYTES: u64 = BYTES;
}

/// The largest encoded signed change; anything longer is refused before decoding.
pub const MAX_CHANGE_BYTES: usize = 512;

/// Domain separation for change signatures.
const SIGNING_CONTEXT: &[u8] = b"sanctuary world change v1";

/// The BLAKE3 hash of a signed change's bytes: its name everywhere.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChangeId(pub [u8; 32]);

impl fmt::Debug for ChangeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: String = self.0[..4].iter().map(|byte| format!("{byte:02x}")).collect();
        write!(f, "ChangeId({hex}…)")
    }
}

/// An imported model, named by the BLAKE3 hash of its asset bundle, with the size its author
/// declared. Budgets count the declared figures; a peer that fetches the model refuses to show
/// it when the real figures are larger.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelRef {
    /// BLAKE3 of the bundle (the manifest blob that lists the model's files).
    pub hash: [u8; 32],
    /// Bytes of all the model's files together.
    pub bytes: u64,
    /// Triangles the model draws.
    pub triangles: u32,
    /// The smallest corner of the box around the model, in its own metres.
    pub min: [f32; 3],
    /// The largest corner of that box.
    pub max: [f32; 3],
}

/// The largest a model may be along any axis before scaling, in metres.
pub const MAX_MODEL_EXTENT: f32 = 256.0;

/// What an object is made of.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ObjectKind {
    /// One of the unit primitives, scaled by the placement.
    Primitive(Shape),
    /// An imported glTF model, scaled by the placement (its own units are metres).
    Model(ModelRef),
}

/// A thing a builder placed on a parcel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Object {
    /// Primitive or model.
    pub kind: ObjectKind,
    /// Where it stands, how it is turned, how big it is.
    pub placement: Placement,
    /// Its colour (models are tinted by it; white leaves them as authored).
    pub colour: Rgb,
}

/// Triangles the client draws for each primitive (its meshes' resolution).
pub fn primitive_triangles(shape: Shape) -> u64 {
    match shape {
        Shape::Cuboid => 12,
        Shape::Sphere => 760,
        Shape::Cylinder => 128,
        Shape::Cone => 64,
        Shape::Ring => 512,
    }
}

impl Object {
    /// The smallest and largest corners of the axis-aligned box around the placed object: a
    /// primitive is a unit shape around its placement's point, a model its declared box scaled
    /// and turned about its own origin at that point.
    pub fn aabb(&self) -> (Vec3, Vec3) {
        let (low, high) = match self.kind {
            ObjectKind::Primitive(_) => (Vec3::splat(-0.5), Vec3::splat(0.5)),
            ObjectKind::Model(model) => (Vec3::from(model.min), Vec3::from(model.max)),
        };
        let placement = &self.placement;
        (0..8)
            .map(|corner| {
                let pick = |bit: u32, axis: usize| if corner & bit == 0 { low[axis] } else { high[axis] };
                let local = Vec3::new(pick(1, 0), pick(2, 1), pick(4, 2)) * placement.scale;
                placement.translation + placement.rotation * local
            })
            .fold((Vec3::splat(f32::MAX), Vec3::splat(f32::MIN)), |(low, high), corner| {
                (low.min(corner), high.max(corner))
            })
    }

    /// Triangles this object draws.
    pub fn triangles(&self) -> u64 {
        match self.kind {
            ObjectKind::Primitive(shape) => primitive_triangles(shape),
            ObjectKind::Model(model) => u64::from(model.triangles),
        }
    }

    /// Bytes of asset this object needs.
    pub fn bytes(&self) -> u64 {
        match self.kind {
            ObjectKind::Primitive(_) => 0,
            ObjectKind::Model(model) => model.bytes,
        }
    }
}

/// An object's number on its parcel, chosen by whoever placed it.
pub type ObjectId = u64;

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// The author claims `parcel`, which must be their home parcel.
    Claim {
        /// The author's home parcel.
        parcel: ParcelCoord,
    },
    /// The owner of `epoch` hands `parcel` to `to`, starting epoch `epoch + 1`.
    Transfer {
        /// The parcel.
        parcel: ParcelCoord,
        /// The epoch the author owns and ends.
        epoch: u32,
        /// The new owner.
        to: PublicKey,
    },
    /// Places an object, or replaces the object with the same id.
    Put {
        /// The parcel.
        parcel: ParcelCoord,
        /// The epoch the author owns.
        epoch: u32,
        /// The object's number.
        id: ObjectId,
        /// The object.
        object: Object,
    },
    /// Removes an object.
    Remove {
        /// The parcel.
        parcel: ParcelCoord,
        /// The epoch the author owns.
        epoch: u32,
        /// The object's number.
        id: ObjectId,
    },
    /// Offers an item for sale (see [`crate::trade`]); `parcel` is where its stall stands.
    List {
        /// The parcel of the stall.
        parcel: ParcelCoord,
        /// What is offered, for how much, paid where.
        listing: Listing,
    },
    /// The seller withdraws a listing: payments confirmed above `at_height` are owed refunds.
    Withdraw {
        /// The listing's parcel.
        parcel: ParcelCoord,
        /// The listing.
        listing: ChangeId,
        /// The seller's chain tip when withdrawing.
        at_height: u32,
    },
    /// A buyer claims the item: `txid` paid for it, committing to the listing and the buyer.
    Buy {
        /// The listing's parcel.
        parcel: ParcelCoord,
        /// The listing.
        listing: ChangeId,
        /// The payment.
        txid: TxId,
    },
}

impl Op {
    /// The parcel the change touches.
    pub fn parcel(&self) -> ParcelCoord {
        match *self {
            Op::Claim { parcel }
            | Op::Transfer { parcel, .. }
            | Op::Put { parcel, .. }
            | Op::Remove { parcel, .. }
            | Op::List { parcel, .. }
            | Op::Withdraw { parcel, .. }
            | Op::Buy { parcel, .. } => parcel,
        }
    }

    /// Whether the change is a trade record rather than an edit of the parcel.
    pub fn is_trade(&self) -> bool {
        matches!(self, Op::List { .. } | Op::Withdraw { .. } | Op::Buy { .. })
    }

    /// The ownership epoch the change is made in (claims make epoch 0).
    fn epoch(&self) -> u32 {
        match *self {
            Op::Claim { .. } | Op::List { .. } | Op::Withdraw { .. } | Op::Buy { .. } => 0,
            Op::Transfer { epoch, .. } | Op::Put { epoch, .. } | Op::Remove { epoch, .. } => epoch,
        }
    }
}

/// The signed content of a change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Who made it.
    pub author: PublicKey,
    /// The author's sequence number: strictly increasing over everything the author signs.
    pub seq: u64,
    /// What it does.
    pub op: Op,
}

/// A change with its author's signature, as it travels and as it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SignedChange {
    /// The change.
    pub change: Change,
    /// ed25519 over [`SIGNING_CONTEXT`] and the change's postcard bytes.
    #[serde(with = "signature_bytes")]
    pub signature: [u8; 64],
}

mod signature_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 64], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 64], D::Error> {
        let bytes: &[u8] = Deserialize::deserialize(deserializer)?;
        bytes.try_into().map_err(|_| serde::de::Error::invalid_length(bytes.len(), &"64 bytes"))
    }
}

/// Why a change was not taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// More bytes than any change has.
    #[error("a change is at most {MAX_CHANGE_BYTES} bytes; this one is {0}")]
    TooLarge(usize),
    /// The bytes are not a change.
    #[error("not a world change")]
    Malformed,
    /// The signature does not match the author and content.
    #[error("the signature does not match")]
    BadSignature,
    /// Numbers that are not numbers, a rotation that is not one, a size of zero.
    #[error("the object's placement is not finite, turned by a non-rotation, or has no size")]
    BadPlacement,
    /// A claim for a parcel that is not the author's home.
    #[error("a key can only claim its own home parcel ({home:?})")]
    NotHome {
        /// The author's home parcel.
        home: ParcelCoord,
    },
    /// Nobody has claimed the parcel.
    #[error("nobody owns this parcel")]
    Unclaimed,
    /// Someone else owns the parcel (in the change's epoch).
    #[error("this parcel belongs to {owner}")]
    NotOwner {
        /// The owner in the change's epoch.
        owner: PublicKey,
    },
    /// The change was made in an epoch that its author had already ended by a transfer.
    #[error("the parcel was handed on before this change")]
    AfterTransfer,
    /// Part of the object lies outside the parcel's land.
    #[error("part of it lies outside the parcel")]
    OutsideParcel,
    /// The object reaches above the height limit or below the ground.
    #[error("it reaches {top:.1} m; parcels end at {} m (and at the ground)", budget::HEIGHT)]
    TooHigh {
        /// How high it would reach.
        top: f32,
    },
    /// The parcel would hold too many objects.
    #[error("a parcel holds at most {} objects", budget::ENTITIES)]
    TooManyEntities,
    /// The parcel's objects would draw too many triangles.
    #[error("{triangles} triangles; a parcel draws at most {}", budget::TRIANGLES)]
    TooManyTriangles {
        /// What the parcel would draw.
        triangles: u64,
    },
    /// The parcel's models would be too large.
    #[error("{bytes} bytes of models; a parcel holds at most {} MB", budget::BYTES / (1024 * 1024))]
    TooManyBytes {
        /// What the parcel would hold.
        bytes: u64,
    },
    /// Removing an object that is not there.
    #[error("there is no such object")]
    NoSuchObject,
    /// A listing that is not well formed.
    #[error("{0}")]
    BadListing(#[from] ListingError),
    /// A withdrawal by someone other than the seller.
    #[error("only the seller can withdraw a listing")]
    NotSeller,
    /// A claim naming a listing on another parcel than the listing's.
    #[error("the claim names another parcel than the listing's")]
    WrongParcel,
    /// The author holds as many records of this kind as one key may, all older than this one.
    #[error("a key may have at most {0} of these held at once")]
    OverBudget(usize),
}

impl Change {
    /// The bytes the signature covers.
    fn signing_bytes(&self) -> Vec<u8> {
        let mut bytes = SIGNING_CONTEXT.to_vec();
        // Encoding a plain struct into a Vec cannot fail.
        bytes.extend(postcard::to_allocvec(self).unwrap_or_default());
        bytes
    }

    /// Signs the change with the author's secret key seed (the 32 bytes of an ed25519 secret).
    ///
    /// The author must be the seed's public key, or every peer will refuse the change.
    pub fn sign(self, secret_seed: &[u8; 32]) -> SignedChange {
        use ed25519_dalek::Signer;
        let key = ed25519_dalek::SigningKey::from_bytes(secret_seed);
        SignedChange { change: self, signature: key.sign(&self.signing_bytes()).to_bytes() }
    }
}

impl SignedChange {
    /// The bytes that travel and are stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes a change without checking its signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, Rejection> {
        if bytes.len() > MAX_CHANGE_BYTES {
            return Err(Rejection::TooLarge(bytes.len()));
        }
        let (change, rest) = postcard::take_from_bytes::<SignedChange>(bytes).map_err(|_| Rejection::Malformed)?;
        if !rest.is_empty() {
            return Err(Rejection::Malformed);
        }
        Ok(change)
    }

    /// The change's name: BLAKE3 of its canonical bytes.
    pub fn id(&self) -> ChangeId {
        ChangeId(*blake3::hash(&self.to_bytes()).as_bytes())
    }
}

/// Checks the shape of an object: finite numbers, a real rotation, a real size, and for a model
/// a real box no larger than [`MAX_MODEL_EXTENT`].
fn check_object(object: &Object) -> Result<(), Rejection> {
    let Placement { translation, rotation, scale } = object.placement;
    let finite = translation.is_finite() && rotation.is_finite() && scale.is_finite();
    if !finite || (rotation.length() - 1.0).abs() > 1e-3 || scale.min_element() <= 0.0 {
        return Err(Rejection::BadPlacement);
    }
    if let ObjectKind::Model(model) = object.kind {
        let (low, high) = (Vec3::from(model.min), Vec3::from(model.max));
        let extent = high - low;
        if !low.is_finite()
            || !high.is_finite()
            || extent.min_element() < 0.0
            || extent.max_element() > MAX_MODEL_EXTENT
        {
            return Err(Rejection::BadPlacement);
        }
    }
    Ok(())
}

/// A change that has passed the signature check, with its id.
#[derive(Debug, Clone, Copy)]
pub struct Verified {
    /// The change.
    pub signed: SignedChange,
    /// Its id.
    pub id: ChangeId,
}

/// Checks signatures, caching each author's decompressed key (the costly part after the first).
#[derive(Debug, Default)]
pub struct Verifier {
    keys: HashMap<PublicKey, ed25519_dalek::VerifyingKey>,
}

impl Verifier {
    /// Decodes `bytes` and checks the signature and the change's own well-formedness.
    ///
    /// The bytes must be the canonical encoding of the change (what [`SignedChange::to_bytes`]
    /// gives), so that a change has one id and every peer passes on bytes that verify.
    pub fn verify(&mut self, bytes: &[u8]) -> Result<Verified, Rejection> {
        let signed = SignedChange::decode(bytes)?;
        let canonical = signed.to_bytes();
        if canonical != bytes {
            return Err(Rejection::Malformed);
        }
        // The change's bytes are the encoding's start; the signature (a length and 64 bytes)
        // its end.
        let mut message = Vec::with_capacity(SIGNING_CONTEXT.len() + bytes.len());
        message.extend_from_slice(SIGNING_CONTEXT);
        message.extend_from_slice(&bytes[..bytes.len() - 65]);
        self.check_signature(&signed, &message)?;
        Ok(Verified { signed, id: ChangeId(*blake3::hash(bytes).as_bytes()) })
    }

    /// Checks the signature and well-formedness of a decoded change.
    pub fn verify_signed(&mut self, signed: SignedChange) -> Result<Verified, Rejection> {
        self.check_signature(&signed, &signed.change.signing_bytes())?;
        Ok(Verified { signed, id: signed.id() })
    }

    fn check_signature(&mut self, signed: &SignedChange, message: &[u8]) -> Result<(), Rejection> {
        let change = signed.change;
        if let Op::Put { object, .. } = &change.op {
            check_object(object)?;
        }
        if let Op::List { listing, .. } = &change.op {
            listing.check()?;
        }
        let author = change.author;
        let key = match self.keys.get(&author) {
            Some(key) => *key,
            None => {
                let key =
                    ed25519_dalek::VerifyingKey::from_bytes(author.as_bytes()).map_err(|_| Rejection::BadSignature)?;
                if self.keys.len() > 100_000 {
                    self.keys.clear();
                }
                self.keys.insert(author, key);
                key
            }
        };
        let signature = ed25519_dalek::Signature::from_bytes(&signed.signature);
        key.verify_strict(message, &signature).map_err(|_| Rejection::BadSignature)
    }
}

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
}

impl ParcelState {
    /// Who owns the parcel now.
    pub fn owner(&self) -> Option<PublicKey> {
        self.owners.last().copied()
    }

    /// The current epoch, in which new edits are made.
    pub fn epoch(&self) -> u32 {
        self.owners.len().saturating_sub(1) as u32
    }

    /// Checks an edit against this state and applies it, or says why not.
    fn apply(&mut self, parcel: ParcelCoord, op: &Op) -> Result<(), Rejection> {
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
            Op::Claim { .. } | Op::Transfer { .. } | Op::List { .. } | Op::Withdraw { .. } | Op::Buy { .. } => Ok(()),
        }
    }
}

/// The order edits apply in: epoch, then the author's sequence, then id.
type OrderKey = (u32, u64, ChangeId);

/// Every change held for one parcel, and the state they give.
#[derive(Debug, Default)]
struct ParcelLog {
    claims: BTreeMap<[u8; 32], (PublicKey, ChangeId)>,
    transfers: BTreeMap<OrderKey, (PublicKey, PublicKey)>,
    edits: BTreeMap<OrderKey, SignedChange>,
    state: ParcelState,
    /// The transfer that ended each epoch: its author's sequence number.
    seals: Vec<u64>,
    /// The key of the last edit applied, for appending in order without a rebuild.
    last_applied: Option<OrderKey>,
    /// Claims or transfers came since the owner chain was worked out.
    chain_dirty: bool,
    /// Edits came out of order (or the chain changed) since the state was replayed.
    dirty: bool,
}

impl ParcelLog {
    /// Works out the owner chain and replays every edit.
    fn rebuild(&mut self, parcel: ParcelCoord) {
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
    fn rebuild_chain(&mut self) {
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
    fn may_hold(&self, change: &Change) -> Result<(), Rejection> {
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
            None if owners.is_empty() && epoch == 0 && home_parcel(&change.author) != change.op.parcel() => {
                Err(Rejection::Unclaimed)
            }
            None => Ok(()),
        }
    }

    /// Whether the author of an edit owned the parcel when they made it.
    fn admit(&self, state: &ParcelState, change: &Change) -> Result<(), Rejection> {
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
        let parcel = change.op.parcel();
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
                Op::Buy { listing, parcel, .. } => {
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
        let waits = matches!(change.op, Op::Transfer { .. } | Op::Put { .. } | Op::Remove { .. })
            && change.op.epoch() as usize >= log.state.owners.len();
        if waits {
            log.may_hold(&change)?;
            self.admit_waiting(change.author, parcel, change.op.epoch())?;
        }
        let log = self.parcels.entry(parcel).or_default();
        match change.op {
            // Trade records were taken above.
            Op::List { .. } | Op::Withdraw { .. } | Op::Buy { .. } => {}
            Op::Claim { .. } => {
                log.claims.insert(claim_rank(&change.author, parcel), (change.author, id));
                log.chain_dirty = true;
            }
            Op::Transfer { to, .. } => {
                log.may_hold(&change)?;
                log.transfers.insert(key, (change.author, to));
                log.chain_dirty = true;
            }
            Op::Put { .. } | Op::Remove { .. } => {
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
        let parcel = op.parcel();
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
            let entry = (parcel, &log.state.owners, &log.state.objects);
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
