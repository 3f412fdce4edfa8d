//! Changes as they are signed, travel and are stored: what they do ([`Op`]), their signature
//! and id, why one is refused ([`Rejection`]), and the checks every change passes before the
//! rules look at it ([`Verifier`]).

use std::fmt;

use glam::Vec3;
use serde::{Deserialize, Serialize};

use crate::city::ParcelCoord;
use crate::identity::PublicKey;
use crate::signature;
use crate::structure::{Placement, Rgb, Shape};
use crate::trade::{Listing, ListingError, TxId};
use crate::trust::{TrustContext, TrustError, TrustLevel};

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
    /// Keys one parcel keeps off.
    pub const BANS: usize = 256;
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
    /// The author's trust in `subject` (see [`crate::trust`]): a newer statement on the same
    /// subject and context replaces an older one; `level: None` takes it back.
    Trust {
        /// Of whom.
        subject: PublicKey,
        /// In what.
        context: TrustContext,
        /// How much, or `None` for "no longer".
        level: Option<TrustLevel>,
    },
    /// The owner of `epoch` keeps `subject` off `parcel` (`banned: true`) or lets them back.
    /// Every peer's client refuses to walk its person onto a parcel that bans them.
    Ban {
        /// The parcel.
        parcel: ParcelCoord,
        /// The epoch the author owns.
        epoch: u32,
        /// Who.
        subject: PublicKey,
        /// Kept off, or let back.
        banned: bool,
    },
    /// The author says that `host` (their home node, or a friend's node pinning their things)
    /// keeps their parcels and models (`kept: true`), or no longer does. Fetchers of the
    /// author's models ask the hosts too; a newer statement on the same host replaces an older
    /// one (see [`super::hosts`]).
    Host {
        /// The node that keeps them.
        host: PublicKey,
        /// Kept there, or no longer.
        kept: bool,
    },
    /// The author's name and colour, for whoever holds the world to show while they are away
    /// (see [`super::profiles`]); a newer one replaces the older.
    Profile {
        /// Their name.
        name: super::ProfileName,
        /// Their avatar's colour.
        colour: [u8; 3],
    },
    /// A buyer claims an item listed for Lightning: the proof is the payment's preimage and the
    /// seller's voucher for its hash, this buyer and this listing (see [`crate::trade`]). (Last,
    /// so that older peers still read every other change.)
    BuyLightning {
        /// The listing's parcel.
        parcel: ParcelCoord,
        /// The listing.
        listing: ChangeId,
        /// The payment's proof.
        proof: crate::trade::LightningProof,
    },
}

impl Op {
    /// The parcel the change touches (trust statements touch none).
    pub fn parcel(&self) -> Option<ParcelCoord> {
        match *self {
            Op::Claim { parcel }
            | Op::Transfer { parcel, .. }
            | Op::Put { parcel, .. }
            | Op::Remove { parcel, .. }
            | Op::List { parcel, .. }
            | Op::Withdraw { parcel, .. }
            | Op::Buy { parcel, .. }
            | Op::BuyLightning { parcel, .. }
            | Op::Ban { parcel, .. } => Some(parcel),
            Op::Trust { .. } | Op::Host { .. } | Op::Profile { .. } => None,
        }
    }

    /// Whether the change is a trade record rather than an edit of the parcel.
    pub fn is_trade(&self) -> bool {
        matches!(self, Op::List { .. } | Op::Withdraw { .. } | Op::Buy { .. } | Op::BuyLightning { .. })
    }

    /// The ownership epoch the change is made in (claims make epoch 0).
    pub(crate) fn epoch(&self) -> u32 {
        match *self {
            Op::Claim { .. }
            | Op::List { .. }
            | Op::Withdraw { .. }
            | Op::Buy { .. }
            | Op::BuyLightning { .. }
            | Op::Trust { .. }
            | Op::Host { .. }
            | Op::Profile { .. } => 0,
            Op::Transfer { epoch, .. } | Op::Put { epoch, .. } | Op::Remove { epoch, .. } | Op::Ban { epoch, .. } => {
                epoch
            }
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

pub(crate) mod signature_bytes {
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
    /// A Lightning claim whose voucher does not hold: not the seller's signature over this
    /// listing, this buyer and the preimage's hash, or the listing is not paid over Lightning.
    #[error("the seller's voucher does not hold for this listing, buyer and payment")]
    BadVoucher,
    /// The author holds as many records of this kind as one key may, all older than this one.
    #[error("a key may have at most {0} of these held at once")]
    OverBudget(usize),
    /// A trust statement the rules of [`crate::trust`] refuse (about oneself, or one too many).
    #[error("{0}")]
    Trust(#[from] TrustError),
    /// A statement older than the author's newest on the same subject and context.
    #[error("the author has said something newer about this key")]
    Superseded,
    /// The parcel bans as many keys as a parcel may.
    #[error("a parcel bans at most {} keys", budget::BANS)]
    TooManyBans,
    /// A host statement naming its own author.
    #[error("a key cannot be its own host")]
    HostSelf,
    /// A host statement past the most hosts a person names at once.
    #[error("a person names at most {} hosts at once", super::hosts::MAX_HOSTS)]
    TooManyHosts,
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
pub(crate) fn check_object(object: &Object) -> Result<(), Rejection> {
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

/// How many signatures [`Verifier::verify_many`] checks at once: past about 64 a bigger batch
/// saves little, and one bad signature makes the whole batch be checked one by one.
pub const VERIFY_BATCH: usize = 64;

/// Checks changes: the encoding, the change's own well-formedness, and the signature under the
/// world's rule ([`crate::signature`]). Authors' keys are decompressed once per thread (the
/// [`PublicKey`] cache), not once per change.
#[derive(Debug, Default, Clone, Copy)]
pub struct Verifier;

impl Verifier {
    /// Decodes `bytes` and checks the signature and the change's own well-formedness.
    ///
    /// The bytes must be the canonical encoding of the change (what [`SignedChange::to_bytes`]
    /// gives), so that a change has one id and every peer passes on bytes that verify.
    pub fn verify(&self, bytes: &[u8]) -> Result<Verified, Rejection> {
        let signed = Self::well_formed(bytes)?;
        if !signature::verify(&claim(&signed, bytes)) {
            return Err(Rejection::BadSignature);
        }
        Ok(Verified { signed, id: ChangeId(*blake3::hash(bytes).as_bytes()) })
    }

    /// [`Verifier::verify`] for many changes, with their signatures checked [`VERIFY_BATCH`] at a
    /// time; each verdict is the one `verify` gives that change alone.
    pub fn verify_many<B: AsRef<[u8]>>(&self, changes: &[B]) -> Vec<Result<Verified, Rejection>> {
        let mut outcomes: Vec<Result<Verified, Rejection>> = Vec::with_capacity(changes.len());
        // (index in `outcomes`, decoded change) for those whose signature is still to check.
        let mut pending: Vec<(usize, SignedChange)> = Vec::with_capacity(VERIFY_BATCH);
        let settle = |pending: &mut Vec<(usize, SignedChange)>, outcomes: &mut Vec<Result<Verified, Rejection>>| {
            let claims: Vec<signature::Claim<'_>> =
                pending.iter().map(|(index, signed)| claim(signed, changes[*index].as_ref())).collect();
            for ((index, signed), holds) in pending.iter().zip(signature::verify_batch(&claims)) {
                let bytes = changes[*index].as_ref();
                outcomes[*index] = if holds {
                    Ok(Verified { signed: *signed, id: ChangeId(*blake3::hash(bytes).as_bytes()) })
                } else {
                    Err(Rejection::BadSignature)
                };
            }
            pending.clear();
        };
        for (index, bytes) in changes.iter().enumerate() {
            match Self::well_formed(bytes.as_ref()) {
                Ok(signed) => {
                    // A place holder until the batch is settled.
                    outcomes.push(Err(Rejection::BadSignature));
                    pending.push((index, signed));
                    if pending.len() == VERIFY_BATCH {
                        settle(&mut pending, &mut outcomes);
                    }
                }
                Err(rejection) => outcomes.push(Err(rejection)),
            }
        }
        settle(&mut pending, &mut outcomes);
        outcomes
    }

    /// Checks the signature and well-formedness of a decoded change.
    pub fn verify_signed(&self, signed: SignedChange) -> Result<Verified, Rejection> {
        Self::check_content(&signed)?;
        let message = postcard::to_allocvec(&signed.change).unwrap_or_default();
        let claim = signature::Claim {
            key: signed.change.author,
            message: [SIGNING_CONTEXT, &message],
            signature: &signed.signature,
        };
        if !signature::verify(&claim) {
            return Err(Rejection::BadSignature);
        }
        Ok(Verified { signed, id: signed.id() })
    }

    /// Everything but the signature: the size, the canonical encoding, the content.
    fn well_formed(bytes: &[u8]) -> Result<SignedChange, Rejection> {
        let signed = SignedChange::decode(bytes)?;
        if signed.to_bytes() != bytes {
            return Err(Rejection::Malformed);
        }
        Self::check_content(&signed)?;
        Ok(signed)
    }

    fn check_content(signed: &SignedChange) -> Result<(), Rejection> {
        match &signed.change.op {
            Op::Put { object, .. } => check_object(object),
            Op::List { listing, .. } => Ok(listing.check()?),
            _ => Ok(()),
        }
    }
}

/// The signature claim of a change whose canonical bytes are `bytes`: the change's encoding is
/// their start, the signature (a length byte and 64 bytes) their end.
fn claim<'a>(signed: &'a SignedChange, bytes: &'a [u8]) -> signature::Claim<'a> {
    signature::Claim {
        key: signed.change.author,
        message: [SIGNING_CONTEXT, &bytes[..bytes.len().saturating_sub(65)]],
        signature: &signed.signature,
    }
}
