//! Sanctuary's world model and rules: pure and deterministic, with no I/O, rendering, network or
//! bitcoin. Functions take state and input and return data; the caller draws, stores or sends it.

pub mod avatar;
pub mod body;
mod city;
pub mod crowd;
mod identity;
mod layout;
pub mod ledger;
pub mod market;
mod model;
mod region;
mod rng;
pub mod shields;
pub mod signature;
mod structure;
pub mod trade;
pub mod trust;
mod world;

pub use city::{
    BLOCK_PARCELS, BLOCK_PITCH, COMMONS_BLOCKS, GENERATED_HEIGHT_LIMIT, HOME_GRID_HALF, HomeError, NEON_COLOURS,
    PARCEL_SIZE, ParcelBounds, ParcelCoord, STREET_WIDTH, generated_structures, home_candidate, home_parcel,
    settle_home_parcels,
};
pub use identity::{KeyError, PublicKey};
pub use layout::{
    Atmosphere, Bounds, CITY_REACH, Drifter, EYE_HEIGHT, LOBBY_DRIFTERS, LOBBY_HEIGHT, LOBBY_RADIUS, Lamp, Portal,
    RegionLayout, WORLD_SEED, region_accent,
};
pub use model::{
    HumanBone, Humanoid, ModelError, ModelLimits, ModelSummary, PASSED_THROUGH, RigSource, inspect_model, plain_model,
    referenced_files, unsupported_advice,
};
pub use region::{RegionId, RoomKind, UnknownRegion};
pub use rng::LayoutRng;
pub use structure::{Placement, Rgb, Shape, Structure, Surface};
pub use world::{
    Change, ChangeId, Inserted, MAX_CHANGE_BYTES, MAX_HOST_RECORDS, MAX_HOSTS, MAX_MODEL_EXTENT,
    MAX_PROFILE_NAME_CHARS, MAX_TRADE_RECORDS_PER_AUTHOR, MAX_TRUST_RECORDS, MAX_WAITING_PER_AUTHOR, ModelRef, Object,
    ObjectId, ObjectKind, Op, ParcelState, ProfileName, Rejection, SignedChange, VERIFY_BATCH, Verified, Verifier,
    World, budget, primitive_triangles,
};
