//! The city: an endless grid of parcels and streets, home parcels that follow from keys, and
//! generated structures for parcels nobody has built on yet.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use glam::{Vec2, Vec3};
use serde::{Deserialize, Serialize};

use crate::identity::PublicKey;
use crate::rng::LayoutRng;
use crate::structure::{Placement, Rgb, Shape, Structure};

/// Side of a square parcel, in metres.
pub const PARCEL_SIZE: f32 = 16.0;
/// Width of the streets between blocks, in metres.
pub const STREET_WIDTH: f32 = 8.0;
/// A block is this many parcels on a side, with streets all round it.
pub const BLOCK_PARCELS: i32 = 4;
/// Distance from one street's centre line to the next.
pub const BLOCK_PITCH: f32 = BLOCK_PARCELS as f32 * PARCEL_SIZE + STREET_WIDTH;
/// Home parcels lie in the square of parcels from `-HOME_GRID_HALF` to `HOME_GRID_HALF - 1` on
/// both axes: 4,096 × 4,096 parcels, about 16.7 million homes.
pub const HOME_GRID_HALF: i32 = 2048;
/// The commons: blocks `-COMMONS_BLOCKS..COMMONS_BLOCKS` on both axes, the square of blocks
/// around the street crossing at the origin where people arrive. They are nobody's home.
pub const COMMONS_BLOCKS: i32 = 1;
/// The tallest a generated structure may reach, in metres.
pub const GENERATED_HEIGHT_LIMIT: f32 = 48.0;

/// The grid coordinates of one parcel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ParcelCoord {
    /// Column, growing toward +x.
    pub x: i32,
    /// Row, growing toward +z.
    pub z: i32,
}

/// Where a parcel's land lies, in metres on the ground plane (x and z).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParcelBounds {
    /// The corner with the smallest x and z.
    pub min: Vec2,
    /// The corner with the largest x and z.
    pub max: Vec2,
}

impl ParcelBounds {
    /// The middle of the parcel.
    pub fn center(&self) -> Vec2 {
        (self.min + self.max) * 0.5
    }

    /// Whether a ground point lies on this parcel. The low edges belong to the parcel and the
    /// high edges to its neighbours, so that every point of land has exactly one parcel.
    pub fn contains(&self, point: Vec2) -> bool {
        point.cmpge(self.min).all() && point.cmplt(self.max).all()
    }
}

impl ParcelCoord {
    /// A parcel from its column and row.
    pub const fn new(x: i32, z: i32) -> Self {
        Self { x, z }
    }

    /// The block this parcel belongs to.
    pub fn block(self) -> (i32, i32) {
        (self.x.div_euclid(BLOCK_PARCELS), self.z.div_euclid(BLOCK_PARCELS))
    }

    /// Where the parcel's land lies.
    pub fn bounds(self) -> ParcelBounds {
        let axis = |index: i32| {
            let block = index.div_euclid(BLOCK_PARCELS);
            let within = index.rem_euclid(BLOCK_PARCELS);
            block as f32 * BLOCK_PITCH + STREET_WIDTH * 0.5 + within as f32 * PARCEL_SIZE
        };
        let min = Vec2::new(axis(self.x), axis(self.z));
        ParcelBounds { min, max: min + Vec2::splat(PARCEL_SIZE) }
    }

    /// The parcel under a point of the world, or `None` when the point is on a street.
    pub fn containing(position: Vec3) -> Option<ParcelCoord> {
        let axis = |metres: f32| {
            let block = (metres / BLOCK_PITCH).floor();
            let within = metres - block * BLOCK_PITCH - STREET_WIDTH * 0.5;
            if !(0.0..BLOCK_PARCELS as f32 * PARCEL_SIZE).contains(&within) {
                return None;
            }
            let parcel = (within / PARCEL_SIZE).floor() as i32;
            Some(block as i32 * BLOCK_PARCELS + parcel.min(BLOCK_PARCELS - 1))
        };
        Some(ParcelCoord::new(axis(position.x)?, axis(position.z)?))
    }

    /// Whether this parcel is in the commons at the city's centre.
    pub fn is_commons(self) -> bool {
        let (block_x, block_z) = self.block();
        let near = |block: i32| (-COMMONS_BLOCKS..COMMONS_BLOCKS).contains(&block);
        near(block_x) && near(block_z)
    }
}

/// The parcel that a key would get if no other key wanted it: its first candidate.
pub fn home_parcel(key: &PublicKey) -> ParcelCoord {
    home_candidate(key, 0)
}

/// The `attempt`-th parcel a key asks for. The sequence comes from BLAKE3 of the key, so it is
/// the same on every machine and spread evenly over the home grid; the commons are skipped.
pub fn home_candidate(key: &PublicKey, attempt: u32) -> ParcelCoord {
    let mut hasher = blake3::Hasher::new_derive_key("sanctuary home parcel v1");
    hasher.update(key.as_bytes());
    hasher.update(&attempt.to_le_bytes());
    let mut reader = hasher.finalize_xof();
    let side = (2 * HOME_GRID_HALF) as u64;
    loop {
        let mut bytes = [0u8; 16];
        reader.fill(&mut bytes);
        let x = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
        let z = u64::from_le_bytes(bytes[8..].try_into().unwrap_or_default());
        // Multiply-shift on the top 32 bits: exactly uniform, as the side is a power of two.
        let parcel = ParcelCoord::new(
            (((x >> 32) * side) >> 32) as i32 - HOME_GRID_HALF,
            (((z >> 32) * side) >> 32) as i32 - HOME_GRID_HALF,
        );
        if !parcel.is_commons() {
            return parcel;
        }
    }
}

/// Who wins a parcel that two keys both ask for: the smaller BLAKE3 of parcel and key.
pub(crate) fn claim_rank(key: &PublicKey, parcel: ParcelCoord) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("sanctuary home parcel rank v1");
    hasher.update(&parcel.x.to_le_bytes());
    hasher.update(&parcel.z.to_le_bytes());
    hasher.update(key.as_bytes());
    *hasher.finalize().as_bytes()
}

/// Why home parcels could not be settled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HomeError {
    /// More keys than half the home grid: collisions would never settle in reasonable time.
    #[error("{keys} identities are more than the city's home grid holds ({capacity}); the grid must grow first")]
    CityFull {
        /// How many keys were given.
        keys: usize,
        /// How many the grid takes.
        capacity: usize,
    },
}

/// The home parcel of every key in `keys`, with collisions settled.
///
/// Each key asks for its candidates in order; when two keys ask for the same parcel the one with
/// the smaller [`claim_rank`] keeps it and the other asks for its next candidate (deferred
/// acceptance). The result depends only on the set of keys, never on their order or on who
/// arrived first, so every peer computes the same map. A key's home moves only when a newcomer's
/// candidate lands on it and outranks it, or when such a displaced key in turn outranks another:
/// rare on a grid this large, and never because of timing.
pub fn settle_home_parcels<'a>(
    keys: impl IntoIterator<Item = &'a PublicKey>,
) -> Result<BTreeMap<PublicKey, ParcelCoord>, HomeError> {
    let keys: Vec<PublicKey> = keys.into_iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    let capacity = (HOME_GRID_HALF as usize * 2).pow(2) / 2;
    if keys.len() > capacity {
        return Err(HomeError::CityFull { keys: keys.len(), capacity });
    }
    Ok(settle_with(&keys, home_candidate))
}

/// Deferred acceptance over any candidate sequence, taking the keys' first proposals in the
/// order given (the result does not depend on it); the grid only matters to `candidate`.
fn settle_with(
    keys: &[PublicKey],
    candidate: impl Fn(&PublicKey, u32) -> ParcelCoord,
) -> BTreeMap<PublicKey, ParcelCoord> {
    let mut next_attempt: BTreeMap<PublicKey, u32> = keys.iter().map(|key| (*key, 0)).collect();
    let mut holder: BTreeMap<ParcelCoord, PublicKey> = BTreeMap::new();
    let mut waiting: VecDeque<PublicKey> = keys.iter().copied().collect();
    while let Some(key) = waiting.pop_front() {
        let attempt = next_attempt.entry(key).or_default();
        let parcel = candidate(&key, *attempt);
        *attempt += 1;
        match holder.get(&parcel) {
            None => {
                holder.insert(parcel, key);
            }
            Some(current) if claim_rank(&key, parcel) < claim_rank(current, parcel) => {
                waiting.push_back(*current);
                holder.insert(parcel, key);
            }
            Some(_) => waiting.push_back(key),
        }
    }
    holder.into_iter().map(|(parcel, key)| (key, parcel)).collect()
}

/// Colours of the city's generated architecture.
const TOWER_COLOURS: [Rgb; 4] =
    [Rgb::new(18, 22, 38), Rgb::new(24, 18, 40), Rgb::new(14, 28, 36), Rgb::new(30, 30, 34)];
/// The neon trims, TRON style.
pub const NEON_COLOURS: [Rgb; 4] =
    [Rgb::new(0, 240, 255), Rgb::new(255, 40, 200), Rgb::new(255, 150, 20), Rgb::new(120, 80, 255)];

/// Structures for a parcel nobody has built on, generated from the world seed and the parcel.
///
/// The same seed and parcel always give the same structures, so every peer sees the same
/// skyline without storing it. Commons parcels get low plaza pieces so the arrival point stays
/// open; other parcels get towers, domes and arches, some of them empty.
pub fn generated_structures(seed: u64, parcel: ParcelCoord) -> Vec<Structure> {
    let mut rng = LayoutRng::derive(seed, "city parcel", &[i64::from(parcel.x), i64::from(parcel.z)]);
    let bounds = parcel.bounds();
    let centre = bounds.center();
    let ground = |x: f32, z: f32| Vec3::new(centre.x + x, 0.0, centre.y + z);
    let neon = *rng.pick(&NEON_COLOURS);
    let mut structures = Vec::new();
    if parcel.is_commons() {
        if rng.chance(0.35) {
            // A low glowing plinth with a floating marker.
            structures.push(Structure::matte(
                Shape::Cylinder,
                Placement::standing(ground(0.0, 0.0), Vec3::new(6.0, 0.6, 6.0)),
                TOWER_COLOURS[0],
            ));
            structures.push(Structure::glowing(
                Shape::Ring,
                Placement::new(ground(0.0, 0.0) + Vec3::Y * 3.0, Vec3::new(5.0, 0.3, 5.0)),
                neon,
                4.0,
            ));
        }
        return structures;
    }
    if rng.chance(0.3) {
        return structures;
    }
    let half_room = PARCEL_SIZE * 0.5 - 1.5;
    match rng.index(4) {
        0 | 1 => {
            // A tower with glowing bands.
            let width = rng.range(6.0, 12.0);
            let height = rng.range(10.0, GENERATED_HEIGHT_LIMIT - 4.0);
            let offset = half_room - width * 0.5;
            let base = ground(rng.range(-offset, offset), rng.range(-offset, offset));
            let body = *rng.pick(&TOWER_COLOURS);
            structures.push(Structure::matte(
                Shape::Cuboid,
                Placement::standing(base, Vec3::new(width, height, width)),
                body,
            ));
            let n_bands = 1 + rng.index(3);
            for band in 0..n_bands {
                let y = height * (band as f32 + 1.0) / (n_bands as f32 + 1.0);
                structures.push(Structure::glowing(
                    Shape::Cuboid,
                    Placement::new(base + Vec3::Y * y, Vec3::new(width + 0.3, 0.35, width + 0.3)),
                    neon,
                    3.0,
                ));
            }
            structures.push(Structure::glowing(
                Shape::Cuboid,
                Placement::standing(base + Vec3::Y * height, Vec3::new(width * 0.6, 0.5, width * 0.6)),
                neon,
                5.0,
            ));
        }
        2 => {
            // A dome on a plinth with a halo.
            let radius = rng.range(4.0, half_room);
            structures.push(Structure::matte(
                Shape::Cylinder,
                Placement::standing(ground(0.0, 0.0), Vec3::new(radius * 2.0, 1.0, radius * 2.0)),
                TOWER_COLOURS[1],
            ));
            structures.push(Structure::matte(
                Shape::Sphere,
                Placement::new(ground(0.0, 0.0) + Vec3::Y * 1.0, Vec3::splat(radius * 2.0)),
                *rng.pick(&TOWER_COLOURS),
            ));
            structures.push(Structure::glowing(
                Shape::Ring,
                Placement::new(
                    ground(0.0, 0.0) + Vec3::Y * (radius + 3.0),
                    Vec3::new(radius * 1.6, 0.35, radius * 1.6),
                ),
                neon,
                4.0,
            ));
        }
        _ => {
            // A pyramid of stacked glowing edges.
            let size = rng.range(8.0, PARCEL_SIZE - 3.0);
            let height = rng.range(8.0, 20.0);
            structures.push(Structure::matte(
                Shape::Cone,
                Placement::standing(ground(0.0, 0.0), Vec3::new(size, height, size)),
                *rng.pick(&TOWER_COLOURS),
            ));
            structures.push(Structure::glowing(
                Shape::Sphere,
                Placement::new(ground(0.0, 0.0) + Vec3::Y * (height + 1.5), Vec3::splat(1.6)),
                neon,
                6.0,
            ));
        }
    }
    structures
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(index: u32) -> PublicKey {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&index.to_le_bytes());
        PublicKey::from_secret_seed(&seed)
    }

    #[test]
    fn parcel_bounds_and_containing_agree() {
        for x in -9..9 {
            for z in -9..9 {
                let parcel = ParcelCoord::new(x, z);
                let centre = parcel.bounds().center();
                assert_eq!(ParcelCoord::containing(Vec3::new(centre.x, 0.0, centre.y)), Some(parcel));
            }
        }
    }

    proptest::proptest! {
        /// `containing` and `bounds` agree everywhere: a point is on a parcel exactly when that
        /// parcel's bounds hold it, and street points belong to no parcel.
        #[test]
        fn containing_agrees_with_bounds(x in -5000.0f32..5000.0, z in -5000.0f32..5000.0) {
            let point = Vec3::new(x, 0.0, z);
            match ParcelCoord::containing(point) {
                Some(parcel) => proptest::prop_assert!(parcel.bounds().contains(Vec2::new(x, z))),
                None => {
                    // Every parcel of the blocks around the point.
                    let block_x = (x / BLOCK_PITCH).floor() as i32;
                    let block_z = (z / BLOCK_PITCH).floor() as i32;
                    let first = |block: i32| (block - 1) * BLOCK_PARCELS;
                    for parcel_x in first(block_x)..first(block_x) + 3 * BLOCK_PARCELS {
                        for parcel_z in first(block_z)..first(block_z) + 3 * BLOCK_PARCELS {
                            let other = ParcelCoord::new(parcel_x, parcel_z);
                            proptest::prop_assert!(!other.bounds().contains(Vec2::new(x, z)), "{other:?} holds a street point");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn streets_separate_blocks() {
        // The street centre lines run along multiples of the block pitch.
        assert_eq!(ParcelCoord::containing(Vec3::ZERO), None);
        assert_eq!(ParcelCoord::containing(Vec3::new(BLOCK_PITCH, 0.0, 30.0)), None);
        // Neighbouring parcels within a block touch; across a street they are a street apart.
        let a = ParcelCoord::new(0, 0).bounds();
        let b = ParcelCoord::new(1, 0).bounds();
        assert_eq!(a.max.x, b.min.x);
        let last = ParcelCoord::new(BLOCK_PARCELS - 1, 0).bounds();
        let next_block = ParcelCoord::new(BLOCK_PARCELS, 0).bounds();
        assert!((next_block.min.x - last.max.x - STREET_WIDTH).abs() < 1e-4);
    }

    #[test]
    fn home_parcel_is_stable_and_outside_the_commons() {
        for index in 0..500 {
            let parcel = home_parcel(&key(index));
            assert_eq!(parcel, home_parcel(&key(index)));
            assert!(!parcel.is_commons());
            assert!((-HOME_GRID_HALF..HOME_GRID_HALF).contains(&parcel.x));
            assert!((-HOME_GRID_HALF..HOME_GRID_HALF).contains(&parcel.z));
        }
    }

    #[test]
    fn home_parcels_spread_over_the_grid() {
        // Count keys per quadrant: each should hold about a quarter.
        let mut quadrants = [0u32; 4];
        let n_keys = 4000;
        for index in 0..n_keys {
            let parcel = home_parcel(&key(index));
            quadrants[usize::from(parcel.x >= 0) * 2 + usize::from(parcel.z >= 0)] += 1;
        }
        for count in quadrants {
            assert!((800..1200).contains(&count), "quadrants {quadrants:?}");
        }
    }

    #[test]
    fn home_parcel_is_pinned_for_a_known_key() {
        // The home of a key must never change between versions: that would move everyone's home.
        let parcel = home_parcel(&key(0));
        assert_eq!(parcel, ParcelCoord::new(PINNED_HOME_OF_KEY_0.0, PINNED_HOME_OF_KEY_0.1));
    }

    const PINNED_HOME_OF_KEY_0: (i32, i32) = (-1628, -1137);

    #[test]
    fn real_homes_are_one_per_key() {
        let keys: Vec<PublicKey> = (0..3000).map(key).collect();
        let homes = settle_home_parcels(&keys).expect("fits");
        let distinct: BTreeSet<ParcelCoord> = homes.values().copied().collect();
        assert_eq!(distinct.len(), keys.len());
        // Without a collision, each key keeps its first candidate.
        let n_first = keys.iter().filter(|key| homes[key] == home_parcel(key)).count();
        assert!(n_first >= keys.len() - 2, "only {n_first} keys kept their first candidate");
    }

    #[test]
    fn the_processing_order_does_not_change_the_result() {
        // On the crowded toy grid many keys contest parcels; whichever key proposes first, the
        // settled homes are the same.
        let keys: Vec<PublicKey> = (0..9).map(key).collect();
        let forward = settle_with(&keys, crowded_candidate);
        let mut reordered = keys.clone();
        for turn in 0..keys.len() {
            reordered.rotate_left(1);
            if turn % 2 == 0 {
                reordered.reverse();
            }
            assert_eq!(settle_with(&reordered, crowded_candidate), forward, "order {reordered:?}");
        }
    }

    /// A crowded toy grid of 12 parcels in a row, so that 9 keys collide often.
    fn crowded_candidate(key: &PublicKey, attempt: u32) -> ParcelCoord {
        let digest = blake3::hash(&[key.as_bytes().as_slice(), &attempt.to_le_bytes()].concat());
        ParcelCoord::new(i32::from(digest.as_bytes()[0] % 12), 0)
    }

    #[test]
    fn contested_parcels_settle_stably() {
        let keys: Vec<PublicKey> = (0..9).map(key).collect();
        let settled = settle_with(&keys, crowded_candidate);
        // Every key has a parcel and no parcel has two keys.
        assert_eq!(settled.len(), keys.len());
        let distinct: BTreeSet<ParcelCoord> = settled.values().copied().collect();
        assert_eq!(distinct.len(), keys.len());
        // Stability: every parcel a key asked for before the one it got is held by a key that
        // outranks it there, so no two keys would both rather swap.
        let holder: BTreeMap<ParcelCoord, PublicKey> = settled.iter().map(|(k, p)| (*p, *k)).collect();
        let mut collisions = 0;
        for (key, home) in &settled {
            for attempt in 0.. {
                let asked = crowded_candidate(key, attempt);
                if asked == *home {
                    break;
                }
                collisions += 1;
                let owner = holder[&asked];
                assert!(claim_rank(&owner, asked) < claim_rank(key, asked));
            }
        }
        assert!(collisions > 0, "the toy grid should force collisions");
    }

    #[test]
    fn generated_parcels_are_deterministic_and_within_limits() {
        for x in -12..12 {
            for z in -12..12 {
                let parcel = ParcelCoord::new(x, z);
                let structures = generated_structures(42, parcel);
                assert_eq!(structures, generated_structures(42, parcel));
                let bounds = parcel.bounds();
                for structure in &structures {
                    // The whole footprint stays on the parcel, not only the centre.
                    let (low, high) = structure.placement.aabb();
                    assert!(bounds.contains(Vec2::new(low.x, low.z)), "{parcel:?} {low}");
                    assert!(bounds.contains(Vec2::new(high.x, high.z) - Vec2::splat(1e-3)), "{parcel:?} {high}");
                    assert!(high.y <= GENERATED_HEIGHT_LIMIT + 1e-3);
                    // Domes sink into their plinths; nothing's middle is underground.
                    assert!(structure.placement.translation.y >= 0.0, "{parcel:?} {structure:?}");
                }
            }
        }
        let total: usize = (-12..12)
            .flat_map(|x| (-12..12).map(move |z| generated_structures(42, ParcelCoord::new(x, z)).len()))
            .sum();
        assert!(total > 300, "the city should have a skyline, got {total} structures");
    }
}
