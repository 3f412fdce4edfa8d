//! Spatial cells: what a peer hears of a big region depends on where it is.
//!
//! The lobby and the city are cut into cubes (the lobby, where people float) or columns (the
//! city) [`CELL_SIZE`] metres wide, each with its own gossip topic ([`cell_topic`]). A peer says
//! its signed presence (and microphone, look and tip offer) on the topic of the cell it is in,
//! and listens on the [`Block`] of cells around it: per axis, its own cell and the neighbour on
//! the nearer side, so that everyone within [`BLOCK_REACH`] metres is heard. Past the block, the
//! crowd is a [`CrowdSummary`] per cell: one peer in each cell (the one whose [`rank`] is
//! lowest among those it hears there) says on the region's topic every few seconds how many
//! are in its cell and where, as dots without names.
//!
//! Everything here is pure: the node (`node/cells.rs`) joins and leaves the topics and sends
//! and takes the summaries.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use glam::Vec3;
use iroh_gossip::TopicId;
use sanctuary_engine::RegionId;
use serde::{Deserialize, Serialize};

use crate::wire::WireError;

/// How wide a cell is, in metres.
pub const CELL_SIZE: f32 = 48.0;
/// How far past the middle of a cell a peer goes before its block turns to the other side:
/// without it, someone standing on the line would join and leave topics at every step.
pub const CELL_HYSTERESIS: f32 = 2.0;
/// Everyone within this many metres of a peer (on every axis) is in a cell of its block.
pub const BLOCK_REACH: f32 = CELL_SIZE / 2.0 - CELL_HYSTERESIS;
/// The most cells in a block: two per axis, in three axes in the lobby.
pub const MAX_BLOCK: usize = 8;
/// The most dots in one summary: the rest of the cell's crowd is in its count only.
pub const MAX_DOTS: usize = 64;
/// The largest count a summary may claim.
pub const MAX_CELL_COUNT: u32 = 100_000;
/// The most far cells remembered in a region.
pub const MAX_FAR_CELLS: usize = 768;
/// The quickest a cell's reporter repeats its summary.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(5);
/// The slowest: with very many cells full, summaries slow down to keep within
/// [`FAR_DOWNLINK_BITS_PER_SECOND`].
pub const SLOWEST_SUMMARY_INTERVAL: Duration = Duration::from_secs(40);
/// A summary not repeated for this long gives way to another reporter's of the same cell.
const SUMMARY_STALE: Duration = Duration::from_secs(SLOWEST_SUMMARY_INTERVAL.as_secs() + SUMMARY_INTERVAL.as_secs());
/// A summary not repeated for this long is dropped (its reporter left, or another took over).
pub const SUMMARY_TIMEOUT: Duration = Duration::from_secs(2 * SLOWEST_SUMMARY_INTERVAL.as_secs() + 5);
/// What the far crowd's summaries may take of a peer's downlink.
pub const FAR_DOWNLINK_BITS_PER_SECOND: u64 = 100_000;

// Voice reaches 20 m and near poses 16 m: both must lie within the block.
const _: () = assert!(BLOCK_REACH >= 20.0);

/// The regions cut into cells: those big enough for people to spread past a block. Rooms are
/// smaller than one block, so cells would only add topics there; a private room's topic is
/// its key's.
pub fn has_cells(region: RegionId) -> bool {
    matches!(region, RegionId::Lobby | RegionId::City)
}

/// Whether `region` is cut in height too (people float in the lobby; the city is walked).
fn layered(region: RegionId) -> bool {
    region == RegionId::Lobby
}

/// A cell's place in its region's grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cell {
    /// Across, in cells from the origin.
    pub x: i16,
    /// Up (always 0 in the city).
    pub y: i16,
    /// Along.
    pub z: i16,
}

/// The cell index of `metres` on one axis (far-off and broken positions are held to the grid's
/// edge).
fn index(metres: f32) -> i16 {
    let cell = (metres / CELL_SIZE).floor();
    if cell.is_nan() { 0 } else { cell.clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16 }
}

impl Cell {
    /// The cell of `region` that holds `position`.
    pub fn of(region: RegionId, position: Vec3) -> Cell {
        let y = if layered(region) { index(position.y) } else { 0 };
        Cell { x: index(position.x), y, z: index(position.z) }
    }

    /// The corner of the cell nearest the origin, in metres.
    pub fn origin(self) -> Vec3 {
        Vec3::new(f32::from(self.x), f32::from(self.y), f32::from(self.z)) * CELL_SIZE
    }

    /// `position` within the cell, quantised to 1/256 of its width (18.75 cm), clamped to it.
    pub fn dot(self, position: Vec3) -> [u8; 3] {
        let local = (position - self.origin()) / CELL_SIZE * 256.0;
        local.to_array().map(|value| if value.is_nan() { 0 } else { value.clamp(0.0, 255.0) as u8 })
    }

    /// Where a dot of this cell is, in metres (the middle of its step).
    pub fn place(self, dot: [u8; 3]) -> Vec3 {
        let local = Vec3::from_array(dot.map(|value| (f32::from(value) + 0.5) / 256.0 * CELL_SIZE));
        self.origin() + local
    }
}

/// The gossip topic of `cell` in `region`.
pub fn cell_topic(region: RegionId, cell: Cell) -> TopicId {
    let mut hasher = blake3::Hasher::new_derive_key("sanctuary cell topic v1");
    hasher.update(region.slug().as_bytes());
    for coordinate in [cell.x, cell.y, cell.z] {
        hasher.update(&coordinate.to_le_bytes());
    }
    TopicId::from_bytes(*hasher.finalize().as_bytes())
}

/// A peer's rank in a cell: the lowest among those in the cell reports it. Different in every
/// cell, so that one peer is not everyone's reporter as it walks.
pub fn rank(peer: &[u8; 32], region: RegionId, cell: Cell) -> u64 {
    let mut hasher = blake3::Hasher::new_derive_key("sanctuary cell reporter v1");
    hasher.update(peer);
    hasher.update(cell_topic(region, cell).as_bytes());
    let hash = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

/// The cells a peer listens on: per axis, the pair of cells whose shared face is nearest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// The lower cell of each axis's pair (`y` is 0 and single where the region has no layers).
    low: Cell,
    layered: bool,
}

impl Block {
    /// The block around `position`; with `previous`, an axis keeps its pair while the position
    /// is at least [`BLOCK_REACH`] inside it on both sides.
    pub fn around(region: RegionId, position: Vec3, previous: Option<Block>) -> Block {
        let layered = layered(region);
        let axis = |metres: f32, kept: Option<i16>| -> i16 {
            if let Some(low) = kept {
                let start = f32::from(low) * CELL_SIZE;
                if metres - start >= BLOCK_REACH && start + 2.0 * CELL_SIZE - metres >= BLOCK_REACH {
                    return low;
                }
            }
            let own = index(metres);
            let within = metres - f32::from(own) * CELL_SIZE;
            if within < CELL_SIZE / 2.0 { own.saturating_sub(1) } else { own }
        };
        let previous = previous.filter(|block| block.layered == layered);
        let low = Cell {
            x: axis(position.x, previous.map(|block| block.low.x)),
            y: if layered { axis(position.y, previous.map(|block| block.low.y)) } else { 0 },
            z: axis(position.z, previous.map(|block| block.low.z)),
        };
        Block { low, layered }
    }

    /// The block's cells (four, or eight with layers).
    pub fn cells(&self) -> Vec<Cell> {
        let ys: &[i16] = if self.layered { &[0, 1] } else { &[0] };
        let mut cells = Vec::with_capacity(MAX_BLOCK);
        for dx in [0, 1] {
            for &dy in ys {
                for dz in [0, 1] {
                    cells.push(Cell {
                        x: self.low.x.saturating_add(dx),
                        y: self.low.y.saturating_add(dy),
                        z: self.low.z.saturating_add(dz),
                    });
                }
            }
        }
        cells.sort_unstable();
        cells.dedup();
        cells
    }

    /// How many cells the block has, without making the list (as [`Block::cells`] gives them,
    /// but at the grid's far edge, where that list has fewer).
    pub fn count(&self) -> usize {
        if self.layered { 8 } else { 4 }
    }

    /// Whether `cell` is one of the block's.
    pub fn contains(&self, cell: Cell) -> bool {
        let pair = |low: i16, at: i16| at == low || Some(at) == low.checked_add(1);
        pair(self.low.x, cell.x)
            && pair(self.low.z, cell.z)
            && if self.layered { pair(self.low.y, cell.y) } else { cell.y == 0 }
    }
}

/// One person in a cell's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dot {
    /// Where, within the cell (see [`Cell::dot`]).
    pub at: [u8; 3],
    /// Their colour.
    pub colour: [u8; 3],
}

/// How many people are in a cell and where, as its reporter sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrowdSummary {
    /// The cell.
    pub cell: Cell,
    /// How many are in it, the reporter among them; 0 (with no dots) when the reporter left it:
    /// its summary is withdrawn, and another of the cell takes over.
    pub count: u32,
    /// Up to [`MAX_DOTS`] of them.
    pub dots: Vec<Dot>,
}

impl CrowdSummary {
    /// Checks the limits a well-formed summary keeps.
    pub fn check_shape(&self) -> Result<(), WireError> {
        if self.dots.len() > MAX_DOTS {
            return Err(WireError::Malformed);
        }
        if self.count > MAX_CELL_COUNT || (self.count as usize) < self.dots.len() {
            return Err(WireError::Malformed);
        }
        Ok(())
    }
}

/// How often a reporter repeats its summary when `cells` cells are reported in the region: as
/// often as [`SUMMARY_INTERVAL`], slower when that many summaries of `bytes` each would pass
/// [`FAR_DOWNLINK_BITS_PER_SECOND`].
pub fn summary_interval(cells: usize, bytes: usize) -> Duration {
    let bits = (bytes as u64 + 64) * 8 * cells.max(1) as u64;
    let seconds = bits as f64 / FAR_DOWNLINK_BITS_PER_SECOND as f64;
    Duration::from_secs_f64(seconds).clamp(SUMMARY_INTERVAL, SLOWEST_SUMMARY_INTERVAL)
}

/// A summary as kept: who said it, their rank, when.
#[derive(Debug, Clone)]
struct Reported {
    reporter: [u8; 32],
    rank: u64,
    heard: Instant,
    summary: CrowdSummary,
}

/// The far crowd of one region: the latest summary of each cell. Where two peers report one
/// cell (each hears only part of it, for a while), the lower-ranked one's is kept, as the cell
/// itself would choose.
#[derive(Debug, Default)]
pub struct FarCrowd {
    cells: HashMap<Cell, Reported>,
    /// The cell each kept summary's reporter reported (one each): `moved` runs for every
    /// presence heard, so it looks a reporter up rather than going through every cell.
    reporters: HashMap<[u8; 32], Cell>,
}

impl FarCrowd {
    /// Takes `summary` from `reporter`; whether it was kept. A reporter is in one cell at a
    /// time: what it said of another goes.
    pub fn heard(&mut self, region: RegionId, reporter: [u8; 32], summary: CrowdSummary, now: Instant) -> bool {
        if summary.count == 0 {
            if self.reporters.get(&reporter) == Some(&summary.cell) {
                self.forget(&reporter);
            }
            return false;
        }
        let rank = rank(&reporter, region, summary.cell);
        if let Some(kept) = self.cells.get(&summary.cell) {
            let stale = now.saturating_duration_since(kept.heard) >= SUMMARY_STALE;
            if kept.reporter != reporter && kept.rank < rank && !stale {
                return false;
            }
        } else if self.cells.len() >= MAX_FAR_CELLS {
            self.expire(now);
            if self.cells.len() >= MAX_FAR_CELLS {
                return false;
            }
        }
        self.moved(&reporter, summary.cell);
        let cell = summary.cell;
        if let Some(replaced) = self.cells.insert(cell, Reported { reporter, rank, heard: now, summary })
            && replaced.reporter != reporter
        {
            self.reporters.remove(&replaced.reporter);
        }
        self.reporters.insert(reporter, cell);
        true
    }

    /// Forgets summaries not repeated within [`SUMMARY_TIMEOUT`].
    pub fn expire(&mut self, now: Instant) {
        let before = self.cells.len();
        self.cells.retain(|_, kept| now.saturating_duration_since(kept.heard) < SUMMARY_TIMEOUT);
        if self.cells.len() != before {
            let cells = &self.cells;
            self.reporters.retain(|reporter, cell| cells.get(cell).is_some_and(|kept| &kept.reporter == reporter));
        }
    }

    /// `reporter` was heard in `cell`: what it said of any other cell goes (it moved on).
    pub fn moved(&mut self, reporter: &[u8; 32], cell: Cell) {
        if self.reporters.get(reporter).is_some_and(|reported| *reported != cell) {
            self.forget(reporter);
        }
    }

    /// Forgets what `reporter` said (they left the region).
    pub fn forget(&mut self, reporter: &[u8; 32]) {
        if let Some(cell) = self.reporters.remove(reporter) {
            self.cells.remove(&cell);
        }
    }

    /// How many cells are reported.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether no cell is reported.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The reporter of `cell`, if one is kept: a peer known to be there.
    pub fn reporter(&self, cell: Cell) -> Option<[u8; 32]> {
        self.cells.get(&cell).map(|kept| kept.reporter)
    }

    /// The people of every reported cell outside `block` as places and colours, and how many
    /// they are in all (the dots are at most [`MAX_DOTS`] a cell).
    pub fn outside(&self, block: Option<&Block>) -> (Vec<FarDot>, u64) {
        let mut dots = Vec::new();
        let mut count = 0u64;
        let mut cells: Vec<&Reported> =
            self.cells.values().filter(|kept| !block.is_some_and(|block| block.contains(kept.summary.cell))).collect();
        cells.sort_unstable_by_key(|kept| kept.summary.cell);
        for kept in cells {
            count = count.saturating_add(u64::from(kept.summary.count));
            let cell = kept.summary.cell;
            dots.extend(
                kept.summary.dots.iter().map(|dot| FarDot { position: cell.place(dot.at), colour: dot.colour }),
            );
        }
        (dots, count)
    }
}

/// One far person as the program draws them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FarDot {
    /// Where, in the region.
    pub position: Vec3,
    /// Their colour.
    pub colour: [u8; 3],
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn summary(cell: Cell, count: u32) -> CrowdSummary {
        CrowdSummary { cell, count, dots: vec![Dot { at: [1, 2, 3], colour: [9, 9, 9] }] }
    }

    proptest! {
        /// Walking anywhere, in any steps, everyone within the block's reach of where one is
        /// stands in a cell of the block.
        #[test]
        fn the_block_always_holds_everyone_within_its_reach(
            start in prop::array::uniform3(-500.0f32..500.0),
            steps in prop::collection::vec(prop::array::uniform3(-30.0f32..30.0), 1..40),
            offsets in prop::collection::vec(prop::array::uniform3(-1.0f32..1.0), 1..20),
            lobby in any::<bool>(),
        ) {
            let region = if lobby { RegionId::Lobby } else { RegionId::City };
            let mut at = Vec3::from_array(start);
            let mut block = None;
            for step in steps {
                at += Vec3::from_array(step);
                let now = Block::around(region, at, block);
                prop_assert!(now.contains(Cell::of(region, at)));
                for offset in &offsets {
                    let other = at + Vec3::from_array(*offset) * BLOCK_REACH;
                    prop_assert!(now.contains(Cell::of(region, other)), "{other} from {at}");
                    prop_assert!(now.cells().contains(&Cell::of(region, other)));
                }
                prop_assert_eq!(now.cells().len(), if lobby { 8 } else { 4 });
                block = Some(now);
            }
        }
    }

    #[test]
    fn pacing_across_the_middle_of_a_cell_keeps_the_block() {
        let middle = CELL_SIZE * 0.5;
        let first = Block::around(RegionId::City, Vec3::new(middle + 1.0, 0.0, 5.0), None);
        let mut block = first;
        for step in 0..50 {
            let x = middle + if step % 2 == 0 { -1.5 } else { 1.5 };
            block = Block::around(RegionId::City, Vec3::new(x, 0.0, 5.0), Some(block));
            assert_eq!(block, first, "step {step} at {x}");
        }
        // Going well past the middle turns the block.
        let turned = Block::around(RegionId::City, Vec3::new(middle - CELL_HYSTERESIS - 0.5, 0.0, 5.0), Some(block));
        assert_ne!(turned, first);
    }

    #[test]
    fn the_city_has_no_layers_and_the_lobby_has() {
        let high = Vec3::new(3.0, 500.0, 3.0);
        assert_eq!(Cell::of(RegionId::City, high).y, 0);
        assert_eq!(Cell::of(RegionId::Lobby, high).y, 10);
        assert!(Block::around(RegionId::City, high, None).cells().iter().all(|cell| cell.y == 0));
        assert!(has_cells(RegionId::Lobby) && has_cells(RegionId::City));
        assert!(!has_cells(RegionId::Room(sanctuary_engine::RoomKind::Cinema)));
    }

    #[test]
    fn broken_and_far_off_positions_stay_on_the_grid() {
        let cell = Cell::of(RegionId::Lobby, Vec3::new(f32::NAN, f32::INFINITY, -1.0e30));
        assert_eq!(cell, Cell { x: 0, y: i16::MAX, z: i16::MIN });
        let block = Block::around(RegionId::Lobby, Vec3::splat(1.0e30), None);
        assert!(block.cells().len() <= MAX_BLOCK);
        assert_eq!(cell.dot(Vec3::splat(f32::NAN)), [0, 0, 0]);
    }

    #[test]
    fn a_dot_lands_within_a_step_of_where_it_was() {
        let cell = Cell { x: -3, y: 2, z: 7 };
        for local in [Vec3::ZERO, Vec3::new(1.0, 20.0, 47.9), Vec3::splat(24.0)] {
            let position = cell.origin() + local;
            let back = cell.place(cell.dot(position));
            assert!(back.distance(position) < CELL_SIZE / 256.0 * 1.8, "{position} came back as {back}");
            assert_eq!(Cell::of(RegionId::Lobby, back), cell);
        }
    }

    #[test]
    fn cell_topics_differ_and_do_not_change_between_versions() {
        let here = cell_topic(RegionId::Lobby, Cell { x: 0, y: 0, z: 0 });
        assert_ne!(here, cell_topic(RegionId::City, Cell { x: 0, y: 0, z: 0 }));
        assert_ne!(here, cell_topic(RegionId::Lobby, Cell { x: 0, y: 1, z: 0 }));
        assert_ne!(here, crate::region_topic(RegionId::Lobby));
        let hex: String = here.as_bytes().iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(hex, PINNED_LOBBY_CELL_TOPIC);
    }

    const PINNED_LOBBY_CELL_TOPIC: &str = "1926d4ee4f0f5b2d2f2652f7df69d357d0d993ddcc91e0a5d2063e0f9d33fd3b";

    #[test]
    fn a_summary_keeps_its_limits() {
        let cell = Cell { x: 1, y: 0, z: 1 };
        assert!(summary(cell, 1).check_shape().is_ok());
        assert!(summary(cell, 0).check_shape().is_err(), "nobody with a dot");
        assert!(CrowdSummary { cell, count: 0, dots: Vec::new() }.check_shape().is_ok(), "a withdrawal");
        assert!(summary(cell, MAX_CELL_COUNT + 1).check_shape().is_err());
        let mut many = summary(cell, 100);
        many.dots = vec![Dot { at: [0; 3], colour: [0; 3] }; MAX_DOTS + 1];
        assert!(many.check_shape().is_err());
        many.dots.truncate(MAX_DOTS);
        assert!(many.check_shape().is_ok());
        many.count = 10;
        assert!(many.check_shape().is_err(), "fewer people than dots");
    }

    #[test]
    fn the_lower_ranked_reporter_of_a_cell_is_kept_until_it_falls_silent() {
        let region = RegionId::Lobby;
        let cell = Cell { x: 0, y: 0, z: 0 };
        let mut keys: Vec<[u8; 32]> = (1..=2u8).map(|byte| [byte; 32]).collect();
        keys.sort_by_key(|key| rank(key, region, cell));
        let (low, high) = (keys[0], keys[1]);
        let mut far = FarCrowd::default();
        let start = Instant::now();
        assert!(far.heard(region, high, summary(cell, 5), start));
        assert!(far.heard(region, low, summary(cell, 7), start));
        assert!(!far.heard(region, high, summary(cell, 5), start + Duration::from_secs(1)), "the lower rank holds");
        assert_eq!(far.reporter(cell), Some(low));
        assert_eq!(far.outside(None).1, 7);
        // Silent past the slowest pace: the other takes over.
        assert!(far.heard(region, high, summary(cell, 5), start + SUMMARY_STALE));
        assert_eq!(far.outside(None).1, 5);
        far.forget(&high);
        assert!(far.is_empty());
        assert!(far.heard(region, low, summary(cell, 7), start));
        far.expire(start + SUMMARY_TIMEOUT);
        assert!(far.is_empty());
    }

    #[test]
    fn the_far_crowd_is_bounded_and_leaves_out_the_block() {
        let region = RegionId::City;
        let mut far = FarCrowd::default();
        let now = Instant::now();
        for index in 0..MAX_FAR_CELLS + 10 {
            let cell = Cell { x: (index % 100) as i16, y: 0, z: (index / 100) as i16 };
            let mut reporter = [0; 32];
            reporter[..8].copy_from_slice(&(index as u64).to_le_bytes());
            let kept = far.heard(region, reporter, summary(cell, 2), now);
            assert_eq!(kept, index < MAX_FAR_CELLS, "cell {index}");
        }
        assert_eq!(far.len(), MAX_FAR_CELLS);
        let block = Block::around(region, Vec3::new(30.0, 0.0, 30.0), None);
        let (dots, people) = far.outside(Some(&block));
        let inside = block.cells().iter().filter(|cell| far.reporter(**cell).is_some()).count();
        assert_eq!(dots.len(), MAX_FAR_CELLS - inside);
        assert_eq!(people, 2 * (MAX_FAR_CELLS - inside) as u64);
        assert!(dots.iter().all(|dot| !block.contains(Cell::of(region, dot.position))));
    }

    #[test]
    fn summaries_slow_down_to_keep_within_their_share() {
        assert_eq!(summary_interval(1, 500), SUMMARY_INTERVAL);
        for cells in [10usize, 100, 400, MAX_FAR_CELLS] {
            let interval = summary_interval(cells, 500);
            let bits = cells as f64 * (500.0 + 64.0) * 8.0 / interval.as_secs_f64();
            assert!(bits <= FAR_DOWNLINK_BITS_PER_SECOND as f64 * 1.001, "{cells} cells: {bits} bit/s");
        }
        assert!(SUMMARY_TIMEOUT > SUMMARY_STALE);
    }

    #[test]
    fn a_reporter_that_moved_on_reports_only_its_new_cell() {
        let region = RegionId::Lobby;
        let mut far = FarCrowd::default();
        let now = Instant::now();
        far.heard(region, [3; 32], summary(Cell { x: 0, y: 0, z: 0 }, 4), now);
        far.heard(region, [3; 32], summary(Cell { x: 1, y: 0, z: 0 }, 2), now);
        assert_eq!(far.len(), 1);
        assert_eq!(far.reporter(Cell { x: 1, y: 0, z: 0 }), Some([3; 32]));
        // Heard elsewhere: its report goes.
        far.moved(&[3; 32], Cell { x: 5, y: 0, z: 0 });
        assert!(far.is_empty());
        assert!(far.reporters.is_empty());
    }

    #[test]
    fn a_reporter_withdraws_its_summary_when_it_leaves_its_cell() {
        let region = RegionId::Lobby;
        let cell = Cell { x: 2, y: 1, z: 0 };
        let mut far = FarCrowd::default();
        let now = Instant::now();
        far.heard(region, [3; 32], summary(cell, 4), now);
        let withdrawal = CrowdSummary { cell, count: 0, dots: Vec::new() };
        assert!(!far.heard(region, [4; 32], withdrawal.clone(), now), "only its reporter withdraws it");
        assert_eq!(far.len(), 1);
        assert!(!far.heard(region, [3; 32], withdrawal, now));
        assert!(far.is_empty());
    }
}
