//! The lecture hall's stage, shared: who presents, which slide shows, whose hands are up and
//! who has the floor. Pure rules, no I/O: the node (`node::stage`) carries these messages on the
//! hall's topic, keeps the state and fetches the slides.
//!
//! The stage keeps the screen's rules ([`crate::screen`]). The presenter says the whole state in
//! one signed [`StageMessage::State`] when it changes and every [`STAGE_KEEPALIVE`], so that a
//! late joiner has it within seconds. A state counts when it is newer and signed by the
//! presenter of the state it replaces, or by anyone once that presenter has not been heard for
//! [`crate::screen::CONTROLLER_GONE`]. The presenter hands the stage on with
//! [`StageAction::HandOver`].
//!
//! Slides are images (PNG or JPEG), each a blob of at most [`MAX_SLIDE_BYTES`] in the film
//! store. The state names the slide showing and the next one, which the audience fetches before
//! it is shown; the whole deck (at most [`MAX_SLIDES`]) stays with the presenter, so that the
//! state is one small gossip message however long the talk.
//!
//! Hands: anyone in the hall raises or lowers theirs ([`StageMessage::Hand`]); the presenter
//! keeps them in the order raised, one per key and at most [`MAX_HANDS`], in the state, so that
//! everyone sees the queue. The presenter gives the floor to one of them; whoever has the floor
//! gives it back by lowering their hand.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::screen::Dialable;

/// The most slides a deck holds.
pub const MAX_SLIDES: usize = 200;
/// The largest slide, in bytes.
pub const MAX_SLIDE_BYTES: u64 = 8 << 20;
/// The most slides one "holding" names: the one showing and the next.
pub const MAX_HELD_SAID: usize = 2;
/// The most hands up at once.
pub const MAX_HANDS: usize = 16;
/// How often the presenter says the state again when nothing changed.
pub const STAGE_KEEPALIVE: Duration = crate::screen::SCREEN_KEEPALIVE;
/// A key's hand is counted at most this often (raising and lowering it faster is not heard).
pub const HAND_INTERVAL: Duration = Duration::from_millis(500);

/// A slide: the BLAKE3 of its image file (an iroh-blobs hash) and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SlideRef {
    /// BLAKE3 of the file.
    pub hash: [u8; 32],
    /// Its size in bytes, at most [`MAX_SLIDE_BYTES`].
    pub bytes: u64,
}

/// What kind of image a slide's first bytes say it is, if one the hall shows.
pub fn slide_format(first_bytes: &[u8]) -> Option<&'static str> {
    if first_bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("png")
    } else if first_bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpeg")
    } else {
        None
    }
}

/// The whole state of a stage, as its presenter says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageState {
    /// Grows with every change, across presenters.
    pub version: u64,
    /// Who presents.
    pub presenter: [u8; 32],
    /// How many slides the presenter's deck has.
    pub slides: u16,
    /// The index of the slide showing (0 when the deck is empty).
    pub current: u16,
    /// The slide showing.
    pub slide: Option<SlideRef>,
    /// The slide after it, for the audience to fetch ahead.
    pub next: Option<SlideRef>,
    /// Hands up, in the order raised; at most [`MAX_HANDS`], one per key.
    pub hands: Vec<[u8; 32]>,
    /// Who has the floor, if anyone besides the presenter.
    pub floor: Option<[u8; 32]>,
}

/// What travels about a stage on the hall's topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StageMessage {
    /// The stage's state, from its presenter (or someone taking over a stage left alone).
    State(StageState),
    /// The author raises (or lowers) their hand.
    Hand {
        /// Raised.
        up: bool,
    },
    /// The author holds these slides whole (the one showing and the next, at most
    /// [`MAX_HELD_SAID`]) and serves them, and where to dial them.
    Holding {
        /// The slides' hashes.
        slides: Vec<[u8; 32]>,
        /// Where the author can be dialled.
        at: Dialable,
    },
}

impl StageMessage {
    /// Checks the bounds every peer keeps: the hands, the slides' sizes, the addresses.
    pub fn check_shape(&self) -> Result<(), crate::wire::WireError> {
        let ok = match self {
            StageMessage::State(state) => state.check().is_ok(),
            StageMessage::Hand { .. } => true,
            StageMessage::Holding { slides, at } => slides.len() <= MAX_HELD_SAID && at.in_bounds(),
        };
        if ok { Ok(()) } else { Err(crate::wire::WireError::Malformed) }
    }
}

/// Why a stage message or a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StageError {
    /// Someone else presents.
    #[error("someone else presents; they can hand you the stage")]
    NotPresenter,
    /// No slides.
    #[error("no slides are shown; share some first")]
    NoSlides,
    /// Past either end of the deck.
    #[error("there is no slide {0}")]
    NoSuchSlide(u32),
    /// A deck too long.
    #[error("a deck holds at most {MAX_SLIDES} slides")]
    TooManySlides,
    /// A slide too large, or empty.
    #[error("a slide holds 1 byte to {MAX_SLIDE_BYTES} bytes")]
    SlideSize,
    /// More hands than a stage keeps, or one twice.
    #[error("at most {MAX_HANDS} hands, one per person")]
    Hands,
    /// The slide pointers do not fit the deck's length.
    #[error("the slide shown is not in the deck")]
    Inconsistent,
    /// The floor is the presenter's own.
    #[error("the presenter has the floor already")]
    OwnFloor,
}

/// What the presenter may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageAction {
    /// Show this deck from its first slide.
    Present(Vec<SlideRef>),
    /// The next slide.
    Next,
    /// The slide before.
    Previous,
    /// Slide `n`, counting from 0.
    Go(u16),
    /// Give the floor to this key (their hand goes down).
    GiveFloor([u8; 32]),
    /// Take the floor back.
    TakeFloor,
    /// Lower this key's hand (a question answered, or not to be taken).
    LowerHand([u8; 32]),
    /// Hand the stage to this key: their deck replaces ours when they present.
    HandOver([u8; 32]),
}

impl StageState {
    /// A stage with no slides presented by `presenter`.
    pub fn new(presenter: [u8; 32]) -> Self {
        Self { version: 0, presenter, slides: 0, current: 0, slide: None, next: None, hands: Vec::new(), floor: None }
    }

    /// Checks what a well-formed state keeps.
    pub fn check(&self) -> Result<(), StageError> {
        if usize::from(self.slides) > MAX_SLIDES {
            return Err(StageError::TooManySlides);
        }
        let sized = |slide: &SlideRef| (1..=MAX_SLIDE_BYTES).contains(&slide.bytes);
        if !self.slide.iter().chain(self.next.iter()).all(sized) {
            return Err(StageError::SlideSize);
        }
        if self.hands.len() > MAX_HANDS || self.hands.iter().enumerate().any(|(at, key)| self.hands[..at].contains(key))
        {
            return Err(StageError::Hands);
        }
        let showing = self.current < self.slides;
        let next_fits = self.next.is_none() || self.current.saturating_add(1) < self.slides;
        if self.slide.is_some() != showing || !next_fits {
            return Err(StageError::Inconsistent);
        }
        if self.floor == Some(self.presenter) {
            return Err(StageError::OwnFloor);
        }
        Ok(())
    }

    /// The state after the presenter's `action` (the version grown); `deck` is the presenter's
    /// deck (the one shown, or the new one for [`StageAction::Present`]).
    pub fn apply(&self, action: &StageAction, deck: &[SlideRef]) -> Result<StageState, StageError> {
        let mut next = self.clone();
        next.version = self.version.saturating_add(1);
        match action {
            StageAction::Present(new) => {
                if new.len() > MAX_SLIDES {
                    return Err(StageError::TooManySlides);
                }
                if new.iter().any(|slide| !(1..=MAX_SLIDE_BYTES).contains(&slide.bytes)) {
                    return Err(StageError::SlideSize);
                }
                if new.is_empty() {
                    return Err(StageError::NoSlides);
                }
                next.show(new, 0);
            }
            StageAction::Next | StageAction::Previous | StageAction::Go(_) => {
                if deck.is_empty() || self.slides == 0 {
                    return Err(StageError::NoSlides);
                }
                let to = match action {
                    StageAction::Next => u32::from(self.current) + 1,
                    StageAction::Previous => {
                        u32::from(self.current).checked_sub(1).ok_or(StageError::NoSuchSlide(0))?
                    }
                    StageAction::Go(n) => u32::from(*n),
                    _ => unreachable!("matched above"),
                };
                let to = u16::try_from(to).ok().filter(|to| usize::from(*to) < deck.len());
                let to = to.ok_or(StageError::NoSuchSlide(u32::from(self.current) + 2))?;
                next.show(deck, to);
            }
            StageAction::GiveFloor(key) => {
                if *key == self.presenter {
                    return Err(StageError::OwnFloor);
                }
                next.hands.retain(|hand| hand != key);
                next.floor = Some(*key);
            }
            StageAction::TakeFloor => next.floor = None,
            StageAction::LowerHand(key) => next.hands.retain(|hand| hand != key),
            StageAction::HandOver(key) => {
                next.presenter = *key;
                next.hands.retain(|hand| hand != key);
                next.floor = None;
                next.show(&[], 0);
            }
        }
        Ok(next)
    }

    /// Points the state at slide `at` of `deck`.
    fn show(&mut self, deck: &[SlideRef], at: u16) {
        self.slides = u16::try_from(deck.len().min(MAX_SLIDES)).unwrap_or(0);
        self.current = at;
        self.slide = deck.get(usize::from(at)).copied();
        self.next = deck.get(usize::from(at) + 1).copied();
    }

    /// The state after `who` raises (or lowers) their hand, when it changes anything: a hand
    /// already up, a full queue or the presenter's own hand change nothing; whoever has the
    /// floor gives it back by lowering theirs.
    pub fn hand(&self, who: [u8; 32], up: bool) -> Option<StageState> {
        if who == self.presenter {
            return None;
        }
        let mut next = self.clone();
        if up {
            if self.hands.contains(&who) || self.hands.len() >= MAX_HANDS || self.floor == Some(who) {
                return None;
            }
            next.hands.push(who);
        } else {
            next.hands.retain(|hand| *hand != who);
            if next.floor == Some(who) {
                next.floor = None;
            }
            if next == *self {
                return None;
            }
        }
        next.version = self.version.saturating_add(1);
        Some(next)
    }
}

impl StageState {
    /// The state with the hands, and the floor, of those `here` no longer keeps taken down
    /// (the version grown), if that changes anything.
    pub fn without_the_gone(&self, here: impl Fn(&[u8; 32]) -> bool) -> Option<StageState> {
        let mut next = self.clone();
        next.hands.retain(|key| here(key));
        if next.floor.is_some_and(|key| !here(&key)) {
            next.floor = None;
        }
        (next != *self).then(|| StageState { version: self.version.saturating_add(1), ..next })
    }
}

/// Whether a state from `author` replaces `held`. `presenter_gone` says whether the held
/// state's presenter has not been heard for [`crate::screen::CONTROLLER_GONE`].
pub fn accepts(held: Option<&StageState>, author: [u8; 32], new: &StageState, presenter_gone: bool) -> bool {
    crate::screen::succeeds(held.map(|held| (held.version, held.presenter)), author, new.version, presenter_gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deck(n: u8) -> Vec<SlideRef> {
        (0..n).map(|seed| SlideRef { hash: [seed; 32], bytes: 1000 + u64::from(seed) }).collect()
    }

    #[test]
    fn slides_move_within_the_deck_and_the_next_is_named() {
        let deck = deck(3);
        let state = StageState::new([1; 32]).apply(&StageAction::Present(deck.clone()), &[]).expect("presents");
        assert_eq!((state.slides, state.current, state.slide, state.next), (3, 0, Some(deck[0]), Some(deck[1])));
        assert_eq!(state.apply(&StageAction::Previous, &deck), Err(StageError::NoSuchSlide(0)));
        let state = state.apply(&StageAction::Next, &deck).expect("next");
        let state = state.apply(&StageAction::Next, &deck).expect("next");
        assert_eq!((state.current, state.slide, state.next), (2, Some(deck[2]), None));
        assert!(state.apply(&StageAction::Next, &deck).is_err(), "past the last slide");
        let back = state.apply(&StageAction::Go(1), &deck).expect("goes");
        assert_eq!((back.current, back.next), (1, Some(deck[2])));
        assert!(back.apply(&StageAction::Go(3), &deck).is_err());
        assert_eq!(back.version, 4);
        assert!(back.check().is_ok());
        let none = StageState::new([1; 32]);
        assert_eq!(none.apply(&StageAction::Next, &[]), Err(StageError::NoSlides));
        assert_eq!(none.apply(&StageAction::Present(Vec::new()), &[]), Err(StageError::NoSlides));
        let huge = vec![SlideRef { hash: [0; 32], bytes: MAX_SLIDE_BYTES + 1 }];
        assert_eq!(none.apply(&StageAction::Present(huge), &[]), Err(StageError::SlideSize));
        assert_eq!(
            none.apply(&StageAction::Present(vec![deck[0]; MAX_SLIDES + 1]), &[]),
            Err(StageError::TooManySlides)
        );
    }

    #[test]
    fn hands_queue_in_order_once_each_and_the_floor_goes_back() {
        let presenter = [1; 32];
        let mut state = StageState::new(presenter);
        assert_eq!(state.hand(presenter, true), None, "the presenter raises no hand");
        state = state.hand([2; 32], true).expect("raised");
        state = state.hand([3; 32], true).expect("raised");
        assert_eq!(state.hand([2; 32], true), None, "a hand up once");
        assert_eq!(state.hands, vec![[2; 32], [3; 32]]);
        state = state.apply(&StageAction::GiveFloor([3; 32]), &[]).expect("gives the floor");
        assert_eq!((state.hands.clone(), state.floor), (vec![[2; 32]], Some([3; 32])));
        assert_eq!(state.hand([3; 32], true), None, "whoever has the floor raises no hand");
        state = state.hand([3; 32], false).expect("gives the floor back");
        assert_eq!(state.floor, None);
        assert_eq!(state.hand([3; 32], false), None, "nothing to lower");
        for key in 10..10 + MAX_HANDS as u8 {
            if let Some(next) = state.hand([key; 32], true) {
                state = next;
            }
        }
        assert_eq!(state.hands.len(), MAX_HANDS);
        assert_eq!(state.hand([200; 32], true), None, "a full queue");
        assert!(state.check().is_ok());
        assert_eq!(state.apply(&StageAction::GiveFloor(presenter), &[]), Err(StageError::OwnFloor));
        let lowered = state.apply(&StageAction::LowerHand([2; 32]), &[]).expect("lowers");
        assert!(!lowered.hands.contains(&[2; 32]));
        // Those who went without a word: their hands go down, and the floor comes back.
        let with_floor = lowered.apply(&StageAction::GiveFloor([11; 32]), &[]).expect("floor");
        assert_eq!(with_floor.without_the_gone(|_| true), None, "everyone is here");
        let after = with_floor.without_the_gone(|key| key[0] % 2 == 0).expect("some went");
        assert!(after.hands.iter().all(|key| key[0] % 2 == 0) && !after.hands.is_empty());
        assert_eq!((after.floor, after.version), (None, with_floor.version + 1));
    }

    #[test]
    fn a_handed_over_stage_belongs_to_the_new_presenter() {
        let deck = deck(2);
        let held = StageState::new([5; 32]).apply(&StageAction::Present(deck.clone()), &[]).expect("presents");
        let held = held.hand([9; 32], true).expect("raised");
        let handed = held.apply(&StageAction::HandOver([9; 32]), &deck).expect("hands over");
        assert_eq!((handed.presenter, handed.slides, handed.slide), ([9; 32], 0, None));
        assert!(handed.hands.is_empty(), "the new presenter's hand is down");
        assert!(accepts(Some(&held), [5; 32], &handed, false));
        let by_new = handed.apply(&StageAction::Present(deck.clone()), &[]).expect("presents");
        assert!(accepts(Some(&handed), [9; 32], &by_new, false));
        let by_old = StageState { presenter: [5; 32], ..by_new.clone() };
        assert!(!accepts(Some(&handed), [5; 32], &by_old, false), "the old presenter no more");
        assert!(accepts(Some(&handed), [5; 32], &by_old, true), "unless the new one left");
        assert!(!accepts(Some(&by_new), [9; 32], &handed, false), "older");
    }

    #[test]
    fn malformed_states_are_refused() {
        let good = StageState::new([1; 32]).apply(&StageAction::Present(deck(2)), &[]).expect("presents");
        let bad = [
            StageState { slides: MAX_SLIDES as u16 + 1, ..good.clone() },
            StageState { current: 2, ..good.clone() },
            StageState { slide: None, ..good.clone() },
            StageState { current: 1, ..good.clone() },
            StageState { hands: vec![[2; 32], [2; 32]], ..good.clone() },
            StageState { hands: (0..=MAX_HANDS as u8).map(|key| [key; 32]).collect(), ..good.clone() },
            StageState { floor: Some([1; 32]), ..good.clone() },
            StageState { next: Some(SlideRef { hash: [0; 32], bytes: 0 }), ..good.clone() },
        ];
        for state in bad {
            assert!(StageMessage::State(state.clone()).check_shape().is_err(), "{state:?} was taken");
        }
        assert!(StageMessage::State(good).check_shape().is_ok());
        let holding =
            |n: u8| StageMessage::Holding { slides: (0..n).map(|seed| [seed; 32]).collect(), at: Dialable::default() };
        assert!(holding(2).check_shape().is_ok());
        assert!(holding(3).check_shape().is_err(), "a holding names the slide showing and the next, no more");
        assert_eq!(slide_format(b"\x89PNG\r\n\x1a\n...."), Some("png"));
        assert_eq!(slide_format(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("jpeg"));
        assert_eq!(slide_format(b"%PDF-1.7"), None);
    }
}
