//! What a receiver does with bytes from the network before it believes them: size, shape and
//! signature ([`crate::wire::decode`]), then replays and flooding, counting every refusal.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use iroh::PublicKey;

use crate::wire::{Body, Signed, WireError, decode};

/// How far behind an author's newest message (on the author's own clock) a message may be and
/// still count: later than that it is a replay. No clock of the receiver is involved, so a
/// skewed clock on either side changes nothing.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(30);

/// Counters of what arrived and what was refused, shared by the node's tasks and read by
/// whoever watches (the HUD, the tests, the benchmark).
#[derive(Debug, Default)]
pub struct NetStats {
    accepted: AtomicU64,
    too_large: AtomicU64,
    malformed: AtomicU64,
    bad_signature: AtomicU64,
    replayed: AtomicU64,
    flooded: AtomicU64,
    dropped_events: AtomicU64,
}

/// A copy of [`NetStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Messages that passed every check.
    pub accepted: u64,
    /// Larger than a message may be.
    pub too_large: u64,
    /// Not a well-formed message, or over a limit (name or text length).
    pub malformed: u64,
    /// An invalid author key or a signature that does not match.
    pub bad_signature: u64,
    /// Seen before, or older than the author's replay window, or claiming to be from us.
    pub replayed: u64,
    /// Over the author's rate limit.
    pub flooded: u64,
    /// Accepted, but dropped because the program was not reading events fast enough.
    pub dropped_events: u64,
}

impl StatsSnapshot {
    /// All refused messages.
    pub fn rejected(&self) -> u64 {
        self.too_large + self.malformed + self.bad_signature + self.replayed + self.flooded
    }
}

impl NetStats {
    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        StatsSnapshot {
            accepted: load(&self.accepted),
            too_large: load(&self.too_large),
            malformed: load(&self.malformed),
            bad_signature: load(&self.bad_signature),
            replayed: load(&self.replayed),
            flooded: load(&self.flooded),
            dropped_events: load(&self.dropped_events),
        }
    }

    pub(crate) fn count_error(&self, error: &WireError) {
        let counter = match error {
            WireError::TooLarge { .. } => &self.too_large,
            WireError::BadAuthor | WireError::BadSignature => &self.bad_signature,
            _ => &self.malformed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_flooded(&self) {
        self.flooded.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_dropped_event(&self) {
        self.dropped_events.fetch_add(1, Ordering::Relaxed);
    }
}

/// Remembers which sequence numbers each author's messages carried within [`REPLAY_WINDOW`] of
/// their newest, so that each message is believed once.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    authors: HashMap<PublicKey, BTreeSet<u64>>,
}

impl ReplayGuard {
    /// Whether `sequence` from `author` is new; if so it is remembered.
    pub fn accept(&mut self, author: PublicKey, sequence: u64) -> bool {
        let window = REPLAY_WINDOW.as_micros() as u64;
        let seen = self.authors.entry(author).or_default();
        let newest = seen.last().copied().unwrap_or(0);
        if sequence.saturating_add(window) < newest || !seen.insert(sequence) {
            return false;
        }
        let floor = seen.last().copied().unwrap_or(0).saturating_sub(window);
        while seen.first().is_some_and(|&oldest| oldest < floor) {
            seen.pop_first();
        }
        true
    }

    /// Forgets authors not heard from for longer than the window (on their clock: the newest
    /// sequence is older than `now_micros - window`), so memory follows the live crowd.
    pub fn forget_older_than(&mut self, now_micros: u64) {
        let floor = now_micros.saturating_sub(REPLAY_WINDOW.as_micros() as u64 * 4);
        self.authors.retain(|_, seen| seen.last().is_some_and(|&newest| newest >= floor));
    }
}

/// A token bucket per author: `burst` messages at once, then `per_second` a second.
#[derive(Debug)]
pub struct RateLimiter {
    burst: f64,
    per_second: f64,
    buckets: HashMap<PublicKey, (f64, Duration)>,
}

impl RateLimiter {
    /// A limiter that allows `burst` messages at once and `per_second` on average.
    pub fn new(burst: u32, per_second: u32) -> Self {
        Self { burst: f64::from(burst.max(1)), per_second: f64::from(per_second), buckets: HashMap::new() }
    }

    /// Whether `author` may send one more message at time `now` (any monotonic clock).
    pub fn allow(&mut self, author: PublicKey, now: Duration) -> bool {
        let (tokens, last) = self.buckets.entry(author).or_insert((self.burst, now));
        let elapsed = now.saturating_sub(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.per_second).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets authors idle for a minute (their buckets are full again anyway).
    pub fn forget_idle(&mut self, now: Duration) {
        self.buckets.retain(|_, (_, last)| now.saturating_sub(*last) < Duration::from_secs(60));
    }
}

/// How a kind of message is limited: each author gets a burst and a steady rate per kind.
pub trait Limited: Body {
    /// Which limiter applies (an index into the inbox's limiters).
    fn lane(&self) -> usize;
    /// `(burst, per second)` of each lane.
    const LANES: &'static [(u32, u32)];
}

impl Limited for crate::wire::RegionMessage {
    fn lane(&self) -> usize {
        match self {
            crate::wire::RegionMessage::Presence(_) | crate::wire::RegionMessage::Leave => 0,
            crate::wire::RegionMessage::Chat { .. } => 1,
            crate::wire::RegionMessage::Change(_) => 2,
        }
    }
    // Poses: 20 a second with room for jitter. Chat: a burst of ten lines, then two a second.
    // Building: a burst of 100 changes (a pasted group), then 20 a second.
    const LANES: &'static [(u32, u32)] = &[(30, 25), (10, 2), (100, 20)];
}

impl Limited for crate::wire::WorldMessage {
    fn lane(&self) -> usize {
        0
    }
    const LANES: &'static [(u32, u32)] = &[(5, 2)];
}

/// Everything a receiver checks, in order: size, shape, signature (for this scope), not from
/// ourselves, rate per author and kind, replay. Each refusal is counted in [`NetStats`].
#[derive(Debug)]
pub struct Inbox<T> {
    scope: [u8; 32],
    me: PublicKey,
    replays: ReplayGuard,
    limiters: Vec<RateLimiter>,
    stats: Arc<NetStats>,
    _kind: std::marker::PhantomData<fn() -> T>,
}

impl<T: Limited> Inbox<T> {
    /// An inbox for messages sent to `scope` (a gossip topic) that `me` receives.
    pub fn new(scope: [u8; 32], me: PublicKey, stats: Arc<NetStats>) -> Self {
        Self {
            scope,
            me,
            replays: ReplayGuard::default(),
            limiters: T::LANES.iter().map(|&(burst, rate)| RateLimiter::new(burst, rate)).collect(),
            stats,
            _kind: std::marker::PhantomData,
        }
    }

    /// Checks `bytes` that arrived at `now` (a monotonic clock); `Some` if they are believed.
    pub fn accept(&mut self, bytes: &[u8], now: Duration) -> Option<Signed<T>> {
        let message = match decode::<T>(bytes, &self.scope) {
            Ok(message) => message,
            Err(error) => {
                self.stats.count_error(&error);
                return None;
            }
        };
        if message.author == self.me {
            self.stats.replayed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let lane = message.body.lane().min(self.limiters.len() - 1);
        if !self.limiters[lane].allow(message.author, now) {
            self.stats.flooded.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if !self.replays.accept(message.author, message.sequence) {
            self.stats.replayed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        Some(message)
    }

    /// Frees memory held for authors long gone.
    pub fn tidy(&mut self, now: Duration, now_micros: u64) {
        self.replays.forget_older_than(now_micros);
        for limiter in &mut self.limiters {
            limiter.forget_idle(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{PoseFrame, Presence, QuantisedTransform, RegionMessage, encode};
    use glam::{Quat, Vec3};
    use iroh::SecretKey;

    const TOPIC: [u8; 32] = [5; 32];

    fn secret(seed: u8) -> SecretKey {
        SecretKey::from_bytes(&[seed; 32])
    }

    fn presence(x: f32) -> RegionMessage {
        let at = QuantisedTransform::new(Vec3::new(x, 1.7, 0.0), Quat::IDENTITY);
        RegionMessage::Presence(Presence {
            name: "Bo".into(),
            colour: [1, 2, 3],
            pose: PoseFrame { head: at, left_hand: at, right_hand: at },
        })
    }

    #[test]
    fn replays_are_dropped_within_and_beyond_the_window() {
        let mut guard = ReplayGuard::default();
        let author = secret(1).public();
        let second = 1_000_000;
        let start = 1_700_000_000 * second;
        assert!(guard.accept(author, start + 3));
        assert!(!guard.accept(author, start + 3), "the same message twice");
        assert!(guard.accept(author, start + 2), "an older message not seen yet, reordered on the way");
        assert!(!guard.accept(author, start + 2));
        assert!(guard.accept(author, start + 40 * second));
        assert!(!guard.accept(author, start + 4), "older than the window behind the newest");
        assert!(guard.accept(secret(2).public(), start), "authors are counted apart");
        guard.forget_older_than(start + 1000 * second);
        assert!(guard.authors.is_empty());
    }

    #[test]
    fn flooding_is_throttled_per_author() {
        let mut limiter = RateLimiter::new(5, 20);
        let flooder = secret(1).public();
        let calm = secret(2).public();
        let start = Duration::from_secs(100);
        let allowed = (0..100).filter(|_| limiter.allow(flooder, start)).count();
        assert_eq!(allowed, 5, "only the burst passes at once");
        assert!(limiter.allow(calm, start), "others are not throttled by the flooder");
        // A second later the flooder has earned 20 more (capped at the burst of 5).
        let later = start + Duration::from_secs(1);
        assert_eq!((0..100).filter(|_| limiter.allow(flooder, later)).count(), 5);
    }

    #[test]
    fn the_inbox_counts_each_kind_of_refusal() {
        let me = secret(9);
        let stats = Arc::new(NetStats::default());
        let mut inbox = Inbox::<RegionMessage>::new(TOPIC, me.public(), stats.clone());
        let now = Duration::from_secs(10);
        let good = encode(&secret(1), &TOPIC, 100, &presence(1.0)).expect("encodes");
        assert!(inbox.accept(&good, now).is_some());
        assert!(inbox.accept(&good, now).is_none(), "replayed");
        assert!(inbox.accept(&[1, 2, 3], now).is_none(), "garbage");
        assert!(inbox.accept(&vec![0; 5000], now).is_none(), "oversized");
        let mut forged = encode(&secret(1), &TOPIC, 101, &presence(2.0)).expect("encodes");
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(inbox.accept(&forged, now).is_none(), "forged");
        let mine = encode(&me, &TOPIC, 5, &presence(0.0)).expect("encodes");
        assert!(inbox.accept(&mine, now).is_none(), "our own message played back to us");
        let flood: usize = (0..100u64)
            .filter(|index| {
                let bytes = encode(&secret(2), &TOPIC, 1000 + index, &presence(0.5)).expect("encodes");
                inbox.accept(&bytes, now).is_some()
            })
            .count();
        assert_eq!(flood, 30, "a burst of 30 poses, then throttled");
        // Chat has its own lane: a pose flood does not silence the flooder's chat, nor others.
        let chat = RegionMessage::Chat { name: "Cy".into(), text: "hi".into() };
        let line = encode(&secret(2), &TOPIC, 5000, &chat).expect("encodes");
        assert!(inbox.accept(&line, now).is_some());
        let other = encode(&secret(3), &TOPIC, 1, &presence(3.0)).expect("encodes");
        assert!(inbox.accept(&other, now).is_some());
        let stats = stats.snapshot();
        assert_eq!(stats.accepted, 1 + 30 + 2);
        assert_eq!(stats.replayed, 2);
        assert_eq!(stats.malformed, 1);
        assert_eq!(stats.too_large, 1);
        assert_eq!(stats.bad_signature, 1);
        assert_eq!(stats.flooded, 70);
        assert_eq!(stats.rejected(), 75);
    }
}
