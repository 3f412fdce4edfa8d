//! A room's screen, shared: what is queued, what plays, from where in the film and since when,
//! and who controls it. Pure rules, no I/O: the node (`node::screen`) carries these messages on
//! the region's topic and keeps the state.
//!
//! The controller (whoever started the screen, or someone it handed control to) says the whole
//! state in one signed [`ScreenMessage::State`], when it changes and every [`SCREEN_KEEPALIVE`]
//! so that late joiners have it within seconds. A state counts when it is newer (a higher
//! version, ties going to the smaller key) and signed by the controller of the state it
//! replaces; when that controller has not been heard for [`CONTROLLER_GONE`], anyone present may
//! take over. Anyone may ask for a film to be queued ([`ScreenMessage::Queue`]); the controller
//! adds it within bounds ([`MAX_QUEUE`], [`MAX_QUEUED_PER_KEY`]).
//!
//! Time: a playing state says "position `p` at `since` on the controller's clock", the clock of
//! its signed envelopes' sequence numbers (microseconds). Each viewer estimates that clock from
//! the envelopes it receives ([`ClockSync`]: the smallest gap between the sender's sequence and
//! our arrival time over the last few messages, which is the clock offset plus the fastest
//! delivery seen), so viewers agree on the position whether or not their own clocks agree.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The most films a screen's queue holds, those played included (they go first when full).
pub const MAX_QUEUE: usize = 8;
/// The most films one key may have waiting in a queue.
pub const MAX_QUEUED_PER_KEY: usize = 2;
/// The longest film name shown, in characters (longer is cut when queued).
pub const MAX_FILM_NAME_CHARS: usize = 48;
/// The largest film a screen takes by default; a peer may set its own (`NodeConfig`).
pub const DEFAULT_MAX_FILM_BYTES: u64 = 8 << 30;
/// How often the controller says the state again when nothing changed.
pub const SCREEN_KEEPALIVE: Duration = Duration::from_secs(2);
/// A controller not heard for this long has left: anyone present may take the screen over.
pub const CONTROLLER_GONE: Duration = Duration::from_secs(7);

/// A film as the screen knows it: its bytes' BLAKE3 (an iroh-blobs hash), size, name, and who
/// shared it (who has it whole).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FilmEntry {
    /// BLAKE3 of the file.
    pub hash: [u8; 32],
    /// Its size in bytes.
    pub bytes: u64,
    /// Its name (the file name), at most [`MAX_FILM_NAME_CHARS`].
    pub name: String,
    /// The key of the person who shared it.
    pub by: [u8; 32],
}

/// Where the film is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Clock {
    /// Stopped at `position_ms` milliseconds into the film.
    Paused {
        /// Where.
        position_ms: u64,
    },
    /// Playing: at `position_ms` when the controller's clock read `since_us`.
    Playing {
        /// Where it was.
        position_ms: u64,
        /// When, on the controller's clock (µs since 1970, as its envelopes' sequences).
        since_us: u64,
    },
}

impl Clock {
    /// Seconds into the film when the controller's clock reads `controller_now_us`.
    pub fn position_at(&self, controller_now_us: u64) -> f64 {
        match *self {
            Clock::Paused { position_ms } => position_ms as f64 / 1000.0,
            Clock::Playing { position_ms, since_us } => {
                position_ms as f64 / 1000.0 + controller_now_us.saturating_sub(since_us) as f64 / 1e6
            }
        }
    }

    /// Whether it plays.
    pub fn playing(&self) -> bool {
        matches!(self, Clock::Playing { .. })
    }
}

/// The whole state of a screen, as its controller says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenState {
    /// Grows with every change, across controllers.
    pub version: u64,
    /// Who controls the screen.
    pub controller: [u8; 32],
    /// The films, in order; at most [`MAX_QUEUE`].
    pub queue: Vec<FilmEntry>,
    /// The index of the film showing; `queue.len()` or more when none is.
    pub current: u32,
    /// Where the film showing is.
    pub clock: Clock,
}

impl ScreenState {
    /// An empty screen controlled by `controller`.
    pub fn new(controller: [u8; 32]) -> Self {
        Self { version: 0, controller, queue: Vec::new(), current: 0, clock: Clock::Paused { position_ms: 0 } }
    }

    /// The film showing, if any.
    pub fn film(&self) -> Option<&FilmEntry> {
        self.queue.get(self.current as usize)
    }

    /// Checks what a well-formed state keeps.
    pub fn check(&self, max_film_bytes: u64) -> Result<(), ScreenError> {
        if self.queue.len() > MAX_QUEUE {
            return Err(ScreenError::QueueFull);
        }
        self.queue.iter().try_for_each(|film| film.check(max_film_bytes))
    }
}

impl FilmEntry {
    /// Checks a film's name and size.
    pub fn check(&self, max_film_bytes: u64) -> Result<(), ScreenError> {
        if self.name.chars().count() > MAX_FILM_NAME_CHARS {
            return Err(ScreenError::NameTooLong);
        }
        if self.bytes == 0 {
            return Err(ScreenError::Empty);
        }
        if self.bytes > max_film_bytes {
            return Err(ScreenError::TooLarge { bytes: self.bytes, limit: max_film_bytes });
        }
        Ok(())
    }
}

/// What travels about a screen on a region's topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScreenMessage {
    /// The screen's state, from its controller (or someone taking over a screen left alone).
    State(ScreenState),
    /// Please queue this film (signed by the one who shares it, `film.by`).
    Queue(FilmEntry),
    /// The author holds some or all of this film and serves it: viewers may fetch from them.
    Holding {
        /// The film's hash.
        film: [u8; 32],
        /// Where the author can be dialled: viewers who are not each other's neighbours on
        /// the region's topic would otherwise have no address to fetch from each other by.
        at: Dialable,
    },
}

/// The most addresses a [`Dialable`] carries.
pub const MAX_DIALABLE_ADDRESSES: usize = 8;
/// The longest relay address a [`Dialable`] carries, in bytes.
pub const MAX_RELAY_URL_BYTES: usize = 256;

/// Where a peer says it can be dialled. Only its own key can be reached this way (the
/// connection proves the key), so a false address costs nothing but a failed dial.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dialable {
    /// Its sockets, at most [`MAX_DIALABLE_ADDRESSES`].
    pub direct: Vec<std::net::SocketAddr>,
    /// Its home relay's address, if it has one.
    pub relay: Option<String>,
}

impl Dialable {
    /// Where `addr` says its endpoint is, within the bounds.
    pub fn of(addr: &iroh::EndpointAddr) -> Self {
        Self {
            direct: addr.ip_addrs().take(MAX_DIALABLE_ADDRESSES).copied().collect(),
            relay: addr.relay_urls().map(ToString::to_string).find(|url| url.len() <= MAX_RELAY_URL_BYTES),
        }
    }

    /// The address to dial `key` at (a relay address that does not parse is left out).
    pub fn addr_of(&self, key: iroh::PublicKey) -> iroh::EndpointAddr {
        let mut addr = iroh::EndpointAddr::new(key);
        for socket in self.direct.iter().take(MAX_DIALABLE_ADDRESSES) {
            addr = addr.with_ip_addr(*socket);
        }
        if let Some(relay) = self.relay.as_deref().and_then(|url| url.parse::<iroh::RelayUrl>().ok()) {
            addr = addr.with_relay_url(relay);
        }
        addr
    }

    pub(crate) fn in_bounds(&self) -> bool {
        self.direct.len() <= MAX_DIALABLE_ADDRESSES
            && self.relay.as_ref().is_none_or(|url| url.len() <= MAX_RELAY_URL_BYTES)
    }
}

impl ScreenMessage {
    /// Checks the bounds every peer keeps whatever its own film limit: queue length, names.
    pub fn check_shape(&self) -> Result<(), crate::wire::WireError> {
        let name_ok = |film: &FilmEntry| film.name.chars().count() <= MAX_FILM_NAME_CHARS;
        let ok = match self {
            ScreenMessage::State(state) => state.queue.len() <= MAX_QUEUE && state.queue.iter().all(name_ok),
            ScreenMessage::Queue(film) => name_ok(film),
            ScreenMessage::Holding { at, .. } => at.in_bounds(),
        };
        if ok { Ok(()) } else { Err(crate::wire::WireError::Malformed) }
    }

    /// Film names made safe to show.
    pub fn clean(&mut self) {
        match self {
            ScreenMessage::State(state) => {
                for film in &mut state.queue {
                    film.name = crate::wire::clean_text(&film.name);
                }
            }
            ScreenMessage::Queue(film) => film.name = crate::wire::clean_text(&film.name),
            ScreenMessage::Holding { .. } => {}
        }
    }
}

/// Why a screen message or a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScreenError {
    /// The queue holds [`MAX_QUEUE`] films not yet played.
    #[error("the queue is full ({MAX_QUEUE} films)")]
    QueueFull,
    /// The key has [`MAX_QUEUED_PER_KEY`] films waiting.
    #[error("you have {MAX_QUEUED_PER_KEY} films waiting already")]
    TooManyFromOne,
    /// The name is longer than allowed.
    #[error("the film's name is longer than {MAX_FILM_NAME_CHARS} characters")]
    NameTooLong,
    /// A film of no bytes.
    #[error("the film is empty")]
    Empty,
    /// Larger than this peer takes.
    #[error("the film is {bytes} bytes, over the limit of {limit}")]
    TooLarge {
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// Only the controller may do that.
    #[error("only the one who controls the screen may do that")]
    NotController,
    /// A film may only be queued by the one who shares it.
    #[error("a film is queued by the one who shares it")]
    NotSharer,
    /// Older than the state held.
    #[error("an older state than the one held")]
    Stale,
    /// Nothing is queued to play.
    #[error("nothing is queued")]
    Nothing,
}

/// Whether a state from `author` replaces `held`. `controller_gone` says whether the held
/// state's controller has not been heard for [`CONTROLLER_GONE`].
pub fn accepts(held: Option<&ScreenState>, author: [u8; 32], new: &ScreenState, controller_gone: bool) -> bool {
    succeeds(held.map(|held| (held.version, held.controller)), author, new.version, controller_gone)
}

/// Whether a state of `version` from `author` replaces one of `(version, controller)` held
/// (the rule of the screen and of the lecture hall's stage): it is newer (a higher version,
/// ties going to the smaller key), and its author controls the held state or that controller
/// left (`controller_gone`). Anything replaces nothing.
pub fn succeeds(held: Option<(u64, [u8; 32])>, author: [u8; 32], version: u64, controller_gone: bool) -> bool {
    let Some((held_version, controller)) = held else { return true };
    let newer = version > held_version || (version == held_version && author < controller);
    newer && (author == controller || controller_gone)
}

/// What the controller may do to the screen.
#[derive(Debug, Clone, PartialEq)]
pub enum ScreenAction {
    /// Play from where it is (or from the start of the current film).
    Play,
    /// Stop where it is.
    Pause,
    /// Go to this many seconds into the film, playing or paused as it was.
    Seek(f64),
    /// The next film in the queue, from its start.
    Next,
    /// Hand control to this key.
    HandOver([u8; 32]),
}

impl ScreenState {
    /// The state after `action` at `now_us` on the controller's clock (the version grown).
    pub fn apply(&self, action: &ScreenAction, now_us: u64) -> Result<ScreenState, ScreenError> {
        let mut next = self.clone();
        next.version = self.version.saturating_add(1);
        let position_ms = (self.clock.position_at(now_us) * 1000.0) as u64;
        match action {
            ScreenAction::Play => {
                if self.film().is_none() {
                    return Err(ScreenError::Nothing);
                }
                if !self.clock.playing() {
                    next.clock = Clock::Playing { position_ms, since_us: now_us };
                }
            }
            ScreenAction::Pause => next.clock = Clock::Paused { position_ms },
            ScreenAction::Seek(seconds) => {
                let position_ms = (seconds.max(0.0) * 1000.0).min(u64::MAX as f64 / 2.0) as u64;
                next.clock = if self.clock.playing() {
                    Clock::Playing { position_ms, since_us: now_us }
                } else {
                    Clock::Paused { position_ms }
                };
            }
            ScreenAction::Next => {
                if self.film().is_none() {
                    return Err(ScreenError::Nothing);
                }
                next.current = self.current.saturating_add(1);
                next.clock = Clock::Playing { position_ms: 0, since_us: now_us };
            }
            ScreenAction::HandOver(key) => next.controller = *key,
        }
        Ok(next)
    }

    /// The state with `film` queued (the version grown), playing it at once when nothing
    /// showed. Played films make room when the queue is full.
    pub fn queue(&self, film: FilmEntry, now_us: u64, max_film_bytes: u64) -> Result<ScreenState, ScreenError> {
        film.check(max_film_bytes)?;
        let waiting = self.queue.iter().skip(self.current as usize);
        if waiting.filter(|queued| queued.by == film.by).count() >= MAX_QUEUED_PER_KEY {
            return Err(ScreenError::TooManyFromOne);
        }
        let mut next = self.clone();
        next.version = self.version.saturating_add(1);
        let idle = next.film().is_none();
        // A screen with nothing showing starts the new film; played films are forgotten first.
        if idle {
            next.queue.clear();
            next.current = 0;
        }
        while next.queue.len() >= MAX_QUEUE && next.current > 0 {
            next.queue.remove(0);
            next.current -= 1;
        }
        if next.queue.len() >= MAX_QUEUE {
            return Err(ScreenError::QueueFull);
        }
        next.queue.push(film);
        if idle {
            next.clock = Clock::Playing { position_ms: 0, since_us: now_us };
        }
        Ok(next)
    }
}

/// How many arrivals [`ClockSync`] looks back over.
const CLOCK_SAMPLES: usize = 16;

/// An estimate of another peer's clock from the sequence numbers of its envelopes (its clock
/// in µs when sent) and when they arrived here.
#[derive(Debug, Clone, Default)]
pub struct ClockSync {
    /// `arrival - sequence` of the last few messages, as signed µs.
    gaps: VecDeque<i64>,
}

impl ClockSync {
    /// A message sent at `sequence_us` on their clock arrived at `arrival_us` on ours.
    pub fn heard(&mut self, sequence_us: u64, arrival_us: u64) {
        let gap = (arrival_us as i128 - sequence_us as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        self.gaps.push_back(gap);
        if self.gaps.len() > CLOCK_SAMPLES {
            self.gaps.pop_front();
        }
    }

    /// Their clock now, when ours reads `now_us`: ours less the smallest gap seen (their
    /// offset plus the quickest delivery). Ours when nothing was heard.
    pub fn their_now(&self, now_us: u64) -> u64 {
        let gap = self.gaps.iter().copied().min().unwrap_or(0);
        (now_us as i128 - gap as i128).clamp(0, u64::MAX as i128) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn film(seed: u8, by: u8) -> FilmEntry {
        FilmEntry { hash: [seed; 32], bytes: 1000, name: format!("film {seed}"), by: [by; 32] }
    }

    #[test]
    fn a_holder_says_where_to_dial_it_within_bounds() {
        let key = iroh::SecretKey::from_bytes(&[7; 32]).public();
        let sockets: Vec<std::net::SocketAddr> =
            (0..12).map(|port| std::net::SocketAddr::from(([10, 0, 0, 1], 4000 + port))).collect();
        let relay: iroh::RelayUrl = "https://relay.example.org./".parse().expect("a relay address");
        let mut addr = iroh::EndpointAddr::new(key).with_relay_url(relay.clone());
        for socket in &sockets {
            addr = addr.with_ip_addr(*socket);
        }
        let at = Dialable::of(&addr);
        assert_eq!(at.direct.len(), MAX_DIALABLE_ADDRESSES, "at most eight sockets are said");
        let again = at.addr_of(key);
        assert_eq!(again.id, key);
        assert_eq!(again.ip_addrs().count(), MAX_DIALABLE_ADDRESSES);
        assert_eq!(again.relay_urls().next(), Some(&relay));
        let holding = |at: Dialable| ScreenMessage::Holding { film: [1; 32], at };
        assert!(holding(at.clone()).check_shape().is_ok());
        let too_many = Dialable { direct: sockets, ..at.clone() };
        assert!(holding(too_many).check_shape().is_err(), "twelve sockets are refused");
        let too_long = Dialable { relay: Some(format!("https://{}.example/", "a".repeat(300))), ..at.clone() };
        assert!(holding(too_long).check_shape().is_err(), "a relay address past 256 bytes is refused");
        let nonsense = Dialable { relay: Some("not a url".into()), ..at };
        assert_eq!(nonsense.addr_of(key).relay_urls().count(), 0, "a relay address that does not parse is left out");
    }

    #[test]
    fn the_first_film_queued_plays_at_once_and_the_next_waits() {
        let state = ScreenState::new([1; 32]);
        let state = state.queue(film(1, 1), 1_000_000, DEFAULT_MAX_FILM_BYTES).expect("queues");
        assert_eq!(state.film(), Some(&film(1, 1)));
        assert!(state.clock.playing());
        assert!((state.clock.position_at(3_500_000) - 2.5).abs() < 1e-9);
        let state = state.queue(film(2, 2), 2_000_000, DEFAULT_MAX_FILM_BYTES).expect("queues");
        assert_eq!(state.film(), Some(&film(1, 1)), "the one showing goes on");
        let state = state.apply(&ScreenAction::Next, 3_000_000).expect("next");
        assert_eq!(state.film(), Some(&film(2, 2)));
        assert_eq!(state.clock, Clock::Playing { position_ms: 0, since_us: 3_000_000 });
        let state = state.apply(&ScreenAction::Next, 4_000_000).expect("next");
        assert_eq!(state.film(), None);
        assert_eq!(state.apply(&ScreenAction::Play, 5_000_000), Err(ScreenError::Nothing));
        // Queued on an idle screen: it plays, and the films played are forgotten.
        let state = state.queue(film(3, 1), 6_000_000, DEFAULT_MAX_FILM_BYTES).expect("queues");
        assert_eq!((state.queue.len(), state.film()), (1, Some(&film(3, 1))));
        assert_eq!(state.version, 5);
    }

    #[test]
    fn pause_seek_and_play_keep_the_position() {
        let state = ScreenState::new([1; 32]).queue(film(1, 1), 0, DEFAULT_MAX_FILM_BYTES).expect("queues");
        let paused = state.apply(&ScreenAction::Pause, 10_000_000).expect("pauses");
        assert_eq!(paused.clock, Clock::Paused { position_ms: 10_000 });
        assert!((paused.clock.position_at(99_000_000) - 10.0).abs() < 1e-9);
        let sought = paused.apply(&ScreenAction::Seek(42.5), 11_000_000).expect("seeks");
        assert_eq!(sought.clock, Clock::Paused { position_ms: 42_500 }, "a seek keeps it paused");
        let playing = sought.apply(&ScreenAction::Play, 12_000_000).expect("plays");
        assert!((playing.clock.position_at(13_000_000) - 43.5).abs() < 1e-9);
        let back = playing.apply(&ScreenAction::Seek(-5.0), 14_000_000).expect("seeks");
        assert_eq!(back.clock, Clock::Playing { position_ms: 0, since_us: 14_000_000 });
        let huge = playing.apply(&ScreenAction::Seek(f64::INFINITY), 14_000_000).expect("seeks");
        assert!(huge.clock.position_at(15_000_000).is_finite());
    }

    #[test]
    fn queues_are_bounded_in_all_and_per_key() {
        let mut state = ScreenState::new([1; 32]);
        state = state.queue(film(1, 9), 0, DEFAULT_MAX_FILM_BYTES).expect("queues");
        state = state.queue(film(2, 9), 0, DEFAULT_MAX_FILM_BYTES).expect("queues");
        assert_eq!(state.queue(film(3, 9), 0, DEFAULT_MAX_FILM_BYTES), Err(ScreenError::TooManyFromOne));
        for n in 3..=MAX_QUEUE as u8 {
            state = state.queue(film(n, n), 0, DEFAULT_MAX_FILM_BYTES).expect("queues");
        }
        assert_eq!(state.queue(film(100, 100), 0, DEFAULT_MAX_FILM_BYTES), Err(ScreenError::QueueFull));
        // Once one has played, it makes room.
        state = state.apply(&ScreenAction::Next, 0).expect("next");
        state = state.queue(film(100, 100), 0, DEFAULT_MAX_FILM_BYTES).expect("room was made");
        assert_eq!(state.queue.len(), MAX_QUEUE);
        assert_eq!(state.film(), Some(&film(2, 9)));
        let long = FilmEntry { name: "x".repeat(MAX_FILM_NAME_CHARS + 1), ..film(7, 7) };
        assert_eq!(ScreenState::new([1; 32]).queue(long, 0, u64::MAX), Err(ScreenError::NameTooLong));
        let big = FilmEntry { bytes: 2000, ..film(7, 7) };
        assert!(matches!(ScreenState::new([1; 32]).queue(big, 0, 1999), Err(ScreenError::TooLarge { .. })));
    }

    #[test]
    fn only_the_controller_moves_the_screen_until_it_is_gone() {
        let held = ScreenState::new([5; 32]).queue(film(1, 5), 0, DEFAULT_MAX_FILM_BYTES).expect("queues");
        let mut from_other = held.apply(&ScreenAction::Pause, 1).expect("pauses");
        from_other.controller = [9; 32];
        assert!(!accepts(Some(&held), [9; 32], &from_other, false), "not the controller");
        assert!(accepts(Some(&held), [9; 32], &from_other, true), "the controller left");
        let from_controller = held.apply(&ScreenAction::Pause, 1).expect("pauses");
        assert!(accepts(Some(&held), [5; 32], &from_controller, false));
        assert!(!accepts(Some(&from_controller), [5; 32], &held, false), "older");
        // Handed over: the new controller's states count, the old one's no more.
        let handed = held.apply(&ScreenAction::HandOver([9; 32]), 1).expect("hands over");
        assert!(accepts(Some(&held), [5; 32], &handed, false));
        let by_new = handed.apply(&ScreenAction::Pause, 2).expect("pauses");
        assert!(accepts(Some(&handed), [9; 32], &by_new, false));
        let by_old = ScreenState { controller: [5; 32], ..by_new.clone() };
        assert!(!accepts(Some(&handed), [5; 32], &by_old, false));
        assert!(accepts(None, [3; 32], &by_old, false), "anything starts an unknown screen");
    }

    #[test]
    fn the_clock_estimate_follows_the_fastest_delivery() {
        let mut sync = ClockSync::default();
        // Their clock is 5 s ahead of ours; deliveries take 3 to 40 ms.
        let offset: i64 = 5_000_000;
        for (n, delay) in [40_000u64, 3_000, 25_000, 12_000].iter().enumerate() {
            let ours = 100_000_000 + n as u64 * 2_000_000;
            let sent = (ours as i64 + offset) as u64;
            sync.heard(sent, ours + delay);
        }
        let now = 200_000_000;
        let error = sync.their_now(now) as i64 - (now as i64 + offset);
        assert_eq!(error, -3_000, "behind by the quickest delivery only");
        assert_eq!(ClockSync::default().their_now(7), 7);
        // A sender whose clock says anything at all cannot push the estimate out of range.
        sync.heard(u64::MAX, 0);
        sync.heard(0, u64::MAX);
        let _ = sync.their_now(now);
    }
}
