//! A room's whiteboard: pure rules, no I/O. Strokes are signed by whoever drew them and
//! merge as a set, so that every peer that holds the same strokes and clears draws the same
//! board whatever order they came in (a state-based CRDT: union, then the same cut).
//!
//! The rules:
//! - a stroke is a line of at most [`MAX_POINTS`] points in the board's own coordinates (0 to
//!   65535 across and down), one colour and width, dated by its author and signed by them; its
//!   id is the BLAKE3 of what it says, so the same stroke twice is one;
//! - a clear, signed, removes every stroke dated at or before it: all strokes when signed by
//!   the board's owner (the room's, when it has one), else only its signer's own ("erase
//!   mine"); the latest clear of each kind counts;
//! - the board keeps the newest [`MAX_STROKES`] strokes (by date, then id), a cut that gives the
//!   same board whichever peer makes it and whenever: keeping the newest of the newest is the
//!   newest of all;
//! - a stroke or clear dated later than now (beyond the clocks' skew) is refused, so that a
//!   stroke outlives a clear by at most the skew (5 min) of its author's clock.

use std::collections::{BTreeMap, BTreeSet};

use iroh::{PublicKey, SecretKey, Signature};
use serde::{Deserialize, Serialize};

use crate::poll::CLOCK_SKEW_US;

/// The most points in a stroke.
pub const MAX_POINTS: usize = 256;
/// The most strokes a board keeps.
pub const MAX_STROKES: usize = 4096;
/// The widest stroke, in board units of 1/256 of the board's width.
pub const MAX_WIDTH: u8 = 64;
/// The most people whose "erase mine" a board remembers.
pub const MAX_ERASERS: usize = 1024;

const STROKE_CONTEXT: &[u8] = b"sanctuary stroke v1";
const CLEAR_CONTEXT: &[u8] = b"sanctuary clear v1";

/// A line drawn on the board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stroke {
    /// Who drew it.
    pub author: [u8; 32],
    /// When, µs since 1970 on the author's clock.
    pub at_us: u64,
    /// Its colour.
    pub colour: [u8; 3],
    /// Its width, in 1/256 of the board's width (1 to [`MAX_WIDTH`]).
    pub width: u8,
    /// Its points, across and down, 0 to 65535 over the board.
    pub points: Vec<[u16; 2]>,
}

/// A stroke and its author's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedStroke {
    /// The stroke.
    pub stroke: Stroke,
    /// Its author's signature of it.
    pub signature: Signature,
}

/// A clear of the board, up to and including `at_us`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clear {
    /// Who clears.
    pub author: [u8; 32],
    /// Strokes dated at or before this go.
    pub at_us: u64,
    /// Its author's signature.
    pub signature: Signature,
}

/// Why a stroke or clear was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoardError {
    /// No points, too many, or a width out of bounds.
    #[error("a stroke has 1 to {MAX_POINTS} points and a width of 1 to {MAX_WIDTH}")]
    Shape,
    /// The signature does not match.
    #[error("the signature does not match")]
    Signature,
    /// Dated later than now.
    #[error("dated in the future")]
    Future,
}

fn stroke_bytes(stroke: &Stroke) -> Vec<u8> {
    // Numbers, arrays and vectors always encode.
    postcard::to_extend(stroke, STROKE_CONTEXT.to_vec()).unwrap_or_default()
}

fn clear_bytes(author: &[u8; 32], at_us: u64) -> Vec<u8> {
    let mut bytes = CLEAR_CONTEXT.to_vec();
    bytes.extend_from_slice(author);
    bytes.extend_from_slice(&at_us.to_le_bytes());
    bytes
}

impl Stroke {
    /// Checks the points and the width.
    pub fn check(&self) -> Result<(), BoardError> {
        let shaped = (1..=MAX_POINTS).contains(&self.points.len()) && (1..=MAX_WIDTH).contains(&self.width);
        if shaped { Ok(()) } else { Err(BoardError::Shape) }
    }
}

impl SignedStroke {
    /// Signs `stroke` as the owner of `secret` (its author is set to them).
    pub fn new(secret: &SecretKey, mut stroke: Stroke) -> Result<Self, BoardError> {
        stroke.author = *secret.public().as_bytes();
        stroke.check()?;
        let signature = secret.sign(&stroke_bytes(&stroke));
        Ok(Self { stroke, signature })
    }

    /// Its id: the BLAKE3 of what it says.
    pub fn id(&self) -> [u8; 32] {
        *blake3::hash(&stroke_bytes(&self.stroke)).as_bytes()
    }

    /// Checks the shape and the signature.
    pub fn verify(&self) -> Result<(), BoardError> {
        self.stroke.check()?;
        let author = PublicKey::from_bytes(&self.stroke.author).map_err(|_| BoardError::Signature)?;
        author.verify(&stroke_bytes(&self.stroke), &self.signature).map_err(|_| BoardError::Signature)
    }
}

impl Clear {
    /// A clear up to `at_us`, signed with `secret`.
    pub fn new(secret: &SecretKey, at_us: u64) -> Self {
        let author = *secret.public().as_bytes();
        Self { author, at_us, signature: secret.sign(&clear_bytes(&author, at_us)) }
    }

    /// Checks the signature.
    pub fn verify(&self) -> Result<(), BoardError> {
        let author = PublicKey::from_bytes(&self.author).map_err(|_| BoardError::Signature)?;
        author.verify(&clear_bytes(&self.author, self.at_us), &self.signature).map_err(|_| BoardError::Signature)
    }
}

/// A whole board as it is handed to a newcomer (and kept on disk).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardSnapshot {
    /// The clears that count.
    pub clears: Vec<Clear>,
    /// The strokes kept, the oldest first.
    pub strokes: Vec<SignedStroke>,
}

/// A board: the strokes kept, by (date, id), and the clears that count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Board {
    /// The board's owner, whose clear takes everything (none: only "erase mine").
    owner: Option<[u8; 32]>,
    strokes: BTreeMap<(u64, [u8; 32]), SignedStroke>,
    /// The owner's latest clear.
    cleared: Option<Clear>,
    /// Each person's latest "erase mine".
    erased: BTreeMap<[u8; 32], Clear>,
}

impl Board {
    /// An empty board owned by `owner` (or by nobody).
    pub fn new(owner: Option<[u8; 32]>) -> Self {
        Self { owner, ..Self::default() }
    }

    /// Whether a stroke by `author` dated `at_us` is cleared.
    fn gone(&self, author: &[u8; 32], at_us: u64) -> bool {
        self.cleared.as_ref().is_some_and(|clear| at_us <= clear.at_us)
            || self.erased.get(author).is_some_and(|clear| at_us <= clear.at_us)
    }

    /// Takes a stroke by the rules (see the module's documentation), our clock reading
    /// `now_us`; whether the board changed.
    pub fn take_stroke(&mut self, stroke: SignedStroke, now_us: u64) -> Result<bool, BoardError> {
        self.take_stroke_checking(stroke, now_us, true)
    }

    fn take_stroke_checking(&mut self, stroke: SignedStroke, now_us: u64, verify: bool) -> Result<bool, BoardError> {
        if stroke.stroke.at_us > now_us.saturating_add(CLOCK_SKEW_US) {
            return Err(BoardError::Future);
        }
        stroke.stroke.check()?;
        let key = (stroke.stroke.at_us, stroke.id());
        if self.strokes.contains_key(&key) || self.gone(&stroke.stroke.author, stroke.stroke.at_us) {
            return Ok(false);
        }
        if self.strokes.len() >= MAX_STROKES && self.strokes.first_key_value().is_some_and(|(oldest, _)| key < *oldest)
        {
            // Older than everything kept on a full board: the cut drops it anyway.
            return Ok(false);
        }
        // The signature last: it is the costly check.
        if verify {
            stroke.verify()?;
        }
        self.strokes.insert(key, stroke);
        while self.strokes.len() > MAX_STROKES {
            self.strokes.pop_first();
        }
        Ok(true)
    }

    /// Takes a clear: the owner's clears everything up to its date, anyone else's their own
    /// strokes; whether the board changed.
    pub fn take_clear(&mut self, clear: Clear, now_us: u64) -> Result<bool, BoardError> {
        self.take_clear_checking(clear, now_us, true)
    }

    fn take_clear_checking(&mut self, clear: Clear, now_us: u64, verify: bool) -> Result<bool, BoardError> {
        if clear.at_us > now_us.saturating_add(CLOCK_SKEW_US) {
            return Err(BoardError::Future);
        }
        let owners = self.owner == Some(clear.author);
        let held = if owners { self.cleared.as_ref() } else { self.erased.get(&clear.author) };
        if held.is_some_and(|held| held.at_us >= clear.at_us) {
            return Ok(false);
        }
        if !owners && !self.erased.contains_key(&clear.author) && self.erased.len() >= MAX_ERASERS {
            // Too many people erased their own: the oldest of those erasures is forgotten (its
            // strokes are gone already and do not come back unless said again).
            let oldest = self.erased.iter().min_by_key(|(_, clear)| clear.at_us).map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                self.erased.remove(&oldest);
            }
        }
        if verify {
            clear.verify()?;
        }
        let (author, at_us) = (clear.author, clear.at_us);
        if owners {
            self.cleared = Some(clear);
            self.strokes.retain(|(date, _), _| *date > at_us);
        } else {
            self.erased.insert(author, clear);
            self.strokes.retain(|(date, _), stroke| stroke.stroke.author != author || *date > at_us);
        }
        Ok(true)
    }

    /// Takes in another board of the same owner, whose every stroke and clear was checked
    /// when it was taken (one fetched and checked off the node's loop); whether this board
    /// changed.
    pub fn merge(&mut self, other: Board, now_us: u64) -> bool {
        let mut changed = false;
        for clear in other.cleared.into_iter().chain(other.erased.into_values()) {
            changed |= self.take_clear_checking(clear, now_us, false) == Ok(true);
        }
        for stroke in other.strokes.into_values() {
            changed |= self.take_stroke_checking(stroke, now_us, false) == Ok(true);
        }
        changed
    }

    /// What a newcomer is handed: the clears that count and the strokes kept.
    pub fn snapshot(&self) -> BoardSnapshot {
        BoardSnapshot { clears: self.clears().cloned().collect(), strokes: self.strokes().cloned().collect() }
    }

    /// A board of `owner` from a snapshot someone handed us, every stroke and clear checked
    /// (those that fail are left out; at most [`MAX_STROKES`] strokes and [`MAX_ERASERS`] + 1
    /// clears are looked at).
    pub fn from_snapshot(owner: Option<[u8; 32]>, snapshot: BoardSnapshot, now_us: u64) -> Self {
        let mut board = Board::new(owner);
        for clear in snapshot.clears.into_iter().take(MAX_ERASERS + 1) {
            let _ = board.take_clear(clear, now_us);
        }
        for stroke in snapshot.strokes.into_iter().take(MAX_STROKES) {
            let _ = board.take_stroke(stroke, now_us);
        }
        board
    }

    /// The strokes to draw, the oldest first.
    pub fn strokes(&self) -> impl Iterator<Item = &SignedStroke> {
        self.strokes.values()
    }

    /// The ids of the strokes kept (for comparing two boards).
    pub fn ids(&self) -> BTreeSet<[u8; 32]> {
        self.strokes.keys().map(|(_, id)| *id).collect()
    }

    /// The clears that count: the owner's, then each person's own.
    pub fn clears(&self) -> impl Iterator<Item = &Clear> {
        self.cleared.iter().chain(self.erased.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000;
    const NOW: u64 = 1_800_000_000 * SECOND;

    fn secret(seed: u8) -> SecretKey {
        SecretKey::from_bytes(&[seed; 32])
    }

    fn line(seed: u8, at_us: u64, from: u16) -> SignedStroke {
        let stroke = Stroke {
            author: [0; 32],
            at_us,
            colour: [seed, 40, 200],
            width: 3,
            points: (0..10).map(|step| [from + step * 100, from]).collect(),
        };
        SignedStroke::new(&secret(seed), stroke).expect("a good stroke")
    }

    /// A small deterministic shuffle (a linear congruential generator).
    fn shuffled<T>(mut items: Vec<T>, seed: u64) -> Vec<T> {
        let mut state = seed;
        for at in (1..items.len()).rev() {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            items.swap(at, (state >> 33) as usize % (at + 1));
        }
        items
    }

    #[derive(Clone)]
    enum Said {
        Stroke(SignedStroke),
        Clear(Clear),
    }

    fn apply(board: &mut Board, said: &Said) {
        let _ = match said.clone() {
            Said::Stroke(stroke) => board.take_stroke(stroke, NOW),
            Said::Clear(clear) => board.take_clear(clear, NOW),
        };
    }

    #[test]
    fn strokes_and_clears_in_any_order_end_the_same_on_every_board() {
        let owner = *secret(1).public().as_bytes();
        let mut said = Vec::new();
        for at in 0..40u64 {
            said.push(Said::Stroke(line(1 + (at % 3) as u8, NOW - 100 * SECOND + at * SECOND, at as u16 * 50)));
        }
        // The owner clears up to the 20th second; Bo erases his own up to the 30th.
        said.push(Said::Clear(Clear::new(&secret(1), NOW - 80 * SECOND)));
        said.push(Said::Clear(Clear::new(&secret(2), NOW - 70 * SECOND)));
        let mut reference = Board::new(Some(owner));
        for one in &said {
            apply(&mut reference, one);
        }
        let kept: Vec<(u64, [u8; 32])> =
            reference.strokes().map(|stroke| (stroke.stroke.at_us, stroke.stroke.author)).collect();
        assert!(kept.iter().all(|(at, _)| *at > NOW - 80 * SECOND), "the owner's clear took the first 20");
        let bo = *secret(2).public().as_bytes();
        assert!(kept.iter().all(|(at, author)| *author != bo || *at > NOW - 70 * SECOND), "Bo erased his own");
        assert_eq!(kept.len(), 19 - 3, "19 left after the owner's clear, 3 of Bo's erased");
        for seed in 1..20 {
            let mut board = Board::new(Some(owner));
            // Each message twice, in another order.
            let twice: Vec<Said> = said.iter().chain(said.iter()).cloned().collect();
            for one in shuffled(twice, seed) {
                apply(&mut board, &one);
            }
            assert_eq!(board.ids(), reference.ids(), "order {seed} ends the same");
        }
    }

    #[test]
    fn only_the_owner_clears_everything_and_forgeries_and_future_strokes_are_refused() {
        let owner = *secret(1).public().as_bytes();
        let mut board = Board::new(Some(owner));
        assert_eq!(board.take_stroke(line(1, NOW - SECOND, 0), NOW), Ok(true));
        assert_eq!(board.take_stroke(line(2, NOW - SECOND, 10), NOW), Ok(true));
        assert_eq!(board.take_stroke(line(2, NOW - SECOND, 10), NOW), Ok(false), "the same stroke twice is one");
        // Cy's clear takes only Cy's strokes (she has none here).
        assert_eq!(board.take_clear(Clear::new(&secret(3), NOW), NOW), Ok(true));
        assert_eq!(board.strokes().count(), 2);
        // A stroke signed by one key in another's name, one altered, one dated ahead.
        let mut forged = line(3, NOW, 20);
        forged.stroke.author = owner;
        assert_eq!(board.take_stroke(forged, NOW), Err(BoardError::Signature));
        let mut altered = line(3, NOW + 1, 30);
        altered.stroke.points[0] = [9, 9];
        assert_eq!(board.take_stroke(altered, NOW), Err(BoardError::Signature));
        assert_eq!(board.take_stroke(line(3, NOW + 10 * 60 * SECOND, 0), NOW), Err(BoardError::Future));
        let mut too_long = line(3, NOW, 0).stroke;
        too_long.points = vec![[0, 0]; MAX_POINTS + 1];
        assert_eq!(SignedStroke::new(&secret(3), too_long), Err(BoardError::Shape));
        // A forged clear in the owner's name.
        let mut forged = Clear::new(&secret(3), NOW);
        forged.author = owner;
        assert_eq!(board.take_clear(forged, NOW), Err(BoardError::Signature));
        assert_eq!(board.strokes().count(), 2);
        // The owner's clear takes everything up to it; a stroke dated before it stays away.
        assert_eq!(board.take_clear(Clear::new(&secret(1), NOW), NOW), Ok(true));
        assert_eq!(board.strokes().count(), 0);
        assert_eq!(board.take_stroke(line(2, NOW - 5 * SECOND, 40), NOW), Ok(false));
        assert_eq!(board.take_stroke(line(2, NOW + SECOND, 40), NOW + SECOND), Ok(true));

        // Handed on whole, it is the same board; a forged stroke in the snapshot is left out.
        let mut snapshot = board.snapshot();
        let mut forged = line(3, NOW, 50);
        forged.stroke.author = owner;
        snapshot.strokes.push(forged);
        let handed = Board::from_snapshot(Some(owner), snapshot, NOW + SECOND);
        assert_eq!((handed.ids(), handed.clears().count()), (board.ids(), board.clears().count()));
        let mut fresh = Board::new(Some(owner));
        assert!(fresh.take_stroke(line(3, NOW + SECOND, 60), NOW + SECOND).is_ok_and(|taken| taken));
        assert!(fresh.merge(handed, NOW + SECOND));
        assert_eq!(fresh.strokes().count(), 2, "the merged stroke and its own, the cleared ones not");
    }

    #[test]
    fn a_full_board_keeps_the_newest_strokes() {
        let mut board = Board::new(None);
        let first = NOW - (MAX_STROKES as u64 + 10) * SECOND;
        for at in 0..(MAX_STROKES as u64 + 10) {
            let _ = board.take_stroke(line(4, first + at * SECOND, (at % 600) as u16), NOW);
        }
        assert_eq!(board.strokes().count(), MAX_STROKES);
        let oldest = board.strokes().next().map(|stroke| stroke.stroke.at_us);
        assert_eq!(oldest, Some(first + 10 * SECOND), "the ten oldest went");
        assert_eq!(board.take_stroke(line(4, first, 7), NOW), Ok(false), "older than all kept: dropped");
    }
}
