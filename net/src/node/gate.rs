//! The gate in front of gossip: every message a neighbour passes on is checked by its topic's
//! [`Inbox`] on that neighbour's connection task, before the gossip actor sees it (the hook is
//! Sanctuary's patch of iroh-gossip, see `vendor/README.md`). What is refused is neither
//! delivered nor relayed, so a flood stops at the first honest peer it reaches instead of
//! crossing the swarm. A neighbour is disconnected and refused for [`CUT_OFF_FOR`] when what it
//! passes on is mostly refused as malformed or forged (honest peers check signatures before they
//! relay, so they never pass such on), as over the rate of its own key (a flood it signed
//! itself), or as over its relay budget (more than any honest peer believes on a topic, see
//! `inbox::TOPIC_BUDGET`, and so relays). Messages of other authors refused for their rates never
//! count against it: it may only be relaying them, and our view of their rates may differ.
//!
//! Bounds, per topic: a neighbour may pass on [`RELAYED_BURST`] messages and then
//! [`RELAYED_PER_SECOND`] a second before anything it relays is looked at; the ids of believed
//! messages are kept for [`SEEN_FOR`], at most [`MAX_SEEN`], so that the copies other
//! neighbours pass on go straight to gossip (which drops duplicates and prunes its tree) without
//! being checked or counted against their author again; each neighbour's conduct is one counter
//! window, for at most [`MAX_NEIGHBOURS`]. At most [`MAX_CUT_OFF`] neighbours are cut off at once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use iroh_gossip::TopicId;
use iroh_gossip::net::{Admission, MessageFilter};
use tokio::sync::mpsc;

use super::actor::{Internal, Scope, TopicOut, wall_micros};
use crate::inbox::{Inbox, Limited, NetStats, RateLimiter, Refusal, Vouched};
use crate::private_room::RoomCipher;
use crate::wire::Signed;

/// Messages one gossip neighbour may pass on to us per topic, whoever wrote them: a burst and a
/// rate above what any honest peer believes on a topic (`inbox::TOPIC_BUDGET`) and so relays,
/// so that only a flood is cut before its signatures are checked, and going over them is held
/// against the neighbour.
pub(super) const RELAYED_BURST: u32 = 8_000;
/// See [`RELAYED_BURST`].
pub(super) const RELAYED_PER_SECOND: u32 = 4_000;
/// How long the ids of believed messages are kept (duplicates arrive within a second or two).
pub(super) const SEEN_FOR: Duration = Duration::from_secs(30);
/// The most ids of believed messages kept per topic (the inbox's budgets let far fewer through
/// in [`SEEN_FOR`]).
pub(super) const MAX_SEEN: usize = 65_536;
/// The window a neighbour's conduct is counted over.
const CONDUCT_WINDOW: Duration = Duration::from_secs(5);
/// Refused messages (malformed, forged, or over the rate of the neighbour's own key) within one
/// window, making up at least four in five of what the neighbour passed on, that get it cut off.
pub(super) const CUT_OFF_REFUSED: u32 = 1_000;
/// How long a neighbour that was cut off stays refused.
pub(super) const CUT_OFF_FOR: Duration = Duration::from_secs(600);
/// The most neighbours cut off at once; past it, the one whose time ends first is let go.
pub(super) const MAX_CUT_OFF: usize = 4_096;
/// The most neighbours whose conduct a topic counts at once (gossip keeps a handful; connections
/// beyond that are short-lived).
pub(super) const MAX_NEIGHBOURS: usize = 4_096;

/// Takes the lock even when a panic elsewhere poisoned it: every state behind these locks is
/// consistent between statements.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A topic's side of the gate.
trait Admit: Send + Sync {
    fn admit(&self, from: iroh::PublicKey, content: &Bytes) -> Admission;
}

/// The node's gate: the topics we are in, and the neighbours cut off.
pub(super) struct Gate {
    topics: RwLock<HashMap<TopicId, Weak<dyn Admit>>>,
    cut_off: Mutex<HashMap<iroh::PublicKey, Instant>>,
    stats: Arc<NetStats>,
    /// Whom the person's trust reaches: they get whole budgets, strangers a share.
    vouched: Vouched,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Gate").finish_non_exhaustive()
    }
}

impl Gate {
    pub(super) fn new(stats: Arc<NetStats>, vouched: Vouched) -> Arc<Self> {
        Arc::new(Self { topics: RwLock::new(HashMap::new()), cut_off: Mutex::new(HashMap::new()), stats, vouched })
    }

    /// Starts checking what arrives on `topic` with a fresh inbox; believed messages go to
    /// `out`. The gate holds the topic weakly: it stays open while the returned handle lives
    /// (the topic's task holds it).
    pub(super) fn open<T>(
        &self,
        topic: TopicId,
        scope: Scope,
        me: iroh::PublicKey,
        out: TopicOut,
        cipher: Option<RoomCipher>,
    ) -> Arc<TopicGate<T>>
    where
        T: Limited + Send + 'static,
        Internal: From<(Scope, Signed<T>)>,
    {
        let gate = Arc::new(TopicGate {
            scope,
            cipher,
            start: Instant::now(),
            out,
            state: Mutex::new(GateState {
                inbox: Inbox::new(*topic.as_bytes(), me, self.stats.clone()).with_vouched(self.vouched.clone()),
                relays: RateLimiter::new(RELAYED_BURST, RELAYED_PER_SECOND),
                seen: Seen::default(),
                conduct: HashMap::new(),
            }),
        });
        let weak: Weak<dyn Admit> = Arc::downgrade(&gate) as Weak<dyn Admit>;
        let mut topics = self.topics.write().unwrap_or_else(PoisonError::into_inner);
        topics.retain(|_, open| open.strong_count() > 0);
        topics.insert(topic, weak);
        gate
    }

    /// Cuts `peer` off for [`CUT_OFF_FOR`].
    fn cut(&self, peer: iroh::PublicKey) {
        let now = Instant::now();
        let mut cut_off = lock(&self.cut_off);
        if cut_off.len() >= MAX_CUT_OFF {
            cut_off.retain(|_, until| *until > now);
        }
        if cut_off.len() >= MAX_CUT_OFF
            && let Some(first) = cut_off.iter().min_by_key(|(_, until)| **until).map(|(peer, _)| *peer)
        {
            cut_off.remove(&first);
        }
        if cut_off.insert(peer, now + CUT_OFF_FOR).is_none() {
            self.stats.count_cut_off();
        }
    }
}

impl MessageFilter for Gate {
    fn admit(&self, topic: TopicId, from: iroh::PublicKey, content: &Bytes) -> Admission {
        if !self.allows(from) {
            return Admission::Disconnect;
        }
        let open = self.topics.read().unwrap_or_else(PoisonError::into_inner).get(&topic).and_then(Weak::upgrade);
        // A topic we are not in (or just left): nothing to deliver, nothing to relay.
        let Some(open) = open else { return Admission::Drop };
        let admission = open.admit(from, content);
        if admission == Admission::Disconnect {
            self.cut(from);
        }
        admission
    }

    fn allows(&self, peer: iroh::PublicKey) -> bool {
        let mut cut_off = lock(&self.cut_off);
        match cut_off.get(&peer) {
            Some(until) if *until > Instant::now() => false,
            Some(_) => {
                cut_off.remove(&peer);
                true
            }
            None => true,
        }
    }
}

/// One topic's checks: its inbox, the neighbours' relay budgets and conduct, and the ids of
/// messages already believed.
pub(super) struct TopicGate<T> {
    scope: Scope,
    /// A private room's: every message is sealed with its key, and opened here first.
    cipher: Option<RoomCipher>,
    start: Instant,
    out: TopicOut,
    state: Mutex<GateState<T>>,
}

struct GateState<T> {
    inbox: Inbox<T>,
    relays: RateLimiter<iroh::PublicKey>,
    seen: Seen,
    conduct: HashMap<iroh::PublicKey, Conduct>,
}

/// What a neighbour passed on within one window.
#[derive(Debug, Clone, Copy)]
struct Conduct {
    since: Duration,
    passed_on: u32,
    /// Refused as what an honest peer never relays (malformed, forged, its own key's flood).
    refused: u32,
    /// Over its relay budget: more than an honest peer relays at all.
    overflow: u32,
}

/// How one message a neighbour passed on counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Taken, or refused for reasons that say nothing about the neighbour.
    Fine,
    /// Refused as something an honest peer never relays.
    Misconduct,
    /// Over the neighbour's relay budget.
    Overflow,
}

impl<T: Limited> TopicGate<T> {
    /// Frees memory held for authors and neighbours long gone.
    pub(super) fn tidy(&self) {
        let now = self.start.elapsed();
        let mut state = lock(&self.state);
        state.inbox.tidy(now, wall_micros());
        state.relays.forget_idle(now);
        state.conduct.retain(|_, conduct| now.saturating_sub(conduct.since) < CONDUCT_WINDOW);
        state.seen.expire(now);
    }
}

impl<T> GateState<T> {
    /// Counts one message `from` passed on; `true` once it should be cut off: when
    /// [`CUT_OFF_REFUSED`] of its messages in a window were over its relay budget (no honest
    /// peer goes there), or were otherwise held against it and made up four in five of all.
    fn record(&mut self, from: iroh::PublicKey, now: Duration, verdict: Verdict) -> bool {
        if !self.conduct.contains_key(&from) && self.conduct.len() >= MAX_NEIGHBOURS {
            self.conduct.retain(|_, conduct| now.saturating_sub(conduct.since) < CONDUCT_WINDOW);
            // Still full (a crowd of short-lived connections): the oldest count goes, so that
            // nobody new passes uncounted.
            if self.conduct.len() >= MAX_NEIGHBOURS
                && let Some(oldest) =
                    self.conduct.iter().min_by_key(|(_, conduct)| conduct.since).map(|(peer, _)| *peer)
            {
                self.conduct.remove(&oldest);
            }
        }
        let fresh = Conduct { since: now, passed_on: 0, refused: 0, overflow: 0 };
        let conduct = self.conduct.entry(from).or_insert(fresh);
        if now.saturating_sub(conduct.since) >= CONDUCT_WINDOW {
            *conduct = fresh;
        }
        conduct.passed_on = conduct.passed_on.saturating_add(1);
        match verdict {
            Verdict::Fine => {}
            Verdict::Misconduct => conduct.refused = conduct.refused.saturating_add(1),
            Verdict::Overflow => conduct.overflow = conduct.overflow.saturating_add(1),
        }
        conduct.overflow >= CUT_OFF_REFUSED
            || (conduct.refused >= CUT_OFF_REFUSED
                && u64::from(conduct.refused) * 5 >= u64::from(conduct.passed_on) * 4)
    }
}

impl<T> Admit for TopicGate<T>
where
    T: Limited + Send + 'static,
    Internal: From<(Scope, Signed<T>)>,
{
    fn admit(&self, from: iroh::PublicKey, content: &Bytes) -> Admission {
        let now = self.start.elapsed();
        let mut state = lock(&self.state);
        let state = &mut *state;
        if state.seen.contains(content) {
            // A copy of a message believed already: gossip drops it and prunes its tree.
            state.record(from, now, Verdict::Fine);
            return Admission::Pass;
        }
        if !state.relays.allow(from, now) {
            // More than an honest peer believes, and so relays: held against the neighbour.
            state.inbox.count_flooded();
            return if state.record(from, now, Verdict::Overflow) { Admission::Disconnect } else { Admission::Drop };
        }
        // The checks are written not to panic; should one still do so on some input, the
        // message is refused and the topic goes on.
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &self.cipher {
            None => state.inbox.check(content, now, wall_micros()),
            // Not sealed with the room's key: from someone without it (or altered on the way).
            Some(cipher) => match cipher.open(content) {
                Ok(plain) => state.inbox.check(&plain, now, wall_micros()),
                Err(_) => {
                    state.inbox.count_malformed();
                    Err(Refusal::Malformed)
                }
            },
        }));
        let misconduct = match checked {
            Ok(Ok(message)) => {
                state.seen.insert(content, now);
                match self.out.messages.try_send(Internal::from((self.scope, message))) {
                    Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
                    // The node is behind: this one is dropped for us, not waited for (it is
                    // still relayed: others may keep up).
                    Err(mpsc::error::TrySendError::Full(_)) => state.inbox.count_dropped(),
                }
                state.record(from, now, Verdict::Fine);
                return Admission::Pass;
            }
            Ok(Err(Refusal::Malformed)) => true,
            // A flood the neighbour signed itself; others' floods it may only be relaying.
            Ok(Err(Refusal::Flooded(author))) => author.is_some_and(|author| author == from),
            Ok(Err(Refusal::Replayed | Refusal::BadClock | Refusal::Own)) => false,
            Err(_) => {
                state.inbox.count_panicked();
                false
            }
        };
        let verdict = if misconduct { Verdict::Misconduct } else { Verdict::Fine };
        if state.record(from, now, verdict) { Admission::Disconnect } else { Admission::Drop }
    }
}

/// Ids of believed messages, oldest first, each with when it was believed.
#[derive(Default)]
struct Seen {
    hasher: std::hash::RandomState,
    ids: HashSet<u64>,
    order: VecDeque<(u64, Duration)>,
}

impl Seen {
    fn id(&self, content: &[u8]) -> u64 {
        // Keyed per process: a sender cannot aim a message at another's id.
        self.hasher.hash_one(content)
    }

    fn contains(&self, content: &[u8]) -> bool {
        self.ids.contains(&self.id(content))
    }

    fn insert(&mut self, content: &[u8], now: Duration) {
        self.expire(now);
        while self.order.len() >= MAX_SEEN {
            if let Some((id, _)) = self.order.pop_front() {
                self.ids.remove(&id);
            }
        }
        let id = self.id(content);
        if self.ids.insert(id) {
            self.order.push_back((id, now));
        }
    }

    fn expire(&mut self, now: Duration) {
        while let Some(&(id, at)) = self.order.front() {
            if now.saturating_sub(at) < SEEN_FOR {
                break;
            }
            self.order.pop_front();
            self.ids.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use glam::{Quat, Vec3};
    use iroh::SecretKey;
    use sanctuary_engine::RegionId;

    use super::*;
    use crate::wire::{PoseFrame, Presence, QuantisedTransform, RegionMessage, encode};

    fn secret(seed: u8) -> SecretKey {
        SecretKey::from_bytes(&[seed; 32])
    }

    fn pose(author: &SecretKey, topic: TopicId, sequence: u64) -> Bytes {
        let at = QuantisedTransform::new(Vec3::new(sequence as f32 % 7.0, 1.7, 0.0), Quat::IDENTITY);
        let body = RegionMessage::Presence(Presence {
            name: "Bo".into(),
            colour: [1, 2, 3],
            pose: PoseFrame { head: at, left_hand: at, right_hand: at },
        });
        Bytes::from(encode(author, topic.as_bytes(), sequence, &body).expect("encodes"))
    }

    /// A gate with the lobby open; what it passes on to the node arrives on the receiver.
    fn lobby() -> (Arc<Gate>, Arc<TopicGate<RegionMessage>>, mpsc::Receiver<Internal>, Arc<NetStats>, TopicId) {
        let stats = Arc::new(NetStats::default());
        let gate = Gate::new(stats.clone(), Vouched::default());
        let (messages, received) = mpsc::channel(100_000);
        let (control, _) = mpsc::unbounded_channel();
        let topic = crate::region_topic(RegionId::Lobby);
        let checks = gate.open::<RegionMessage>(
            topic,
            Scope::Region(RegionId::Lobby),
            secret(1).public(),
            TopicOut { messages, control },
            None,
        );
        (gate, checks, received, stats, topic)
    }

    #[test]
    fn a_flood_is_neither_passed_on_nor_delivered_and_its_neighbour_is_cut_off() {
        let (gate, _checks, mut received, stats, topic) = lobby();
        let flooder = secret(9);
        let neighbour = flooder.public();
        let start = wall_micros();
        let mut admissions = Vec::new();
        for index in 0..5_000u64 {
            let admission = gate.admit(topic, neighbour, &pose(&flooder, topic, start + index));
            admissions.push(admission);
            if admission == Admission::Disconnect {
                break;
            }
        }
        let passed = admissions.iter().filter(|admission| **admission == Admission::Pass).count();
        // The pose lane's burst (30) and what refills while the test runs: the rest is neither
        // delivered nor relayed.
        assert!((4..=40).contains(&passed), "{passed} passed");
        assert_eq!(admissions.last(), Some(&Admission::Disconnect), "the flooder is cut off");
        assert!(admissions.len() <= passed + CUT_OFF_REFUSED as usize + 1, "cut off after {}", admissions.len());
        let mut delivered = 0;
        while received.try_recv().is_ok() {
            delivered += 1;
        }
        assert_eq!(delivered, passed, "only what passed reaches the node");
        assert_eq!(stats.snapshot().cut_off, 1);
        // Cut off: refused as a neighbour, on every topic, even with a message that would pass.
        assert!(!gate.allows(neighbour));
        let honest = secret(3);
        assert_eq!(gate.admit(topic, neighbour, &pose(&honest, topic, start)), Admission::Disconnect);
        assert!(gate.allows(honest.public()));
    }

    #[test]
    fn copies_from_other_neighbours_pass_without_spending_their_authors_budget() {
        let (gate, _checks, mut received, _stats, topic) = lobby();
        let author = secret(4);
        let start = wall_micros();
        let messages: Vec<Bytes> = (0..20).map(|index| pose(&author, topic, start + index)).collect();
        for relay in [secret(5).public(), secret(6).public(), secret(7).public()] {
            for message in &messages {
                assert_eq!(gate.admit(topic, relay, message), Admission::Pass, "a copy goes on to gossip");
            }
        }
        let mut delivered = 0;
        while received.try_recv().is_ok() {
            delivered += 1;
        }
        assert_eq!(delivered, 20, "each message reaches the node once");
        // Copies spent nothing: the author's burst of 30 still has room.
        for index in 20..28 {
            assert_eq!(gate.admit(topic, secret(5).public(), &pose(&author, topic, start + index)), Admission::Pass);
        }
    }

    #[test]
    fn an_honest_relay_refused_at_the_edges_of_rates_is_not_cut_off() {
        let (gate, _checks, _received, stats, topic) = lobby();
        let relay = secret(8).public();
        let start = wall_micros();
        let mut refused = 0;
        // Forty people, each a little over their pose budget as we see it.
        for person in 0..40u8 {
            let author = secret(100 + person);
            for index in 0..40 {
                match gate.admit(topic, relay, &pose(&author, topic, start + index)) {
                    Admission::Pass => {}
                    Admission::Drop => refused += 1,
                    Admission::Disconnect => panic!("an honest relay was cut off after {refused} refusals"),
                }
            }
        }
        assert!(refused > 0, "the test must reach the edge of the rates");
        assert!(gate.allows(relay));
        assert_eq!(stats.snapshot().cut_off, 0);
    }

    /// A neighbour relaying others' messages that we refuse for their authors' rates (or over
    /// its own relay budget) is an honest relay as far as we can tell: never cut off. (An
    /// attacker could otherwise make honest peers relay a crowd of valid keys and get them cut
    /// off by everyone.)
    #[test]
    fn a_relay_of_other_authors_over_their_rates_is_never_cut_off() {
        let (gate, _checks, _received, stats, topic) = lobby();
        let relay = secret(20).public();
        let start = wall_micros();
        let loud = secret(21);
        for index in 0..6_000u64 {
            let admission = gate.admit(topic, relay, &pose(&loud, topic, start + index));
            assert_ne!(admission, Admission::Disconnect, "an honest relay was cut off at message {index}");
        }
        assert!(stats.snapshot().flooded > 5_000);
        assert!(gate.allows(relay));
    }

    /// A thousand keys, each within its rate, passed on by one neighbour faster than any honest
    /// peer believes (and so relays): over its relay budget, held against it, cut off.
    #[test]
    fn a_neighbour_passing_on_more_than_any_honest_peer_believes_is_cut_off() {
        let (gate, _checks, _received, _stats, topic) = lobby();
        let neighbour = secret(30).public();
        let start = wall_micros();
        let authors: Vec<SecretKey> = (0..1_000u32)
            .map(|index| {
                let mut seed = [0x31u8; 32];
                seed[..4].copy_from_slice(&index.to_le_bytes());
                SecretKey::from_bytes(&seed)
            })
            .collect();
        let messages: Vec<Bytes> =
            (0..50_000u64).map(|index| pose(&authors[(index % 1_000) as usize], topic, start + index)).collect();
        let cut = messages.iter().position(|message| gate.admit(topic, neighbour, message) == Admission::Disconnect);
        assert!(cut.is_some(), "a neighbour passing on 50,000 messages at once was never cut off");
        assert!(!gate.allows(neighbour));
    }

    #[test]
    fn forged_and_malformed_messages_count_against_the_neighbour_that_passed_them_on() {
        let (gate, _checks, _received, stats, topic) = lobby();
        let neighbour = secret(10).public();
        let mut forged = pose(&secret(11), topic, wall_micros()).to_vec();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let forged = Bytes::from(forged);
        let garbage = Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef]);
        let mut cut = None;
        for index in 0..2 * CUT_OFF_REFUSED {
            let message = if index % 2 == 0 { &forged } else { &garbage };
            if gate.admit(topic, neighbour, message) == Admission::Disconnect {
                cut = Some(index);
                break;
            }
        }
        assert_eq!(cut, Some(CUT_OFF_REFUSED - 1), "cut off at the {CUT_OFF_REFUSED}th refusal");
        let counted = stats.snapshot();
        assert!(counted.bad_signature >= 1 && counted.malformed >= 1, "{counted:?}");
    }

    #[test]
    fn a_topic_we_left_takes_nothing() {
        let (gate, checks, _received, _stats, topic) = lobby();
        let author = secret(12);
        assert_eq!(gate.admit(topic, author.public(), &pose(&author, topic, wall_micros())), Admission::Pass);
        let city = crate::region_topic(RegionId::City);
        assert_eq!(gate.admit(city, author.public(), &pose(&author, city, wall_micros())), Admission::Drop);
        drop(checks);
        assert_eq!(gate.admit(topic, author.public(), &pose(&author, topic, wall_micros() + 1)), Admission::Drop);
    }

    #[test]
    fn seen_ids_are_bounded_and_expire() {
        let mut seen = Seen::default();
        for index in 0..(MAX_SEEN as u64 + 10) {
            seen.insert(&index.to_le_bytes(), Duration::ZERO);
        }
        assert_eq!(seen.ids.len(), MAX_SEEN);
        assert!(!seen.contains(&0u64.to_le_bytes()), "the oldest went first");
        assert!(seen.contains(&(MAX_SEEN as u64 + 9).to_le_bytes()));
        seen.expire(SEEN_FOR);
        assert!(seen.ids.is_empty() && seen.order.is_empty());
    }
}
